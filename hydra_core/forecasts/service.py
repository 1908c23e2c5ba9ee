"""The forecasts service: samples the disks, counts container trouble, and forecasts.

Every ``interval_s`` it measures each watched folder (its own size, and its file system's free
and total space) and keeps the free space in the forecasts' store; it follows the worker's event
bus to count each container's trouble (a restart, a death, an unhealthy turn, a self-healing
restart, a spent healing budget). Forecasts are computed from those histories and the GPU
samples the GPU part keeps; when the set of predicted problems changes, an event tells Home
Assistant at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
import logging
import os
from pathlib import Path
import shutil
import statistics
import time
from typing import Any

from ..background import cancel, repeat
from ..containers.engine import EngineClient, EngineError
from ..containers.models import EVENT_CONTAINER, EVENT_HEAL_EXHAUSTED
from ..events import EventBus
from ..gpu import GpuProbe
from ..gpu.history import GpuHistory, GpuHours
from ..models import EVENT_AUDIT
from ..wire import dump
from .forecast import (
    DAY_S,
    GpuSeries,
    container_forecast,
    days_until_full,
    disk_forecast,
    disk_trend,
    gpu_forecasts,
    soonest_first,
)
from .models import (
    EVENT_FORECASTS,
    DiskReport,
    EngineDisk,
    Forecast,
    ForecastReport,
    PathDisk,
)
from .store import KEEP_S, ForecastStore

_LOGGER = logging.getLogger(__name__)
_FAILED_STATES = frozenset({"exited", "dead"})


class ForecastService:
    """Disk use, container trouble and the forecasts made from them."""

    def __init__(
        self,
        store: ForecastStore,
        *,
        paths: Sequence[Path],
        bus: EventBus,
        probe: GpuProbe,
        engine: EngineClient | None = None,
        gpu_history: GpuHistory | None = None,
        interval_s: float = 300.0,
        horizon_days: float = 14.0,
        clock: Callable[[], float] = time.time,
        measure_path: Callable[[Path], PathDisk] | None = None,
    ) -> None:
        """Watch ``paths``; ``measure_path`` (default ``measure``) reads one folder."""
        self.store = store
        self.paths = tuple(dict.fromkeys(paths))
        self.horizon_days = horizon_days
        self._bus = bus
        self._probe = probe
        self._engine = engine
        self._gpu_history = gpu_history
        self._interval_s = interval_s
        self._clock = clock
        self._measure = measure_path or measure
        self._measured: dict[str, PathDisk] = {}
        self._sampled_at: float | None = None
        self._containers: dict[str, tuple[str, str, str, int]] = {}  # name: id, state, health, n
        self._problems: tuple[tuple[str, str, str], ...] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # Listening from the start: the parts started before this one (the containers) publish
        # every container they find as they start, the baseline for what changes later.
        self._subscription = bus.subscribe(internal=True)

    async def async_start(self) -> None:
        """Open the history, sample once now, then every interval; follow the event bus."""
        await self.store.async_open()
        self._tasks = [
            asyncio.create_task(
                repeat(
                    self.async_sample,
                    self._interval_s,
                    logger=_LOGGER,
                    failure="Sampling the disks failed",
                    at_once=True,
                ),
                name="hydra disk samples",
            ),
            asyncio.create_task(self._follow(), name="hydra container trouble"),
        ]

    async def async_stop(self) -> None:
        """Stop sampling and close the history."""
        for task in self._tasks:
            await cancel(task)
        self._tasks = []
        self._subscription.close()
        await self.store.async_close()

    # Disks

    async def async_sample(self) -> None:
        """Measure every watched folder once, keep the free space, and look ahead again."""
        now = self._clock()
        measured = {}
        for path in self.paths:
            measured[str(path)] = await asyncio.to_thread(self._measure, path)
        self._measured, self._sampled_at = measured, now
        await self.store.async_add_disk(
            now,
            [
                (path, disk.disk_free, disk.disk_total)
                for path, disk in measured.items()
                if disk.disk_free is not None and disk.disk_total is not None
            ],
        )
        await self.async_forecasts()

    async def async_disk(self) -> DiskReport:
        """Every watched folder as last measured, with its growth; the engine's disk use."""
        hours = await self.store.async_disk_hours(self._clock() - KEEP_S)
        paths = []
        for path in self.paths:
            disk = self._measured.get(str(path)) or PathDisk(path=str(path), exists=False)
            series = hours.get(str(path), [])
            trend = disk_trend(series)
            if trend is not None and disk.disk_free is not None:
                disk = replace(
                    disk,
                    growth_bytes_per_day=-trend.slope * DAY_S,
                    days_until_full=days_until_full(trend, disk.disk_free),
                )
            paths.append(replace(disk, samples=len(series)))
        engine = await self._engine_disk() if self._engine is not None else None
        return DiskReport(paths=tuple(paths), engine=engine, sampled_at=self._sampled_at)

    async def _engine_disk(self) -> EngineDisk:
        assert self._engine is not None
        try:
            df = await self._engine.system_df()
        except EngineError as err:
            return EngineDisk(available=False, error=str(err))
        return engine_disk(df)

    # Forecasts

    async def async_forecasts(self) -> ForecastReport:
        """Every predicted problem now, soonest first; an event when the set changed."""
        now = self._clock()
        found: list[Forecast] = []
        hours = await self.store.async_disk_hours(now - KEEP_S)
        for path in self.paths:
            disk = self._measured.get(str(path))
            if disk is None or disk.disk_free is None:
                continue
            forecast = disk_forecast(
                str(path),
                hours.get(str(path), []),
                disk.disk_free,
                now=now,
                horizon_days=self.horizon_days,
            )
            if forecast is not None:
                found.append(forecast)
        for name, (since, events) in (await self.store.async_events(now - KEEP_S)).items():
            if (forecast := container_forecast(name, events, since=since, now=now)) is not None:
                found.append(forecast)
        for gpu in await self._gpu_series(now):
            found.extend(gpu_forecasts(gpu, now=now, horizon_days=self.horizon_days))
        report = ForecastReport(
            computed_at=now, horizon_days=self.horizon_days, forecasts=soonest_first(found)
        )
        problems = tuple((item.kind, item.subject, item.severity) for item in report.forecasts)
        if problems != self._problems:
            self._problems = problems
            self._bus.publish(EVENT_FORECASTS, dump(report))
        return report

    async def _gpu_series(self, now: float) -> list[GpuSeries]:
        if self._gpu_history is None:
            return []
        hours = await self._gpu_history.async_hours(now - KEEP_S)
        if not hours:
            return []
        report = await self._probe.async_read()
        slowdown = {gpu.uuid: gpu.slowdown_temperature_c for gpu in report.gpus}
        return [gpu_series(gpu, slowdown.get(gpu.uuid)) for gpu in hours]

    # Container trouble

    async def _follow(self) -> None:
        while True:
            try:
                async for event in self._subscription:
                    await self._on_event(event.type, event.data)
            except Exception:
                _LOGGER.exception("Counting container trouble failed")
            # Cut off for falling behind (or after a failure): listen again.
            self._subscription.close()
            await asyncio.sleep(1.0)
            self._subscription = self._bus.subscribe(internal=True)

    async def _on_event(self, kind: str, data: dict[str, Any]) -> None:
        now = self._clock()
        if kind == EVENT_CONTAINER:
            name = str(data.get("name") or "")
            current = (
                str(data.get("id") or ""),
                str(data.get("state") or ""),
                str(data.get("health") or ""),
                int(data.get("restart_count") or 0),
            )
            previous = self._containers.get(name)
            self._containers[name] = current
            if previous is None:
                await self.store.async_seen(now, [name])
                return
            for trouble in _trouble(previous, current, data.get("exit_code")):
                await self.store.async_add_event(now, name, trouble)
        elif kind == EVENT_AUDIT:
            actor = data.get("actor") or {}
            if (actor.get("type"), data.get("action"), data.get("result")) == (
                "self_heal",
                "restart",
                "ok",
            ):
                await self.store.async_add_event(now, str(data.get("container")), "heal")
        elif kind == EVENT_HEAL_EXHAUSTED:
            await self.store.async_add_event(now, str(data.get("container")), "heal_exhausted")


