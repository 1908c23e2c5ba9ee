"""SQLite files of the worker (queue, audit log): one connection on one dedicated thread.

The event loop never waits on the disk; every statement runs on the store's own thread, in
order, so no locking is needed around the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import sqlite3
from typing import TypeVar

_T = TypeVar("_T")


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
            else:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self._path, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(f"PRAGMA synchronous={self.synchronous}")
            self._db.executescript(self.schema)
        return self._db

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
