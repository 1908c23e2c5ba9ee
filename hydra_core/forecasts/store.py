"""The forecasts' own history, in the data dir: disk samples and container trouble.

Small and bounded: one row per watched path and hour (the sums of that hour's disk samples, so
a week of samples every few minutes is a few hundred rows a path) and one row per container
event worth counting (a restart, a death, an unhealthy turn, a self-healing restart), each kept
``KEEP_S`` (eight days, as the GPU samples) and dropped once an hour after that; a container
whose events flood in keeps at most ``MAX_EVENTS_PER_CONTAINER`` of them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from ..sqlite import SqliteStore

KEEP_S = 8 * 86400.0
MAX_EVENTS_PER_CONTAINER = 5000
_PRUNE_EVERY_S = 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS disk_hours (
    path TEXT NOT NULL,
    hour INTEGER NOT NULL,
    free_sum REAL NOT NULL,
    samples INTEGER NOT NULL,
    total INTEGER NOT NULL,
    PRIMARY KEY (path, hour)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS container_events (
    container TEXT NOT NULL,
    time REAL NOT NULL,
    kind TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS container_events_name_time ON container_events (container, time);
CREATE TABLE IF NOT EXISTS containers_seen (
    container TEXT PRIMARY KEY,
    since REAL NOT NULL
) WITHOUT ROWID;
"""


class ForecastStore(SqliteStore):
    """Disk samples and container events, kept eight days."""

    schema = _SCHEMA
    # A sample lost to a power cut does not matter.
    synchronous = "NORMAL"

    def __init__(self, path: Path | None, *, keep_s: float = KEEP_S) -> None:
        """Keep the history in ``path`` (None: in memory)."""
        super().__init__(path, thread_name="forecasts")
        self._keep_s = keep_s
        self._pruned_at: float | None = None

    async def async_add_disk(self, when: float, samples: Sequence[tuple[str, int, int]]) -> None:
        """One sample (path, free bytes, total bytes) per path measured at ``when``."""
        await self._run(partial(self._add_disk, when, samples))

    def _add_disk(self, when: float, samples: Sequence[tuple[str, int, int]]) -> None:
        db = self._open()
        with db:
            db.execute("BEGIN")
            db.executemany(
                "INSERT INTO disk_hours VALUES (?, ?, ?, 1, ?) ON CONFLICT (path, hour) DO UPDATE"
                " SET free_sum = free_sum + excluded.free_sum, samples = samples + 1,"
                " total = excluded.total",
                [(path, int(when // 3600), free, total) for path, free, total in samples],
            )
            self._prune(when)

    async def async_add_event(self, when: float, container: str, kind: str) -> None:
        """Count one container event."""
        await self._run(partial(self._add_event, when, container, kind))

    def _add_event(self, when: float, container: str, kind: str) -> None:
        db = self._open()
        with db:
            db.execute("BEGIN")
            db.execute("INSERT INTO container_events VALUES (?, ?, ?)", (container, when, kind))
            db.execute(
                "DELETE FROM container_events WHERE container = ? AND time <= (SELECT time FROM"
                " container_events WHERE container = ? ORDER BY time DESC LIMIT 1 OFFSET ?)",
                (container, container, MAX_EVENTS_PER_CONTAINER),
            )
            self._prune(when)

    async def async_seen(self, when: float, containers: Sequence[str]) -> None:
        """Note when each container was first watched (its history starts there)."""
        await self._run(partial(self._seen, when, containers))

    def _seen(self, when: float, containers: Sequence[str]) -> None:
        self._open().executemany(
            "INSERT OR IGNORE INTO containers_seen VALUES (?, ?)",
            [(name, when) for name in containers],
        )

    def _prune(self, now: float) -> None:
        if self._pruned_at is not None and now - self._pruned_at < _PRUNE_EVERY_S:
            return
        self._pruned_at = now
        before = now - self._keep_s
        db = self._open()
        db.execute("DELETE FROM disk_hours WHERE hour < ?", (int(before // 3600),))
        db.execute("DELETE FROM container_events WHERE time < ?", (before,))

    async def async_disk_hours(self, since: float) -> dict[str, list[tuple[float, float]]]:
        """Each path's free bytes as hourly means (mid-hour time, bytes), oldest first, from
        the start of the hour of ``since``."""
        return await self._run(partial(self._disk_hours, since))

    def _disk_hours(self, since: float) -> dict[str, list[tuple[float, float]]]:
        found: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for path, hour, free in self._open().execute(
            "SELECT path, hour, free_sum / samples FROM disk_hours WHERE hour >= ?"
            " ORDER BY path, hour",
            (int(since // 3600),),
        ):
            found[path].append((hour * 3600.0 + 1800.0, free))
        return dict(found)

    async def async_events(self, since: float) -> dict[str, tuple[float, list[float]]]:
        """Each watched container: (when it was first watched, its event times since
        ``since``)."""
        return await self._run(partial(self._events, since))

    def _events(self, since: float) -> dict[str, tuple[float, list[float]]]:
        db = self._open()
        found: dict[str, tuple[float, list[float]]] = {
            name: (first, []) for name, first in db.execute("SELECT * FROM containers_seen")
        }
        for name, when in db.execute(
            "SELECT container, time FROM container_events WHERE time >= ? ORDER BY time",
            (since,),
        ):
            found.setdefault(name, (when, []))[1].append(when)
        return found
