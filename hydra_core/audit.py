"""The audit log: every action Hydra attempted, kept in SQLite in the worker's data dir.

Append-only: entries are added, never changed or removed through the API. The prune may move
entries older than a retention into a gzip file of JSON lines beside the log (``async_archive``):
they are written and synced there before they leave the database. An action is
recorded *before* it is carried out, as ``pending``, and settled with its outcome after, so no
action happens unaudited: when the entry cannot be written, the action is not attempted. All
SQLite work runs on one dedicated thread so the event loop never waits on the disk.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
import gzip
import json
import os
from pathlib import Path
import time

from .models import Actor, AuditEntry
from .sqlite import SqliteStore

MAX_LIMIT = 1000
# The result of an entry written before its action, until the action's outcome is known; one
# left pending means the worker stopped (or the disk failed) while acting.
PENDING = "pending"
_COLUMNS = "id, time, actor_type, actor_id, actor_name, container, action, result, reason, detail"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    actor_type TEXT NOT NULL,
    actor_id TEXT,
    actor_name TEXT,
    container TEXT NOT NULL,
    action TEXT NOT NULL,
    result TEXT NOT NULL,
    reason TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS audit_container_time ON audit (container, time);
CREATE INDEX IF NOT EXISTS audit_time ON audit (time);
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditQuery:
    """Filters for reading the log; newest first."""

    container: str | None = None
    action: str | None = None
    actor_type: str | None = None
    result: str | None = None
    since: float | None = None
    until: float | None = None
    before_id: int | None = None
    limit: int = 100


class AuditLog(SqliteStore):
    """Append and query audit entries."""

    schema = _SCHEMA

    def __init__(self, path: Path | None) -> None:
        """Keep the log in ``path``; None keeps it in memory (for workers without a data dir)."""
        super().__init__(path, thread_name="audit")

    async def async_record(
        self,
        *,
        actor: Actor,
        container: str,
        action: str,
        result: str,
        reason: str | None = None,
        detail: str | None = None,
    ) -> AuditEntry:
        """Append one entry; it is on disk when this returns."""
        entry = AuditEntry(
            id=0,
            time=time.time(),
            actor=actor,
            container=container,
            action=action,
            result=result,
            reason=reason,
            detail=detail,
        )
        return await self._run(partial(self._insert, entry))

    async def async_settle(
        self, entry: AuditEntry, result: str, detail: str | None = None
    ) -> AuditEntry:
        """Complete an entry recorded as ``pending`` before its action with what came of it."""
        settled = replace(entry, result=result, detail=detail)
        await self._run(partial(self._settle, settled))
        return settled

    def _insert(self, entry: AuditEntry) -> AuditEntry:
        actor = entry.actor
        what = (entry.container, entry.action, entry.result, entry.reason, entry.detail)
        cursor = self._open().execute(
            "INSERT INTO audit (time, actor_type, actor_id, actor_name, container, action,"
            " result, reason, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (entry.time, actor.type, actor.id, actor.name, *what),
        )
        return replace(entry, id=cursor.lastrowid or 0)

    def _settle(self, entry: AuditEntry) -> None:
        self._open().execute(
            "UPDATE audit SET result = ?, detail = ? WHERE id = ? AND result = ?",
            (entry.result, entry.detail, entry.id, PENDING),
        )

    async def async_count_before(self, before: float) -> int:
        """How many entries are older than ``before`` (what an archive would move)."""
        return await self._run(partial(self._count_before, before))

    def _count_before(self, before: float) -> int:
        row = self._open().execute("SELECT COUNT(*) FROM audit WHERE time < ?", (before,))
        count: int = row.fetchone()[0]
        return count

    async def async_archive(self, before: float, path: Path) -> int:
        """Move the entries older than ``before`` into ``path`` (gzip, one JSON object a line,
        oldest first), which must not exist yet; returns how many moved (none: no file)."""
        return await self._run(partial(self._archive, before, path))

    def _archive(self, before: float, path: Path) -> int:
        db = self._open()
        rows = db.execute(
            f"SELECT {_COLUMNS} FROM audit WHERE time < ? ORDER BY id",  # noqa: S608
            (before,),
        ).fetchall()
        if not rows:
            return 0
        names = [name.strip() for name in _COLUMNS.split(",")]
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "xb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as file:
            for row in rows:
                file.write(json.dumps(dict(zip(names, row, strict=True))).encode() + b"\n")
            file.close()
            raw.flush()
            os.fsync(raw.fileno())
        db.execute("DELETE FROM audit WHERE time < ? AND id <= ?", (before, rows[-1][0]))
        return len(rows)

    async def async_query(self, query: AuditQuery) -> list[AuditEntry]:
        """Entries matching every given filter, newest first."""
        return await self._run(partial(self._query, query))

    def _query(self, query: AuditQuery) -> list[AuditEntry]:
        rows = self._newest(
            "audit",
            _COLUMNS,
            (
                ("container = ?", query.container),
                ("action = ?", query.action),
                ("actor_type = ?", query.actor_type),
                ("result = ?", query.result),
                ("time >= ?", query.since),
                ("time <= ?", query.until),
                ("id < ?", query.before_id),
            ),
            min(max(query.limit, 1), MAX_LIMIT),
        )
        return [
            AuditEntry(
                id=row[0],
                time=row[1],
                actor=Actor(type=row[2], id=row[3], name=row[4]),
                container=row[5],
                action=row[6],
                result=row[7],
                reason=row[8],
                detail=row[9],
            )
            for row in rows
        ]
