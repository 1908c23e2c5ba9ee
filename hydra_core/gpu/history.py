"""The GPUs' recent past: the probe sampled every few seconds and kept in SQLite for a week.

Home Assistant's morning briefing asks what the cards did overnight; the worker keeps its own
samples so the answer survives a worker restart and does not depend on HA's recorder.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import groupby, pairwise
import logging
from pathlib import Path
import sqlite3
import time
from typing import Any

from ..background import cancel, repeat
from ..sqlite import SqliteStore
from .base import GpuProbe
from .models import GpuNight

_LOGGER = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 30.0
KEEP_S = 8 * 86400
_PRUNE_EVERY_S = 3600.0
# Power is only integrated between samples at most this many intervals apart: a longer gap
# (the worker was down, the driver hung) is left out rather than guessed.
_MAX_GAP_INTERVALS = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS gpu_samples (
    time REAL NOT NULL,
    uuid TEXT NOT NULL,
    gpu_index INTEGER NOT NULL,
    name TEXT NOT NULL,
    temperature_c REAL,
    power_draw_w REAL,
    utilization_percent REAL,
    fan_percent REAL,
    PRIMARY KEY (time, uuid)
) WITHOUT ROWID;
-- Sums per GPU, hour and utilisation bin (-1: no utilisation read), kept as samples come in,
-- so the forecasts read a few thousand rows instead of averaging a week of samples each time.
CREATE TABLE IF NOT EXISTS gpu_hours (
    uuid TEXT NOT NULL,
    hour INTEGER NOT NULL,
    load INTEGER NOT NULL,
    gpu_index INTEGER NOT NULL,
    name TEXT NOT NULL,
    temperature_sum REAL NOT NULL,
    temperature_n INTEGER NOT NULL,
    fan_sum REAL NOT NULL,
    fan_n INTEGER NOT NULL,
    power_sum REAL NOT NULL,
    power_n INTEGER NOT NULL,
    PRIMARY KEY (uuid, hour, load)
) WITHOUT ROWID;
"""
# Files written before the fan was sampled get its column (NULL in their old rows).
_ADD_FAN = "ALTER TABLE gpu_samples ADD COLUMN fan_percent REAL"
_ADD_TO_HOUR = """
INSERT INTO gpu_hours VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (uuid, hour, load) DO UPDATE SET
    gpu_index = excluded.gpu_index,
    name = excluded.name,
    temperature_sum = temperature_sum + excluded.temperature_sum,
    temperature_n = temperature_n + excluded.temperature_n,
    fan_sum = fan_sum + excluded.fan_sum,
    fan_n = fan_n + excluded.fan_n,
    power_sum = power_sum + excluded.power_sum,
    power_n = power_n + excluded.power_n
"""
# Files written before the hourly sums get them from their samples, once.
_FILL_HOURS = """
INSERT INTO gpu_hours
SELECT uuid, CAST(time / 3600 AS INTEGER), COALESCE(CAST(utilization_percent / 10 AS INTEGER), -1),
    gpu_index, name, TOTAL(temperature_c), COUNT(temperature_c), TOTAL(fan_percent),
    COUNT(fan_percent), TOTAL(power_draw_w), COUNT(power_draw_w)
FROM gpu_samples GROUP BY 1, 2, 3
"""

# time, uuid, index, name, temperature, power, utilization, fan
_Sample = tuple[float, str, int, str, float | None, float | None, float | None, float | None]
# Utilisation bins (percent) within which power draws are compared over time.
_UTILIZATION_BIN = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuHours:
    """One GPU's samples as hourly means (mid-hour time, value), oldest first, for forecasts.

    ``power_by_load`` holds (mid-hour time, utilisation bin, mean draw) for the hours with a
    reading, so a draw can be compared with others at the same load.
    """

    uuid: str
    index: int
    name: str
    temperature: tuple[tuple[float, float], ...]
    fan: tuple[tuple[float, float], ...]
    power_by_load: tuple[tuple[float, int, float], ...]


