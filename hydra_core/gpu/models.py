"""The GPU part's wire models: each card as NVML reports it, and a card over a span of time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuInfo:
    """One GPU as NVML reports it. A value the card cannot report is None."""

    index: int
    uuid: str
    name: str
    utilization_percent: float | None = None
    memory_utilization_percent: float | None = None
    memory_total_bytes: int | None = None
    memory_used_bytes: int | None = None
    memory_free_bytes: int | None = None
    temperature_c: float | None = None
    power_draw_w: float | None = None
    power_limit_w: float | None = None
    power_limit_min_w: float | None = None
    power_limit_max_w: float | None = None
    power_limit_default_w: float | None = None
    fan_percent: float | None = None
    # The temperature at which the card slows itself down to cool.
    slowdown_temperature_c: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuReport:
    """All GPUs of a host, or why there are none."""

    backend: str
    available: bool
    reason: str | None = None
    driver_version: str | None = None
    gpus: tuple[GpuInfo, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuNight:
    """One GPU over a span of time, from the worker's own samples."""

    index: int
    uuid: str
    name: str
    peak_temperature_c: float | None = None
    energy_wh: float | None = None
    mean_utilization_percent: float | None = None
    samples: int = 0
