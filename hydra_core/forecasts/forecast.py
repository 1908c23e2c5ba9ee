"""The forecasts: from a series Hydra keeps to a predicted problem, or to nothing.

Each rule fits a trend (``trends.fit``) and flags only when three things hold: the trend is
certain (its whole 95 % interval on one side of zero and a high Mann-Kendall confidence), it is
large enough to matter (a minimum slope or drift), and what it leads to falls inside the horizon.
A stable series fails the first test, so it is never flagged; the benchmark
(``benchmarks/forecasts.py``) checks that over thousands of noisy stable histories.

The series come bucketed (hourly means for disks and GPUs, daily counts for containers): the
noise of single samples averages out, daily cycles are smoothed by a window of at least a day,
and the pairwise slopes stay cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
import math
from typing import TypeAlias

from .models import (
    KIND_CONTAINER_TROUBLE,
    KIND_DISK_FULL,
    KIND_GPU_FAN,
    KIND_GPU_POWER_DRIFT,
    KIND_GPU_TEMPERATURE,
    Basis,
    Forecast,
)
from .trends import Trend, fit

DAY_S = 86400.0
HOUR_S = 3600.0
# Mann-Kendall confidence below which no trend is believed.
MIN_CONFIDENCE = 0.99
# A forecast of a moment this close is critical rather than a warning.
CRITICAL_DAYS = 2.0
# Disks: at least this many hourly points over at least this long.
DISK_MIN_POINTS = 6
DISK_MIN_WINDOW_S = 6 * HOUR_S
# GPUs: a day at least, so the daily rhythm of use cannot pass for a trend.
GPU_MIN_WINDOW_S = DAY_S
GPU_MIN_POINTS = 12
TEMPERATURE_MIN_SLOPE_PER_DAY = 0.5  # °C
FAN_MIN_SLOPE_PER_DAY = 2.0  # % of full speed
FAN_FULL = 100.0
# Power at the same load: flagged once it has drifted this much over the window.
POWER_MIN_DRIFT_W = 10.0
POWER_MIN_DRIFT_FRACTION = 0.05
POWER_MIN_WINDOW_S = 2 * DAY_S
# Containers: trouble (restarts, deaths, unhealthy turns, self-heal restarts) counted per day;
# whether it comes faster is the Laplace test on the event times (a steady rate of events is a
# Poisson process, whose times are uniform), the daily counts give the slope.
CONTAINER_MIN_DAYS = 3
CONTAINER_MIN_EVENTS = 5
CONTAINER_MIN_CONFIDENCE = 0.999
CONTAINER_MIN_LAST_DAY = 3
CONTAINER_MIN_RATIO = 2.0


Series: TypeAlias = Sequence[tuple[float, float]]


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuSeries:
    """One GPU's hourly series; the power series holds the draw minus the median draw at the
    same utilisation (so a change of load is not a drift)."""

    uuid: str
    label: str
    temperature: Series = ()
    fan: Series = ()
    power_residual: Series = ()
    median_power_w: float | None = None
    # The temperature at which the card slows itself down (NVML), where known.
    slowdown_c: float | None = None


def basis(trend: Trend, *, method: str, unit: str, latest: float) -> Basis:
    """The evidence of a forecast, slopes per day."""
    return Basis(
        method=method,
        samples=trend.samples,
        window_s=trend.end - trend.start,
        unit=unit,
        slope_per_day=trend.slope * DAY_S,
        slope_low_per_day=trend.slope_low * DAY_S,
        slope_high_per_day=trend.slope_high * DAY_S,
        ls_slope_per_day=trend.ls_slope * DAY_S,
        r2=trend.r2,
        confidence=trend.confidence,
        latest=latest,
    )


def disk_trend(free: Series) -> Trend | None:
    """The trend of a file system's free bytes, when there are enough points to believe one."""
    if len(free) < DISK_MIN_POINTS or free[-1][0] - free[0][0] < DISK_MIN_WINDOW_S:
        return None
    return fit([t for t, _ in free], [v for _, v in free])


