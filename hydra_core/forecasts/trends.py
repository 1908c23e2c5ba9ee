"""Trends in a series of (time, value) points: explainable, with a confidence.

Two fits of one line: ordinary least squares (slope, intercept, R²) and Theil-Sen (the median of
the slopes between every pair of points, which one outlier cannot drag; its 95 % interval from
the ranks of the pairwise slopes, as Sen 1968 gives it). The confidence that the series really
rises or falls is ``1 - p`` of the Mann-Kendall test (normal approximation, corrected for ties),
the test that goes with Theil-Sen. A forecast is only made from a trend whose whole interval
lies on one side of zero and whose confidence is high: a stable series, however noisy, gives an
interval around zero and is never flagged.

The series are short (hourly or daily buckets, at most a few hundred points), so the O(n²)
pairwise slopes cost well under a millisecond with numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import functools
import math

import numpy as np

# The two-sided 95 % normal quantile, for Sen's interval.
_Z95 = 1.959964


@dataclass(frozen=True, slots=True, kw_only=True)
class Trend:
    """A line through the points, in value units per second of their time axis."""

    samples: int
    start: float
    end: float
    # Theil-Sen: the robust slope and its 95 % interval.
    slope: float
    slope_low: float
    slope_high: float
    intercept: float
    # Least squares, for comparison: its slope and how much of the variance the line explains.
    ls_slope: float
    r2: float
    # 1 - p of the Mann-Kendall test: how sure it is that the series moves at all.
    confidence: float

    def at(self, when: float) -> float:
        """The Theil-Sen line's value at ``when``."""
        return self.intercept + self.slope * when

    @property
    def rising(self) -> bool:
        """The whole 95 % interval of the slope is above zero."""
        return self.slope_low > 0

    @property
    def falling(self) -> bool:
        """The whole 95 % interval of the slope is below zero."""
        return self.slope_high < 0


def fit(times: Sequence[float], values: Sequence[float]) -> Trend | None:
    """The trend of the points; None for fewer than three points or no time span."""
    t = np.asarray(times, dtype=float)
    y = np.asarray(values, dtype=float)
    n = t.size
    if n < 3 or t.max() == t.min():
        return None
    i, j = _pairs(n)
    dt = t[j] - t[i]
    dy = y[j] - y[i]
    keep = dt != 0
    slopes = dy[keep] / dt[keep]
    # Mann-Kendall: S counts rising pairs minus falling pairs (in time order).
    s = float((np.sign(dy) * np.sign(dt)).sum())
    var_s = _kendall_variance(y)
    confidence = _confidence(s, var_s)
    slope, low, high = _median_and_interval(slopes, var_s)
    intercept = float(np.median(y - slope * t))
    ls_slope, r2 = _least_squares(t, y)
    return Trend(
        samples=n,
        start=float(t.min()),
        end=float(t.max()),
        slope=slope,
        slope_low=low,
        slope_high=high,
        intercept=intercept,
        ls_slope=ls_slope,
        r2=r2,
        confidence=confidence,
    )


def _kendall_variance(y: np.ndarray) -> float:
    n = y.size
    _values, ties = np.unique(y, return_counts=True)
    ties = ties[ties > 1]
    return float((n * (n - 1) * (2 * n + 5) - np.sum(ties * (ties - 1) * (2 * ties + 5))) / 18.0)


def _confidence(s: float, var_s: float) -> float:
    if var_s <= 0:
        return 0.0
    # Continuity correction: S moves in steps of two.
    z = (abs(s) - 1) / math.sqrt(var_s) if s else 0.0
    p = math.erfc(max(z, 0.0) / math.sqrt(2))
    return 1.0 - p


def _median_and_interval(slopes: np.ndarray, var_s: float) -> tuple[float, float, float]:
    """The median slope and Sen's 95 % interval: the slopes at two ranks around it (found by
    partitioning, not sorting every slope)."""
    count = slopes.size
    c = _Z95 * math.sqrt(max(var_s, 0.0))
    lower = math.floor((count - c) / 2)
    upper = math.ceil((count + c) / 2)
    middle = [(count - 1) // 2, count // 2]
    ranks = sorted({*middle, *(rank for rank in (lower, upper) if 0 <= rank < count)})
    parted = np.partition(slopes, ranks)
    median = float(parted[middle].mean())
    if lower < 0 or upper >= count:
        return median, -math.inf, math.inf
    return median, float(parted[lower]), float(parted[upper])


@functools.lru_cache(maxsize=32)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of indices (i < j) of n points; the series have a few usual lengths."""
    return np.triu_indices(n, k=1)


def _least_squares(t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    tc = t - t.mean()
    yc = y - y.mean()
    slope = float((tc @ yc) / (tc @ tc))
    total = float(yc @ yc)
    residual = yc - slope * tc
    r2 = 1.0 - float(residual @ residual) / total if total > 0 else 0.0
    return slope, r2
