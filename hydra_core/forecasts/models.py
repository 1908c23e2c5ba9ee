"""The forecasts part's wire models: disk use, forecasts with their evidence, and the prune."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field

from ..models import CallerActor
from ..wire import request_model

# The type of message on /api/v1/events this part sends.
EVENT_FORECASTS = "forecasts"  # ForecastReport: the predicted problems changed

# What a forecast is about.
KIND_DISK_FULL = "disk_full"
KIND_GPU_TEMPERATURE = "gpu_temperature"
KIND_GPU_FAN = "gpu_fan"
KIND_GPU_POWER_DRIFT = "gpu_power_drift"
KIND_CONTAINER_TROUBLE = "container_trouble"
FORECAST_KINDS = (
    KIND_DISK_FULL,
    KIND_GPU_TEMPERATURE,
    KIND_GPU_FAN,
    KIND_GPU_POWER_DRIFT,
    KIND_CONTAINER_TROUBLE,
)
SEVERITIES = ("warning", "critical")
PRUNE_IMAGES = ("dangling", "unused")


@dataclass(frozen=True, slots=True, kw_only=True)
class Basis:
    """What a forecast was computed from, so a person can check it.

    ``slope`` is the robust (Theil-Sen) slope per day in ``unit``, with its 95 % interval;
    ``ls_slope`` and ``r2`` the least-squares line's; ``confidence`` 1 - p of the Mann-Kendall
    test that the series moves at all.
    """

    method: str
    samples: int
    window_s: float
    unit: str
    slope_per_day: float
    slope_low_per_day: float
    slope_high_per_day: float
    ls_slope_per_day: float
    r2: float
    confidence: float
    latest: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Forecast:
    """One predicted problem: what, when, how sure, and on what evidence."""

    kind: str
    # What it is about: a path, a GPU's uuid, a container's name.
    subject: str
    # How people call the subject (the GPU's name and index, the path).
    label: str
    severity: str
    summary: str
    # When it is expected to happen (Unix time), for forecasts of a moment; None for a drift
    # that is already there.
    expected_at: float | None = None
    days_until: float | None = None
    # A threshold it is heading for (bytes free, °C, % fan), where there is one.
    threshold: float | None = None
    basis: Basis
    # What Hydra can do about it: "prune" (a prune frees space), else None.
    fix: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PathDisk:
    """One watched folder: its own size and its file system's, and how fast it fills."""

    path: str
    exists: bool
    # Why it could not be measured (missing, not readable), else None.
    error: str | None = None
    bytes: int | None = None
    disk_total: int | None = None
    disk_free: int | None = None
    # How fast the file system's free space shrinks (bytes per day; negative: it grows).
    growth_bytes_per_day: float | None = None
    # At that growth, when it is full; None when it does not grow (or too few samples).
    days_until_full: float | None = None
    samples: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineDisk:
    """What the container engine keeps on disk (its ``/system/df``)."""

    available: bool
    error: str | None = None
    images: int = 0
    images_bytes: int = 0
    # Images no container uses: what a prune of unused images could free at most.
    unused_images: int = 0
    unused_images_bytes: int = 0
    build_cache_bytes: int = 0
    volumes: int = 0
    volumes_bytes: int = 0
    # The containers' writable layers (where their files and, on most setups, logs grow).
    containers_bytes: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class DiskReport:
    """What ``/api/v1/disk`` answers."""

    paths: tuple[PathDisk, ...]
    engine: EngineDisk | None = None
    sampled_at: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ForecastReport:
    """What ``/api/v1/forecasts`` answers: every predicted problem, soonest first."""

    computed_at: float
    horizon_days: float
    forecasts: tuple[Forecast, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneItem:
    """One thing a prune removed, or would remove."""

    kind: Literal["image", "build_cache", "audit_archive", "temp_file"]
    name: str
    bytes: int
    # "ok", "failed", "would_remove" (a dry run), "kept" (over the budget).
    result: str
    detail: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneReport:
    """What a prune did, or (dry run) would do."""

    dry_run: bool
    budget_bytes: int
    freed_bytes: int
    items: tuple[PruneItem, ...] = ()
    # Images kept because a container uses them (protected ones named in ``protected``).
    kept_in_use: int = 0
    protected: tuple[str, ...] = ()
    # Parts of the prune the engine does not offer (podman has no build cache endpoint).
    skipped: tuple[str, ...] = ()


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class PruneRequest:
    """``POST /prune``: what to remove and how much at most; a dry run unless ``dry_run`` is
    false."""

    dry_run: bool = True
    images: Literal["dangling", "unused"] = "unused"
    budget_bytes: Annotated[int, Field(ge=0)] | None = None
    actor: CallerActor | None = None
