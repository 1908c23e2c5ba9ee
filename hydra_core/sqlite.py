"""SQLite files of the worker (queue, audit log): one connection on one dedicated thread.

The event loop never waits on the disk; every statement runs on the store's own thread, in
order, so no locking is needed around the connection.

A database that turns out corrupt when it is opened (not a database at all, or a damaged page
that ``PRAGMA quick_check`` finds) is set aside with its WAL files (``state_files.set_aside``)
and a fresh one is made: a worker restarting in a loop on a bad file helps nobody. The check
reads the whole file once per start (15-21 ms for a 2.5 MiB queue of 10,000 tasks on
the 2-core development machine).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import sqlite3
from typing import Any, TypeVar

from .state_files import set_aside

_T = TypeVar("_T")
# What SQLite answers when a file is damaged or is no database at all.
_CORRUPT = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


class _CorruptError(Exception):
    """The database is damaged; the message says how."""


class SqliteStore:
    """Base of the worker's SQLite stores: opening, the thread, closing."""

    schema: str = ""
    # FULL syncs every commit to disk; NORMAL (with WAL) survives the process being killed and
    # can only lose the last moments to a power cut.
    synchronous: str = "FULL"

    def __init__(self, path: Path | None, *, thread_name: str) -> None:
        """Keep the data in ``path``; None keeps it in memory (tests, benchmarks)."""
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._db: sqlite3.Connection | None = None

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            if self._path is None:
                self._db = sqlite3.connect(":memory:", isolation_level=None)
                self._db.executescript(self.schema)
            else:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    self._db = self._connect(self._path)
                except _CorruptError as err:
                    set_aside(self._path, str(err), companions=("-wal", "-shm"))
                    self._db = self._connect(self._path)
        return self._db

    def _connect(self, path: Path) -> sqlite3.Connection:
        """Open the file, check it is a sound database, and create what is missing."""
        db = sqlite3.connect(path, isolation_level=None)
        try:
            # Checked before anything writes to it, so a file set aside is kept as it was.
            problems = [row[0] for row in db.execute("PRAGMA quick_check(3)")]
            if problems != ["ok"]:
                raise _CorruptError(f"damaged SQLite database: {'; '.join(problems)}")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            db.executescript(self.schema)
        except sqlite3.DatabaseError as err:
            db.close()
            if err.sqlite_errorcode & 0xFF not in _CORRUPT:
                raise
            raise _CorruptError(f"damaged SQLite database: {err}") from err
        except _CorruptError:
            db.close()
            raise
        return db

    def _by_id(self, table: str, columns: str, row_id: int) -> tuple[Any, ...] | None:
        """``columns`` of the row of ``table`` with ``row_id``, or None."""
        # Only the store's own table and column names are formatted in.
        sql = f"SELECT {columns} FROM {table} WHERE id = ?"  # noqa: S608
        row: tuple[Any, ...] | None = self._open().execute(sql, (row_id,)).fetchone()
        return row

    def _newest(
        self, table: str, columns: str, filters: Iterable[tuple[str, object]], limit: int
    ) -> sqlite3.Cursor:
        """``columns`` of the rows of ``table`` that pass every filter given a value, newest
        first; a filter is a fixed clause with one ``?`` for its value (None: not filtered)."""
        given = [(clause, value) for clause, value in filters if value is not None]
        where = f"WHERE {' AND '.join(clause for clause, _ in given)}" if given else ""
        # Only the fixed clauses are joined in; every value is a bound parameter.
        sql = f"SELECT {columns} FROM {table} {where} ORDER BY id DESC LIMIT ?"  # noqa: S608
        return self._open().execute(sql, (*(value for _, value in given), limit))

    async def _run(self, function: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)

    async def async_open(self) -> None:
        """Create or open the database."""
        await self._run(self._open)

    async def async_close(self) -> None:
        """Close the database and its thread."""
        await self._run(self._close)
        self._executor.shutdown(wait=True)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