def _trouble(
    previous: tuple[str, str, str, int], current: tuple[str, str, str, int], exit_code: Any
) -> list[str]:
    """What changed for the worse between two states of one container."""
    found = []
    same_container = previous[0] == current[0]
    if same_container and current[3] > previous[3]:
        found.append("restart")
    if current[2] == "unhealthy" and previous[2] != "unhealthy":
        found.append("unhealthy")
    if current[1] in _FAILED_STATES and previous[1] not in _FAILED_STATES and exit_code:
        found.append("died")
    return found


def measure(path: Path) -> PathDisk:
    """A folder's own size (files, links not followed) and its file system's free and total
    space; a folder that is missing or unreadable says so instead."""
    if not path.exists():
        return PathDisk(path=str(path), exists=False, error="no such folder")
    try:
        disk = shutil.disk_usage(path)
    except OSError as err:
        return PathDisk(path=str(path), exists=True, error=f"cannot be measured: {err}")
    used = 0
    errors: list[OSError] = []
    for root, _dirs, files in os.walk(path, onerror=errors.append):
        for name in files:
            try:
                stat = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            used += stat.st_size
    return PathDisk(
        path=str(path),
        exists=True,
        error=f"partly unreadable: {errors[0]}" if errors else None,
        bytes=used,
        disk_total=disk.total,
        disk_free=disk.free,
    )


def engine_disk(df: dict[str, Any]) -> EngineDisk:
    """The engine's ``/system/df`` in short."""
    images = df.get("Images") or []
    unused = [image for image in images if not image.get("Containers")]
    volumes = df.get("Volumes") or []
    return EngineDisk(
        available=True,
        images=len(images),
        images_bytes=sum(int(image.get("Size") or 0) for image in images),
        unused_images=len(unused),
        unused_images_bytes=sum(int(image.get("Size") or 0) for image in unused),
        build_cache_bytes=int(df.get("BuilderSize") or 0),
        volumes=len(volumes),
        volumes_bytes=sum(
            max(int((volume.get("UsageData") or {}).get("Size") or 0), 0) for volume in volumes
        ),
        containers_bytes=sum(int(item.get("SizeRw") or 0) for item in df.get("Containers") or []),
    )


def gpu_series(gpu: GpuHours, slowdown_c: float | None) -> GpuSeries:
    """One GPU's hours as the forecasts read them: the power draw of each hour compared with
    the median draw at the same utilisation over the whole window."""
    by_load: dict[int, list[float]] = {}
    for _time, load, power in gpu.power_by_load:
        by_load.setdefault(load, []).append(power)
    medians = {load: statistics.median(values) for load, values in by_load.items()}
    residuals: dict[float, list[float]] = {}
    for when, load, power in gpu.power_by_load:
        residuals.setdefault(when, []).append(power - medians[load])
    all_power = [power for _time, _load, power in gpu.power_by_load]
    return GpuSeries(
        uuid=gpu.uuid,
        label=f"GPU {gpu.index} ({gpu.name})",
        temperature=gpu.temperature,
        fan=gpu.fan,
        power_residual=tuple(
            (when, sum(values) / len(values)) for when, values in sorted(residuals.items())
        ),
        median_power_w=statistics.median(all_power) if all_power else None,
        slowdown_c=slowdown_c,
    )
