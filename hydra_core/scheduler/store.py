"""The persistent queue: tasks in SQLite (WAL) in the worker's data dir.

Every change is committed before the caller goes on, so a worker killed at any moment loses
nothing: on the next start, tasks it was running go back to the queue (``recover``). All SQLite
work runs on one dedicated thread.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
import json
from pathlib import Path
import sqlite3
import time
from typing import Any, NamedTuple

from ..models import Actor
from ..sqlite import SqliteStore
from ..wire import dump, load
from .models import Task

MAX_LIST = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    priority INTEGER NOT NULL,
    state TEXT NOT NULL,
    actor TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    next_attempt_at REAL,
    progress REAL NOT NULL DEFAULT 0,
    progress_message TEXT,
    waiting_reason TEXT,
    result TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    node TEXT
);
-- What the dispatcher asks on every decision: the best runnable tasks, in order.
CREATE INDEX IF NOT EXISTS tasks_runnable ON tasks (priority DESC, id)
    WHERE state IN ('queued', 'waiting');
CREATE INDEX IF NOT EXISTS tasks_state_finished ON tasks (state, finished_at);
"""
_COLUMNS = (
    "id, kind, payload, priority, state, actor, attempts, max_attempts, next_attempt_at,"
    " progress, progress_message, waiting_reason, result, error, created_at, started_at,"
    " finished_at, node"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskQuery:
    """Filters for listing tasks; newest first, paged by id."""

    state: str | None = None
    kind: str | None = None
    before_id: int | None = None
    limit: int = 100


class ReadyTask(NamedTuple):
    """A runnable task as the dispatcher sees it."""

    id: int
    kind: str
    state: str
    waiting_reason: str | None
    attempts: int
    priority: int


def _task(row: tuple[Any, ...]) -> Task:
    return Task(
        id=row[0],
        kind=row[1],
        payload=json.loads(row[2]),
        priority=row[3],
        state=row[4],
        actor=load(Actor, json.loads(row[5])),
        attempts=row[6],
        max_attempts=row[7],
        next_attempt_at=row[8],
        progress=row[9],
        progress_message=row[10],
        waiting_reason=row[11],
        result=None if row[12] is None else json.loads(row[12]),
        error=row[13],
        created_at=row[14],
        started_at=row[15],
        finished_at=row[16],
        node=row[17],
    )


class TaskStore(SqliteStore):
    """Tasks on disk."""

    schema = _SCHEMA
    # An enqueue must not wait for a disk sync (> 2,000 a second); a kill still loses nothing.
    synchronous = "NORMAL"

    def _connect(self, path: Path) -> sqlite3.Connection:
        db = super()._connect(path)
        # A queue made before tasks ran on cluster nodes has no node column yet.
        if "node" not in {row[1] for row in db.execute("PRAGMA table_info(tasks)")}:
            db.execute("ALTER TABLE tasks ADD COLUMN node TEXT")
        return db

    def __init__(self, path: Path | None) -> None:
        """Keep the queue in ``path``; None keeps it in memory (tests, benchmarks)."""
        super().__init__(path, thread_name="tasks")
        # Unfinished tasks, counted at an add and kept by the adds after it (only this store's
        # thread writes the queue); a change of state makes the next add count again. An enqueue
        # then costs no scan of the queue.
        self._unfinished: int | None = None

    async def async_add(
        self,
        *,
        kind: str,
        payload: dict[str, Any],
        priority: int,
        max_attempts: int,
        actor: Actor,
        limit: int,
    ) -> Task | None:
        """Queue a new task; None when ``limit`` tasks are already unfinished."""
        return await self._run(
            partial(self._add, kind, payload, priority, max_attempts, actor, time.time(), limit)
        )

    def _add(  # noqa: PLR0917 - a private step behind async_add's keywords
        self,
        kind: str,
        payload: dict[str, Any],
        priority: int,
        max_attempts: int,
        actor: Actor,
        now: float,
        limit: int,
    ) -> Task | None:
        db = self._open()
        if self._unfinished is None:
            (self._unfinished,) = db.execute(
                "SELECT COUNT(*) FROM tasks WHERE state IN ('queued', 'waiting', 'running')"
            ).fetchone()
        if self._unfinished >= limit:
            return None
        cursor = db.execute(
            "INSERT INTO tasks (kind, payload, priority, state, actor, max_attempts, created_at)"
            " VALUES (?, ?, ?, 'queued', ?, ?, ?)",
            (kind, json.dumps(payload), priority, json.dumps(dump(actor)), max_attempts, now),
        )
        self._unfinished += 1
        return Task(
            id=cursor.lastrowid or 0,
            kind=kind,
            payload=payload,
            priority=priority,
            state="queued",
            actor=actor,
            max_attempts=max_attempts,
            created_at=now,
        )

    async def async_get(self, task_id: int) -> Task | None:
        """One task."""
        return await self._run(partial(self._get, task_id))

    def _get(self, task_id: int) -> Task | None:
        row = self._by_id("tasks", _COLUMNS, task_id)
        return None if row is None else _task(row)

    async def async_many(self, task_ids: Iterable[int]) -> dict[int, Task]:
        """The tasks with these ids that exist, by id."""
        return await self._run(partial(self._many, list(task_ids)))

    def _many(self, task_ids: list[int]) -> dict[int, Task]:
        found: dict[int, Task] = {}
        db = self._open()
        for start in range(0, len(task_ids), 500):
            chunk = task_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {_COLUMNS} FROM tasks WHERE id IN ({marks})"  # noqa: S608 - only marks
            for row in db.execute(sql, chunk):
                task = _task(row)
                found[task.id] = task
        return found

    async def async_list(self, query: TaskQuery) -> list[Task]:
        """Tasks matching the filters, newest first."""
        return await self._run(partial(self._list, query))

    def _list(self, query: TaskQuery) -> list[Task]:
        rows = self._newest(
            "tasks",
            _COLUMNS,
            (("state = ?", query.state), ("kind = ?", query.kind), ("id < ?", query.before_id)),
            min(max(query.limit, 1), MAX_LIST),
        )
        return [_task(row) for row in rows]

    async def async_ready(self, now: float, limit: int) -> list[ReadyTask]:
        """The runnable tasks in dispatch order: priority first, then first in, first out.

        Only what a dispatch decision looks at, so a decision stays cheap with a long queue.
        """
        return await self._run(partial(self._ready, now, limit))

    def _ready(self, now: float, limit: int) -> list[ReadyTask]:
        sql = (
            # The partial index is already in dispatch order: no sort, whatever the queue's length.
            "SELECT id, kind, state, waiting_reason, attempts, priority"
            " FROM tasks INDEXED BY tasks_runnable"
            " WHERE state IN ('queued', 'waiting')"
            " AND (next_attempt_at IS NULL OR next_attempt_at <= ?)"
            " ORDER BY priority DESC, id LIMIT ?"
        )
        return [ReadyTask(*row) for row in self._open().execute(sql, (now, limit))]

    async def async_next_attempt_at(self) -> float | None:
        """When the earliest task held back by its retry backoff becomes runnable."""
        return await self._run(self._next_attempt_at)

    def _next_attempt_at(self) -> float | None:
        row = (
            self._open()
            .execute("SELECT MIN(next_attempt_at) FROM tasks WHERE state IN ('queued', 'waiting')")
            .fetchone()
        )
        earliest: float | None = row[0]
        return earliest

    async def async_update(self, task_id: int, **changes: Any) -> Task:
        """Change some of a task's fields; returns the task as stored."""
        return await self._run(partial(self._update, task_id, changes))

    async def async_claim(self, task_id: int, **changes: Any) -> Task | None:
        """Change a task that is still queued or waiting (to start or cancel it); None when
        it is not any more (cancelled, or started, since it was read)."""
        return await self._run(partial(self._claim, task_id, changes))

    def _claim(self, task_id: int, changes: dict[str, Any]) -> Task | None:
        return self._change(task_id, changes, "AND state IN ('queued', 'waiting')")

    def _update(self, task_id: int, changes: dict[str, Any]) -> Task:
        task = self._change(task_id, changes, "")
        assert task is not None
        return task

    def _change(self, task_id: int, changes: dict[str, Any], condition: str) -> Task | None:
        encoded = {
            key: json.dumps(value) if key in ("payload", "result") and value is not None else value
            for key, value in changes.items()
        }
        assignments = ", ".join(f"{key} = ?" for key in encoded)
        if "state" in changes:
            self._unfinished = None
        cursor = self._open().execute(
            f"UPDATE tasks SET {assignments} WHERE id = ? {condition}",  # noqa: S608 - our fields
            (*encoded.values(), task_id),
        )
        if condition and cursor.rowcount == 0:
            return None
        return self._get(task_id)

    async def async_recover(self) -> list[Task]:
        """After a crash: tasks that were running go back to the queue, their attempt counted.

        A task that has used all its attempts this way fails instead.
        """
        return await self._run(self._recover)

    def _recover(self) -> list[Task]:
        db = self._open()
        self._unfinished = None
        running = [row[0] for row in db.execute("SELECT id FROM tasks WHERE state = 'running'")]
        now = time.time()
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "UPDATE tasks SET state = 'failed', finished_at = ?, error = 'Interrupted by a worker"
            " restart on its last attempt' WHERE state = 'running' AND attempts >= max_attempts",
            (now,),
        )
        db.execute(
            "UPDATE tasks SET state = 'queued', progress = 0, progress_message = NULL,"
            " waiting_reason = NULL WHERE state = 'running'"
        )
        db.execute("COMMIT")
        return [task for task_id in running if (task := self._get(task_id)) is not None]

    async def async_finished(self, since: float, until: float, limit: int) -> list[Task]:
        """Tasks that finished (succeeded, failed, cancelled) in ``since``..``until``.

        The latest ``limit`` of them, oldest first.
        """
        return await self._run(partial(self._finished, since, until, limit))

    def _finished(self, since: float, until: float, limit: int) -> list[Task]:
        sql = (
            f"SELECT {_COLUMNS} FROM tasks"  # noqa: S608 - fixed columns, values are bound
            " WHERE state IN ('succeeded', 'failed', 'cancelled') AND finished_at BETWEEN ? AND ?"
            " ORDER BY finished_at DESC, id DESC LIMIT ?"
        )
        rows = self._open().execute(sql, (since, until, min(max(limit, 1), MAX_LIST))).fetchall()
        return [_task(row) for row in reversed(rows)]

    async def async_counts(self, since: float) -> dict[str, int]:
        """How many tasks are in each state; finished ones only counted since ``since``."""
        return await self._run(partial(self._counts, since))

    def _counts(self, since: float) -> dict[str, int]:
        db = self._open()
        counts = dict(
            db.execute(
                "SELECT state, COUNT(*) FROM tasks WHERE state IN ('queued', 'waiting', 'running')"
                " GROUP BY state"
            ).fetchall()
        )
        counts.update(
            db.execute(
                "SELECT state, COUNT(*) FROM tasks WHERE state IN ('succeeded', 'failed',"
                " 'cancelled') AND finished_at >= ? GROUP BY state",
                (since,),
            ).fetchall()
        )
        return counts