def days_until_full(trend: Trend | None, free_now: float) -> float | None:
    """Days until no byte is free at the current pace; None unless the free space certainly
    shrinks."""
    if trend is None or not trend.falling or trend.confidence < MIN_CONFIDENCE:
        return None
    return max(free_now, 0.0) / -trend.slope / DAY_S


def disk_forecast(
    path: str, free: Series, free_now: float, *, now: float, horizon_days: float
) -> Forecast | None:
    """The file system of ``path`` fills within the horizon."""
    trend = disk_trend(free)
    days = days_until_full(trend, free_now)
    if trend is None or days is None or days > horizon_days:
        return None
    return Forecast(
        kind=KIND_DISK_FULL,
        subject=path,
        label=path,
        severity=_severity(days),
        summary=(
            f"{path} fills up in {_days_text(days)}: {_size(-trend.slope * DAY_S)} a day,"
            f" {_size(free_now)} free"
        ),
        expected_at=now + days * DAY_S,
        days_until=days,
        threshold=0.0,
        basis=basis(trend, method="theil_sen", unit="bytes free", latest=free_now),
        fix="prune",
    )


def gpu_forecasts(gpu: GpuSeries, *, now: float, horizon_days: float) -> list[Forecast]:
    """Temperature heading for the slowdown threshold, the fan for full speed, power drifting
    up at the same load."""
    found = []
    if gpu.slowdown_c is not None:
        found.append(
            _towards(
                gpu,
                kind=KIND_GPU_TEMPERATURE,
                series=gpu.temperature,
                threshold=gpu.slowdown_c,
                min_slope_per_day=TEMPERATURE_MIN_SLOPE_PER_DAY,
                unit="°C",
                what="reaches its slowdown temperature of {threshold:g} °C",
                now=now,
                horizon_days=horizon_days,
            )
        )
    found.append(
        _towards(
            gpu,
            kind=KIND_GPU_FAN,
            series=gpu.fan,
            threshold=FAN_FULL,
            min_slope_per_day=FAN_MIN_SLOPE_PER_DAY,
            unit="%",
            what="runs its fan at 100 %",
            now=now,
            horizon_days=horizon_days,
        )
    )
    found.append(power_drift(gpu))
    return [forecast for forecast in found if forecast is not None]


def _towards(
    gpu: GpuSeries,
    *,
    kind: str,
    series: Series,
    threshold: float,
    min_slope_per_day: float,
    unit: str,
    what: str,
    now: float,
    horizon_days: float,
) -> Forecast | None:
    trend = _gpu_trend(series)
    if (
        trend is None
        or not trend.rising
        or trend.confidence < MIN_CONFIDENCE
        or trend.slope * DAY_S < min_slope_per_day
    ):
        return None
    level = trend.at(trend.end)
    days = max(threshold - level, 0.0) / (trend.slope * DAY_S) - (now - trend.end) / DAY_S
    days = max(days, 0.0)
    if days > horizon_days:
        return None
    per_day = trend.slope * DAY_S
    return Forecast(
        kind=kind,
        subject=gpu.uuid,
        label=gpu.label,
        severity=_severity(days),
        summary=(
            f"{gpu.label} {what.format(threshold=threshold)} in {_days_text(days)}"
            f" (+{per_day:.1f} {unit} a day, now {level:.0f} {unit})"
        ),
        expected_at=now + days * DAY_S,
        days_until=days,
        threshold=threshold,
        basis=basis(trend, method="theil_sen", unit=unit, latest=level),
    )


def power_drift(gpu: GpuSeries) -> Forecast | None:
    """The card draws more power at the same utilisation than it did (dust, a failing fan,
    dried thermal paste): flagged once the drift over the window is large enough."""
    series = gpu.power_residual
    if not series or series[-1][0] - series[0][0] < POWER_MIN_WINDOW_S:
        return None
    trend = _gpu_trend(series)
    if trend is None or not trend.rising or trend.confidence < MIN_CONFIDENCE:
        return None
    drift = trend.slope * (trend.end - trend.start)
    floor = max(POWER_MIN_DRIFT_W, POWER_MIN_DRIFT_FRACTION * (gpu.median_power_w or 0.0))
    if drift < floor:
        return None
    days = (trend.end - trend.start) / DAY_S
    return Forecast(
        kind=KIND_GPU_POWER_DRIFT,
        subject=gpu.uuid,
        label=gpu.label,
        severity="warning",
        summary=(
            f"{gpu.label} draws {drift:.0f} W more at the same load than {_days_text(days)} ago"
            f" (+{trend.slope * DAY_S:.1f} W a day)"
        ),
        threshold=floor,
        basis=basis(trend, method="theil_sen", unit="W over the median at that load", latest=drift),
    )


