"""What the creative pipeline keeps: chapters, the assets made (by content address), the tasks
queued for each chapter's assets, and the ComfyUI prompts in flight.

All in SQLite (WAL) in the data dir, every change committed before the caller goes on, so a
worker killed at any moment loses nothing: a chapter picks up where it was, a finished asset is
found by its address and never made again, and a prompt ComfyUI was drawing when the worker
died is collected from ComfyUI's history instead of being drawn twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
import json
from pathlib import Path
import time
from typing import Any

from ..models import Actor
from ..sqlite import SqliteStore
from ..wire import dump, load
from .models import Chapter, ChapterPlan

DB_FILE = "creative.db"
MAX_LIST = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chapters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT,
    project TEXT NOT NULL,
    name TEXT,
    chapter TEXT NOT NULL,
    plan TEXT NOT NULL,
    state TEXT NOT NULL,
    stage TEXT,
    task_id INTEGER,
    package TEXT,
    error TEXT,
    regenerate INTEGER NOT NULL DEFAULT 0,
    actor TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS chapters_state ON chapters (state);
-- The task queued to make each asset of a chapter (the latest one).
CREATE TABLE IF NOT EXISTS chapter_tasks (
    chapter_id INTEGER NOT NULL,
    address TEXT NOT NULL,
    task_id INTEGER NOT NULL,
    PRIMARY KEY (chapter_id, address)
);
-- Every asset made, by content address: the file, how many tries, the score and review.
CREATE TABLE IF NOT EXISTS assets (
    address TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    tries INTEGER NOT NULL DEFAULT 1,
    score REAL,
    threshold REAL,
    review_asset_id INTEGER,
    review_state TEXT,
    made_at REAL NOT NULL
);
-- A prompt ComfyUI took for an asset and has not answered yet.
CREATE TABLE IF NOT EXISTS inflight (
    address TEXT NOT NULL,
    try INTEGER NOT NULL,
    server TEXT NOT NULL,
    prompt_id TEXT NOT NULL,
    PRIMARY KEY (address, try)
);
"""
_COLUMNS = (
    "id, title, project, name, state, stage, task_id, package, error, regenerate, actor,"
    " created_at, started_at, finished_at"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChapterRow:
    """A chapter as kept, without its text and plan (``async_plan`` reads those)."""

    id: int
    title: str | None
    project: str
    name: str | None
    state: str
    stage: str | None
    task_id: int | None
    package: str | None
    error: str | None
    regenerate: bool
    actor: Actor
    created_at: float
    started_at: float | None
    finished_at: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MadeAsset:
    """An asset made: its file, how many tries it took, its score and where its review stands
    (``auto_accepted``, ``pending``, ``accepted``, ``rejected``; None when it was not scored)."""

    address: str
    kind: str
    path: Path
    tries: int = 1
    score: float | None = None
    threshold: float | None = None
    review_asset_id: int | None = None
    review_state: str | None = None
    made_at: float = 0.0


def _chapter(row: tuple[Any, ...]) -> ChapterRow:
    (id_, title, project, name, state, stage, task_id, package, error, regenerate, actor) = row[:11]
    return ChapterRow(
        id=id_,
        title=title,
        project=project,
        name=name,
        state=state,
        stage=stage,
        task_id=task_id,
        package=package,
        error=error,
        regenerate=bool(regenerate),
        actor=load(Actor, json.loads(actor)),
        created_at=row[11],
        started_at=row[12],
        finished_at=row[13],
    )


def _asset(row: tuple[Any, ...]) -> MadeAsset:
    address, kind, path, tries, score, threshold, review_id, review_state, made_at = row
    return MadeAsset(
        address=address,
        kind=kind,
        path=Path(path),
        tries=tries,
        score=score,
        threshold=threshold,
        review_asset_id=review_id,
        review_state=review_state,
        made_at=made_at,
    )


_ASSET_COLUMNS = (
    "address, kind, path, tries, score, threshold, review_asset_id, review_state, made_at"
)


class ChapterStore(SqliteStore):
    """Chapters, assets made and prompts in flight, in ``creative.db``."""

    schema = _SCHEMA

    def __init__(self, path: Path | None) -> None:
        super().__init__(path, thread_name="hydra-creative-db")

    # Chapters

    async def async_add(
        self,
        *,
        chapter: Chapter,
        plan: ChapterPlan,
        project: str,
        name: str | None,
        state: str,
        regenerate: bool,
        actor: Actor,
    ) -> ChapterRow:
        """Keep a new chapter with its parsed text and plan."""
        return await self._run(
            partial(
                self._add,
                (
                    chapter.title,
                    project,
                    name,
                    json.dumps(dump(chapter)),
                    json.dumps(dump(plan)),
                    state,
                    int(regenerate),
                    json.dumps(dump(actor)),
                    time.time(),
                ),
            )
        )

    def _add(self, values: tuple[Any, ...]) -> ChapterRow:
        db = self._open()
        cursor = db.execute(
            "INSERT INTO chapters (title, project, name, chapter, plan, state, regenerate, actor,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            values,
        )
        row = self._get(cursor.lastrowid or 0)
        assert row is not None
        return row

    async def async_get(self, chapter_id: int) -> ChapterRow | None:
        """One chapter."""
        return await self._run(partial(self._get, chapter_id))

    def _get(self, chapter_id: int) -> ChapterRow | None:
        row = self._by_id("chapters", _COLUMNS, chapter_id)
        return None if row is None else _chapter(row)

    async def async_list(self, *, state: str | None = None, limit: int = 50) -> list[ChapterRow]:
        """Chapters, newest first."""
        return await self._run(partial(self._list, state, limit))

    def _list(self, state: str | None, limit: int) -> list[ChapterRow]:
        rows = self._newest("chapters", _COLUMNS, (("state = ?", state),), min(limit, MAX_LIST))
        return [_chapter(row) for row in rows]

    async def async_plan(self, chapter_id: int) -> tuple[Chapter, ChapterPlan]:
        """A chapter's parsed text and its plan."""
        return await self._run(partial(self._plan, chapter_id))

    def _plan(self, chapter_id: int) -> tuple[Chapter, ChapterPlan]:
        row = (
            self._open()
            .execute("SELECT chapter, plan FROM chapters WHERE id = ?", (chapter_id,))
            .fetchone()
        )
        if row is None:
            raise KeyError(chapter_id)
        return load(Chapter, json.loads(row[0])), load(ChapterPlan, json.loads(row[1]))

    async def async_update(self, chapter_id: int, **changes: Any) -> ChapterRow:
        """Change some of a chapter's fields; answers the chapter as kept."""
        return await self._run(partial(self._update, chapter_id, changes))

    def _update(self, chapter_id: int, changes: dict[str, Any]) -> ChapterRow:
        columns = ", ".join(f"{name} = ?" for name in changes)
        # Only the store's own column names (keyword arguments) are formatted in.
        self._open().execute(
            f"UPDATE chapters SET {columns} WHERE id = ?",  # noqa: S608
            (*changes.values(), chapter_id),
        )
        row = self._get(chapter_id)
        assert row is not None
        return row

    # The tasks of a chapter's assets

    async def async_tasks(self, chapter_id: int) -> dict[str, int]:
        """The task queued for each of the chapter's assets, by address."""
        return await self._run(partial(self._tasks, chapter_id))

    def _tasks(self, chapter_id: int) -> dict[str, int]:
        rows = self._open().execute(
            "SELECT address, task_id FROM chapter_tasks WHERE chapter_id = ?", (chapter_id,)
        )
        return dict(rows)

    async def async_set_task(self, chapter_id: int, address: str, task_id: int) -> None:
        """Remember the task that makes one of the chapter's assets."""
        await self._run(
            partial(
                self._execute,
                "INSERT OR REPLACE INTO chapter_tasks (chapter_id, address, task_id)"
                " VALUES (?, ?, ?)",
                (chapter_id, address, task_id),
            )
        )

    def _execute(self, sql: str, values: tuple[Any, ...]) -> None:
        self._open().execute(sql, values)

    # Assets

    async def async_assets(self, addresses: list[str] | None = None) -> dict[str, MadeAsset]:
        """The assets made among ``addresses`` (all when None), by address."""
        return await self._run(partial(self._assets, addresses))

    def _assets(self, addresses: list[str] | None) -> dict[str, MadeAsset]:
        db = self._open()
        if addresses is None:
            rows = list(db.execute(f"SELECT {_ASSET_COLUMNS} FROM assets"))  # noqa: S608
        else:
            rows = []
            for start in range(0, len(addresses), 500):
                chunk = addresses[start : start + 500]
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT {_ASSET_COLUMNS} FROM assets WHERE address IN ({marks})"  # noqa: S608
                rows.extend(db.execute(sql, chunk))
        return {row[0]: _asset(row) for row in rows}

    async def async_made(self, asset: MadeAsset) -> None:
        """Record a finished asset (replacing what a regeneration replaces); its prompts in
        flight are done with."""
        await self._run(partial(self._made, asset))

    def _made(self, asset: MadeAsset) -> None:
        db = self._open()
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            f"INSERT OR REPLACE INTO assets ({_ASSET_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            (
                asset.address,
                asset.kind,
                str(asset.path),
                asset.tries,
                asset.score,
                asset.threshold,
                asset.review_asset_id,
                asset.review_state,
                asset.made_at or time.time(),
            ),
        )
        db.execute("DELETE FROM inflight WHERE address = ?", (asset.address,))
        db.execute("COMMIT")

    async def async_review_decided(self, review_asset_id: int, state: str) -> str | None:
        """A person decided a review asset: record it; answers the asset's address, if it is
        one of the pipeline's."""
        return await self._run(partial(self._review_decided, review_asset_id, state))

    def _review_decided(self, review_asset_id: int, state: str) -> str | None:
        db = self._open()
        row = db.execute(
            "SELECT address FROM assets WHERE review_asset_id = ?", (review_asset_id,)
        ).fetchone()
        if row is None:
            return None
        db.execute(
            "UPDATE assets SET review_state = ? WHERE review_asset_id = ?", (state, review_asset_id)
        )
        address: str = row[0]
        return address

    # Prompts in flight

    async def async_inflight(self, address: str) -> dict[int, tuple[str, str]]:
        """The prompts ComfyUI took for an asset and never answered: try -> (server, id)."""
        return await self._run(partial(self._inflight, address))

    def _inflight(self, address: str) -> dict[int, tuple[str, str]]:
        rows = self._open().execute(
            "SELECT try, server, prompt_id FROM inflight WHERE address = ?", (address,)
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    async def async_set_inflight(
        self, address: str, attempt: int, server: str, prompt_id: str | None
    ) -> None:
        """Remember (or, with no ``prompt_id``, forget) the prompt of one try of an asset."""
        values: tuple[Any, ...]
        if prompt_id is None:
            sql, values = "DELETE FROM inflight WHERE address = ? AND try = ?", (address, attempt)
        else:
            sql = (
                "INSERT OR REPLACE INTO inflight (address, try, server, prompt_id)"
                " VALUES (?, ?, ?, ?)"
            )
            values = (address, attempt, server, prompt_id)
        await self._run(partial(self._execute, sql, values))
