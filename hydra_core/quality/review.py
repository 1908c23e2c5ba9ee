"""The review store: every kept asset, its score and its decision, in ``DATA_DIR/quality.db``.

An asset's image is a file under ``DATA_DIR/assets/``, written (and synced) before its row is
committed; a row that cannot be committed takes its file away again. Decisions are single
conditional updates, so two reviewers deciding at once cannot both win: a person may decide an
asset that is pending or was auto-accepted; once a person decided it, the decision is final
(``AssetDecidedError``) so the decisions learning relies on do not change under it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial
import json
from pathlib import Path
import sqlite3
import time
from typing import Any
import uuid

from ..models import Actor
from ..sqlite import SqliteStore
from ..state_files import write_atomic
from ..wire import dump, load
from .errors import AssetDecidedError, AssetNotFoundError, InvalidDecisionError
from .files import StoredImage
from .learning import Decision
from .models import ASSET_STATES, Asset, ImageScore

DB_FILE = "quality.db"
ASSETS_DIR = "assets"
MAX_LIST = 1000
_DECISION_STATES = {"accept": "accepted", "reject": "rejected"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS assets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    file TEXT NOT NULL,
    content_type TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    character TEXT,
    prompt TEXT,
    name TEXT,
    score TEXT NOT NULL,
    overall REAL NOT NULL,
    threshold REAL NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    decided_by TEXT,
    created_at REAL NOT NULL,
    decided_at REAL
);
CREATE INDEX IF NOT EXISTS assets_state ON assets (state, id);
"""
# Every column an Asset has, by its field names; ``score`` and ``decided_by`` are JSON.
_FIELDS = tuple(field.name for field in dataclasses.fields(Asset))
_COLUMNS = ", ".join(_FIELDS)


@dataclass(frozen=True, slots=True, kw_only=True)
class NewAsset:
    """What submitting an asset records."""

    image: StoredImage
    score: ImageScore
    threshold: float
    character: str | None = None
    prompt: str | None = None
    name: str | None = None

    @property
    def state(self) -> str:
        """Auto-accepted at or above the threshold, else waiting for a person."""
        return "auto_accepted" if self.score.overall >= self.threshold else "pending"


class ReviewStore(SqliteStore):
    """Assets and decisions; image files under ``assets_dir``."""

    schema = _SCHEMA

    def __init__(self, path: Path | None, assets_dir: Path) -> None:
        """Keep rows in ``path`` (None: in memory) and images in ``assets_dir``."""
        super().__init__(path, thread_name="hydra-quality-db")
        self._assets_dir = assets_dir

    async def async_add(self, new: NewAsset, *, now: float | None = None) -> Asset:
        """Keep the image and its row; return the asset."""
        return await self._run(partial(self._add, new, time.time() if now is None else now))

    def _add(self, new: NewAsset, now: float) -> Asset:
        file = f"{uuid.uuid4().hex}.{new.image.extension}"
        path = self._assets_dir / file
        write_atomic(path, new.image.data)
        try:
            cursor = self._open().execute(
                "INSERT INTO assets (file, content_type, width, height, character, prompt, name,"
                " score, overall, threshold, state, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    file,
                    new.image.content_type,
                    new.image.width,
                    new.image.height,
                    new.character,
                    new.prompt,
                    new.name,
                    json.dumps(dump(new.score)),
                    new.score.overall,
                    new.threshold,
                    new.state,
                    now,
                ),
            )
        except sqlite3.Error:
            path.unlink(missing_ok=True)
            raise
        asset = self._get(cursor.lastrowid or 0)
        assert asset is not None
        return asset

    async def async_get(self, asset_id: int) -> Asset:
        """One asset, or AssetNotFoundError."""
        asset = await self._run(partial(self._get, asset_id))
        if asset is None:
            raise AssetNotFoundError(f"No asset {asset_id}")
        return asset

    def _get(self, asset_id: int) -> Asset | None:
        row = self._by_id("assets", _COLUMNS, asset_id)
        return None if row is None else _asset(row)

    async def async_image_path(self, asset_id: int) -> tuple[Path, str]:
        """Where an asset's image is, and its content type."""
        row = await self._run(partial(self._by_id, "assets", "file, content_type", asset_id))
        if row is None:
            raise AssetNotFoundError(f"No asset {asset_id}")
        return self._assets_dir / row[0], row[1]

    async def async_list(self, *, state: str | None = None, limit: int = 100) -> list[Asset]:
        """Assets in ``state``: the oldest first for pending (the review queue), else newest
        first."""
        return await self._run(partial(self._list, state, min(limit, MAX_LIST)))

    def _list(self, state: str | None, limit: int) -> list[Asset]:
        order = "id" if state == "pending" else "id DESC"
        where, params = ("WHERE state = ?", [state]) if state else ("", [])
        rows = self._open().execute(
            f"SELECT {_COLUMNS} FROM assets {where} ORDER BY {order} LIMIT ?",  # noqa: S608
            (*params, limit),
        )
        return [_asset(row) for row in rows]

    async def async_decide(
        self,
        asset_id: int,
        decision: str,
        *,
        actor: Actor,
        reason: str | None = None,
        now: float | None = None,
    ) -> Asset:
        """Record a person's accept or reject of an asset that is pending or auto-accepted."""
        state = _DECISION_STATES.get(decision)
        if state is None:
            raise InvalidDecisionError(
                f"decision must be {' or '.join(_DECISION_STATES)}, not {decision!r}"
            )
        when = time.time() if now is None else now
        return await self._run(partial(self._decide, asset_id, state, actor, reason, when))

    def _decide(
        self, asset_id: int, state: str, actor: Actor, reason: str | None, now: float
    ) -> Asset:
        cursor = self._open().execute(
            "UPDATE assets SET state = ?, reason = ?, decided_by = ?, decided_at = ?"
            " WHERE id = ? AND state IN ('pending', 'auto_accepted')",
            (state, reason, json.dumps(dump(actor)), now, asset_id),
        )
        asset = self._get(asset_id)
        if asset is None:
            raise AssetNotFoundError(f"No asset {asset_id}")
        if cursor.rowcount == 0:
            who = asset.decided_by.name or asset.decided_by.type if asset.decided_by else "?"
            raise AssetDecidedError(
                f"Asset {asset_id} was already {asset.state} (by {who}); a person's decision"
                " is final"
            )
        return asset

    async def async_counts(self) -> dict[str, int]:
        """Assets per state."""
        counts = dict(
            await self._run(
                lambda: (
                    self._open()
                    .execute("SELECT state, COUNT(*) FROM assets GROUP BY state")
                    .fetchall()
                )
            )
        )
        return {state: counts.get(state, 0) for state in ASSET_STATES}

    async def async_decisions(self) -> list[Decision]:
        """Every human decision, oldest first."""
        return await self._run(self._decisions)

    def _decisions(self) -> list[Decision]:
        rows = self._open().execute(
            "SELECT character, overall, state, reason, prompt FROM assets"
            " WHERE state IN ('accepted', 'rejected') ORDER BY decided_at, id"
        )
        return [
            Decision(
                character=character,
                overall=overall,
                accepted=state == "accepted",
                reason=reason,
                prompt=prompt,
            )
            for character, overall, state, reason, prompt in rows
        ]


def _asset(row: tuple[Any, ...]) -> Asset:
    data = dict(zip(_FIELDS, row, strict=True))
    for field in ("score", "decided_by"):
        if data[field] is not None:
            data[field] = json.loads(data[field])
    return load(Asset, data)