def _gpu_trend(series: Series) -> Trend | None:
    if len(series) < GPU_MIN_POINTS or series[-1][0] - series[0][0] < GPU_MIN_WINDOW_S:
        return None
    return fit([t for t, _ in series], [v for _, v in series])


def daily_counts(events: Sequence[float], *, since: float, now: float) -> list[tuple[float, int]]:
    """Events per whole day, the last day ending ``now``: (the day's end, count), oldest first."""
    days = int((now - since) // DAY_S)
    counts = [0] * days
    for when in events:
        back = int((now - when) // DAY_S)
        if 0 <= back < days:
            counts[days - 1 - back] += 1
    return [(now - (days - 1 - index) * DAY_S, count) for index, count in enumerate(counts)]


def container_forecast(
    name: str, events: Sequence[float], *, since: float, now: float
) -> Forecast | None:
    """The container is in trouble more often day after day (restarts, deaths, unhealthy
    turns, self-heal restarts), ``since`` being when Hydra started watching it."""
    counts = daily_counts(events, since=since, now=now)
    if len(counts) < CONTAINER_MIN_DAYS:
        return None
    values = [count for _, count in counts]
    if sum(values) < CONTAINER_MIN_EVENTS or values[-1] < CONTAINER_MIN_LAST_DAY:
        return None
    early = values[: len(values) // 2]
    if values[-1] < CONTAINER_MIN_RATIO * max(sum(early) / len(early), 0.5):
        return None
    trend = fit([t for t, _ in counts], [float(v) for v in values])
    window = (counts[0][0] - DAY_S, now)
    confidence = laplace_confidence([when for when in events if when >= window[0]], *window)
    if trend is None or trend.slope <= 0 or confidence < CONTAINER_MIN_CONFIDENCE:
        return None
    trend = replace(trend, confidence=confidence)
    per_day = trend.slope * DAY_S
    return Forecast(
        kind=KIND_CONTAINER_TROUBLE,
        subject=name,
        label=name,
        severity="critical"
        if values[-1] >= 2 * CONTAINER_MIN_RATIO * CONTAINER_MIN_LAST_DAY
        else "warning",
        summary=(
            f"{name} is in trouble more often each day: {values[-1]} times in the last day,"
            f" {'/'.join(str(v) for v in values)} over {len(values)} days (+{per_day:.1f} a day)"
        ),
        basis=basis(
            trend, method="laplace+theil_sen", unit="events a day", latest=float(values[-1])
        ),
    )


def laplace_confidence(events: Sequence[float], start: float, end: float) -> float:
    """1 - p of the Laplace test that events come faster towards ``end``: under a steady rate
    their times are uniform over the window, so their mean position is 1/2 give or take
    sqrt(1 / (12 n)); a rising rate moves it later."""
    if not events or end <= start:
        return 0.0
    mean = sum((when - start) / (end - start) for when in events) / len(events)
    z = (mean - 0.5) / math.sqrt(1 / (12 * len(events)))
    return 1.0 - 0.5 * math.erfc(z / math.sqrt(2))


def _severity(days: float) -> str:
    return "critical" if days <= CRITICAL_DAYS else "warning"


def _days_text(days: float) -> str:
    if days < 1:
        return f"{max(days * 24, 0):.0f} hours"
    return f"{days:.1f} days"


def _size(count: float) -> str:
    size = abs(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def soonest_first(forecasts: Sequence[Forecast]) -> tuple[Forecast, ...]:
    """Critical before warnings, then the soonest; drifts (no moment) last."""
    return tuple(
        sorted(
            forecasts,
            key=lambda item: (
                item.severity != "critical",
                item.days_until if item.days_until is not None else math.inf,
                item.kind,
                item.subject,
            ),
        )
    )