class GpuHistory(SqliteStore):
    """Samples every GPU the probe sees and summarises spans of the samples."""

    schema = _SCHEMA
    # A sample lost to a power cut does not matter; a sync every 30 s per round would.
    synchronous = "NORMAL"

    def __init__(
        self,
        path: Path | None,
        probe: GpuProbe,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        keep_s: float = KEEP_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Keep the samples in ``path`` (None: in memory); read ``probe``, which is started."""
        super().__init__(path, thread_name="gpu-history")
        self._probe = probe
        self._interval_s = interval_s
        self._keep_s = keep_s
        self._clock = clock
        self._pruned_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    async def async_start(self) -> None:
        """Open the samples and take one now, then one every interval in the background."""
        await self.async_open()
        self._task = asyncio.create_task(
            repeat(
                self.async_sample,
                self._interval_s,
                logger=_LOGGER,
                failure="Recording the GPUs' samples failed",
                at_once=True,
            ),
            name="hydra gpu history",
        )

    async def async_stop(self) -> None:
        """Stop sampling and close the database."""
        await cancel(self._task)
        self._task = None
        await self.async_close()

    async def async_sample(self) -> None:
        """Read the probe once and store one row per GPU; drop old rows once an hour."""
        report = await self._probe.async_read()
        now = self._clock()
        rows = [
            (
                now,
                gpu.uuid,
                gpu.index,
                gpu.name,
                gpu.temperature_c,
                gpu.power_draw_w,
                gpu.utilization_percent,
                gpu.fan_percent,
            )
            for gpu in report.gpus
        ]
        prune_before = None
        if self._pruned_at is None or now - self._pruned_at >= _PRUNE_EVERY_S:
            prune_before = now - self._keep_s
            self._pruned_at = now
        if rows or prune_before is not None:
            await self._run(partial(self._store, rows, prune_before))

    def _store(self, rows: Sequence[_Sample], prune_before: float | None) -> None:
        db = self._open()
        with db:  # one transaction per round: committed on success, rolled back on error
            db.execute("BEGIN")
            db.executemany(
                "INSERT OR REPLACE INTO gpu_samples VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
            db.executemany(_ADD_TO_HOUR, [_hour_row(row) for row in rows])
            if prune_before is not None:
                db.execute("DELETE FROM gpu_samples WHERE time < ?", (prune_before,))
                db.execute("DELETE FROM gpu_hours WHERE hour < ?", (int(prune_before // 3600),))

    def _connect(self, path: Path) -> sqlite3.Connection:
        db = super()._connect(path)
        columns = {row[1] for row in db.execute("PRAGMA table_info(gpu_samples)")}
        if "fan_percent" not in columns:
            db.execute(_ADD_FAN)
        if db.execute("SELECT 1 FROM gpu_hours LIMIT 1").fetchone() is None:
            db.execute(_FILL_HOURS)
        return db

    async def async_hours(self, since: float) -> tuple[GpuHours, ...]:
        """Every GPU sampled since ``since`` (from the start of its hour) as hourly means, from
        the hourly sums kept as samples come in, ordered by index."""
        return await self._run(partial(self._hours, since))

    def _hours(self, since: float) -> tuple[GpuHours, ...]:
        db = self._open()
        first = int(since // 3600)
        names = {
            # SQLite takes the bare columns from the row with the MAX: as last seen.
            row[0]: (row[1], row[2])
            for row in db.execute(
                "SELECT uuid, gpu_index, name, MAX(hour) FROM gpu_hours WHERE hour >= ?"
                " GROUP BY uuid",
                (first,),
            )
        }
        hours: dict[str, tuple[list[Any], list[Any], list[Any]]] = {
            uuid: ([], [], []) for uuid in names
        }
        for uuid, hour, temperature_sum, temperature_n, fan_sum, fan_n in db.execute(
            "SELECT uuid, hour, SUM(temperature_sum), SUM(temperature_n), SUM(fan_sum),"
            " SUM(fan_n) FROM gpu_hours WHERE hour >= ? GROUP BY uuid, hour ORDER BY uuid, hour",
            (first,),
        ):
            middle = hour * 3600.0 + 1800.0
            if temperature_n:
                hours[uuid][0].append((middle, temperature_sum / temperature_n))
            if fan_n:
                hours[uuid][1].append((middle, fan_sum / fan_n))
        for uuid, hour, load, power_sum, power_n in db.execute(
            "SELECT uuid, hour, load, power_sum, power_n FROM gpu_hours"
            " WHERE hour >= ? AND load >= 0 AND power_n > 0 ORDER BY uuid, hour",
            (first,),
        ):
            hours[uuid][2].append(
                (hour * 3600.0 + 1800.0, load * _UTILIZATION_BIN, power_sum / power_n)
            )
        found = [
            GpuHours(
                uuid=uuid,
                index=names[uuid][0],
                name=names[uuid][1],
                temperature=tuple(temperature),
                fan=tuple(fan),
                power_by_load=tuple(power),
            )
            for uuid, (temperature, fan, power) in hours.items()
        ]
        return tuple(sorted(found, key=lambda gpu: (gpu.index, gpu.uuid)))

    async def async_summary(self, since: float, until: float) -> tuple[GpuNight, ...]:
        """Each GPU sampled in ``since``..``until`` (inclusive), ordered by index.

        Peak temperature and mean utilization are over the samples that have the value (a
        missing reading is skipped, not taken as zero); energy integrates the power draw
        between consecutive readings (trapezoids) but not across a gap longer than three
        intervals, and not beyond the first and last sample. A value no sample had is None.
        """
        return await self._run(partial(self._summary, since, until))

    def _summary(self, since: float, until: float) -> tuple[GpuNight, ...]:
        rows = self._open().execute(
            "SELECT time, uuid, gpu_index, name, temperature_c, power_draw_w, utilization_percent,"
            " fan_percent FROM gpu_samples WHERE time BETWEEN ? AND ? ORDER BY uuid, time",
            (since, until),
        )
        nights = [
            self._night(list(samples)) for _uuid, samples in groupby(rows, key=lambda row: row[1])
        ]
        return tuple(sorted(nights, key=lambda night: (night.index, night.uuid)))

    def _night(self, samples: list[_Sample]) -> GpuNight:
        latest = samples[-1]  # a GPU keeps its uuid; its index and name are as last seen
        temperatures = _present(sample[4] for sample in samples)
        utilizations = _present(sample[6] for sample in samples)
        return GpuNight(
            index=latest[2],
            uuid=latest[1],
            name=latest[3],
            peak_temperature_c=max(temperatures) if temperatures else None,
            energy_wh=self._energy_wh(samples),
            mean_utilization_percent=(
                sum(utilizations) / len(utilizations) if utilizations else None
            ),
            samples=len(samples),
        )

    def _energy_wh(self, samples: list[_Sample]) -> float | None:
        readings = [(sample[0], sample[5]) for sample in samples if sample[5] is not None]
        if not readings:
            return None
        max_gap = _MAX_GAP_INTERVALS * self._interval_s
        joules = sum(
            (end - start) * (before + after) / 2
            for (start, before), (end, after) in pairwise(readings)
            if end - start <= max_gap
        )
        return joules / 3600


def _hour_row(row: _Sample) -> tuple[Any, ...]:
    """A sample as an addition to its hour's sums."""
    when, uuid, index, name, temperature, power, utilization, fan = row
    load = -1 if utilization is None else int(utilization // _UTILIZATION_BIN)
    return (
        uuid,
        int(when // 3600),
        load,
        index,
        name,
        temperature or 0.0,
        int(temperature is not None),
        fan or 0.0,
        int(fan is not None),
        power or 0.0,
        int(power is not None),
    )


def _present(values: Iterable[float | None]) -> list[float]:
    return [value for value in values if value is not None]
