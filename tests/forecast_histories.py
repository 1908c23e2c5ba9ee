"""Synthetic histories with known answers, for the forecast tests and the benchmark.

Each generator takes a seeded ``random.Random`` so a failure can be replayed. The stable ones
are what a healthy machine looks like (noise, a daily rhythm of use, random restarts at a steady
rate) and must never be flagged; the trending ones have a known slope and so a known answer.
"""

from __future__ import annotations

import math
import random

from hydra_core.forecasts.forecast import DAY_S, HOUR_S

NOW = 1_800_000_000.0
GB = 10**9


def seeded(seed: int) -> random.Random:
    """A generator of synthetic noise (not for secrets), replayable by its seed."""
    return random.Random(seed)  # noqa: S311


def hours(days: float, *, now: float = NOW) -> list[float]:
    """Mid-hour times over the last ``days`` days, oldest first."""
    count = int(days * 24)
    return [now - (count - index) * HOUR_S + HOUR_S / 2 for index in range(count)]


def disk_free(
    rng: random.Random,
    *,
    days: float = 8,
    free_now: float = 20 * GB,
    per_day: float = 2 * GB,
    noise: float = 0.3 * GB,
) -> list[tuple[float, float]]:
    """Hourly free bytes of a disk filling at ``per_day`` (0: stable) with Gaussian noise."""
    return [
        (when, free_now + per_day * (NOW - when) / DAY_S + rng.gauss(0, noise))
        for when in hours(days)
    ]


def gpu_hours(
    rng: random.Random,
    *,
    days: float = 8,
    temperature_per_day: float = 0.0,
    fan_per_day: float = 0.0,
    drift_w_per_day: float = 0.0,
) -> tuple[list[tuple[float, float]], list[tuple[float, float]], list[tuple[float, int, float]]]:
    """Hourly temperature, fan and (time, load bin, power) of a card used more by day than by
    night; the trends are added on top of the rhythm of use."""
    temperature: list[tuple[float, float]] = []
    fan: list[tuple[float, float]] = []
    power: list[tuple[float, int, float]] = []
    for when in hours(days):
        ago = (NOW - when) / DAY_S
        rhythm = 0.5 + 0.45 * math.sin(2 * math.pi * (when % DAY_S) / DAY_S)
        load = max(0.0, min(100.0, 100 * rhythm + rng.gauss(0, 8)))
        heat = 40 + 0.35 * load - temperature_per_day * ago + rng.gauss(0, 1.5)
        temperature.append((when, heat))
        fan.append((when, min(100.0, 30 + 0.4 * load - fan_per_day * ago + rng.gauss(0, 2))))
        draw = 60 + 2.5 * load - drift_w_per_day * ago + rng.gauss(0, 6)
        power.append((when, int(load // 10) * 10, draw))
    return temperature, fan, power


def container_events(rng: random.Random, per_day: list[float], *, now: float = NOW) -> list[float]:
    """Event times, day ``i`` (oldest first) having Poisson(``per_day[i]``) events."""
    events: list[float] = []
    days = len(per_day)
    for index, rate in enumerate(per_day):
        start = now - (days - index) * DAY_S
        events.extend(start + rng.uniform(0, DAY_S) for _ in range(_poisson(rng, rate)))
    return sorted(events)


def _poisson(rng: random.Random, rate: float) -> int:
    limit, count, product = math.exp(-rate), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
