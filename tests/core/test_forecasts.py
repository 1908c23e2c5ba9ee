"""Forecasts on synthetic histories with known answers: a disk filling 2 GB a day, a card
heating up, a fan spinning up, power drifting at the same load, a container in trouble more
often each day; and the stable versions of each, which must never be flagged."""

from __future__ import annotations

from pathlib import Path
from random import Random
import re
import sqlite3

import pytest

from hydra_core.audit import AuditLog
from hydra_core.events import EventBus
from hydra_core.forecasts.forecast import (
    DAY_S,
    container_forecast,
    days_until_full,
    disk_forecast,
    disk_trend,
    gpu_forecasts,
)
from hydra_core.forecasts.models import (
    KIND_CONTAINER_TROUBLE,
    KIND_DISK_FULL,
    KIND_GPU_FAN,
    KIND_GPU_POWER_DRIFT,
    KIND_GPU_TEMPERATURE,
)
from hydra_core.forecasts.prune import PruneHandler, Pruner
from hydra_core.forecasts.service import ForecastService, gpu_series
from hydra_core.forecasts.store import ForecastStore
from hydra_core.forecasts.trends import fit
from hydra_core.gpu import NoGpuProbe, NvmlProbe
from hydra_core.gpu.history import GpuHistory, GpuHours
from hydra_core.scheduler.handlers import PayloadError
from tests.fake_nvml import FakeNvml, make_gpu
from tests.forecast_histories import GB, NOW, container_events, disk_free, gpu_hours, seeded

HORIZON = 14.0


def _gpu(rng: Random, **trends: float) -> list[str]:
    temperature, fan, power = gpu_hours(rng, **trends)
    hours = GpuHours(
        uuid="GPU-1",
        index=0,
        name="RTX",
        temperature=tuple(temperature),
        fan=tuple(fan),
        power_by_load=tuple(power),
    )
    found = gpu_forecasts(gpu_series(hours, 90.0), now=NOW, horizon_days=HORIZON)
    return [forecast.kind for forecast in found]


@pytest.mark.parametrize("seed", range(5))
def test_disk_filling_2_gb_a_day_is_full_in_10_days(seed: int) -> None:
    series = disk_free(seeded(seed), free_now=20 * GB, per_day=2 * GB)
    forecast = disk_forecast("/data", series, 20 * GB, now=NOW, horizon_days=HORIZON)
    assert forecast is not None
    assert forecast.kind == KIND_DISK_FULL
    assert forecast.days_until == pytest.approx(10.0, abs=0.5)
    assert forecast.expected_at == pytest.approx(NOW + 10 * DAY_S, abs=0.5 * DAY_S)
    assert forecast.fix == "prune"
    assert forecast.severity == "warning"
    # What it is based on: eight days of hourly points, about -2 GB a day, certain.
    basis = forecast.basis
    assert basis.samples == 8 * 24
    assert basis.window_s == pytest.approx(8 * DAY_S, rel=0.01)
    assert basis.slope_per_day == pytest.approx(-2 * GB, rel=0.05)
    assert basis.slope_low_per_day <= basis.slope_per_day <= basis.slope_high_per_day < 0
    assert basis.r2 > 0.9
    assert basis.confidence > 0.99
    assert "fills up in 10" in forecast.summary


def test_disk_almost_full_is_critical() -> None:
    series = disk_free(seeded(1), free_now=3 * GB, per_day=2 * GB)
    forecast = disk_forecast("/data", series, 3 * GB, now=NOW, horizon_days=HORIZON)
    assert forecast is not None
    assert forecast.severity == "critical"
    assert forecast.days_until == pytest.approx(1.5, abs=0.25)


def test_disk_full_beyond_the_horizon_is_not_reported_but_its_days_are_known() -> None:
    series = disk_free(seeded(2), free_now=60 * GB, per_day=2 * GB)
    assert disk_forecast("/data", series, 60 * GB, now=NOW, horizon_days=HORIZON) is None
    assert days_until_full(disk_trend(series), 60 * GB) == pytest.approx(30, abs=1.5)


@pytest.mark.parametrize("seed", range(20))
def test_stable_disk_is_never_flagged(seed: int) -> None:
    series = disk_free(seeded(seed), free_now=2 * GB, per_day=0, noise=0.5 * GB)
    assert disk_forecast("/data", series, 2 * GB, now=NOW, horizon_days=HORIZON) is None
    assert days_until_full(disk_trend(series), 2 * GB) is None


def test_a_few_hours_of_samples_are_not_enough() -> None:
    series = disk_free(seeded(3), days=0.2, free_now=1 * GB, per_day=50 * GB)
    assert disk_forecast("/data", series, 1 * GB, now=NOW, horizon_days=HORIZON) is None


def test_one_outlier_does_not_move_the_robust_slope() -> None:
    times = [float(hour * 3600) for hour in range(48)]
    values = [100.0 - hour for hour in range(48)]
    values[30] = 10_000.0  # one absurd reading
    trend = fit(times, values)
    assert trend is not None
    assert trend.slope * 3600 == pytest.approx(-1.0)
    assert trend.ls_slope * 3600 > -1.0  # least squares is dragged by it


def test_container_in_trouble_more_often_each_day_is_flagged() -> None:
    events = container_events(seeded(4), [0.5, 1, 2, 3, 4, 6, 8, 10])
    forecast = container_forecast("web", events, since=NOW - 8 * DAY_S, now=NOW)
    assert forecast is not None
    assert forecast.kind == KIND_CONTAINER_TROUBLE
    assert forecast.subject == "web"
    assert forecast.basis.samples == 8
    assert forecast.basis.slope_per_day > 0.5
    assert "more often each day" in forecast.summary


@pytest.mark.parametrize("seed", range(30))
def test_container_restarting_at_a_steady_rate_is_never_flagged(seed: int) -> None:
    events = container_events(seeded(seed), [3.0] * 8)
    assert container_forecast("db", events, since=NOW - 8 * DAY_S, now=NOW) is None


def test_container_watched_for_two_days_is_not_judged_yet() -> None:
    events = container_events(seeded(5), [1, 12])
    assert container_forecast("web", events, since=NOW - 2 * DAY_S, now=NOW) is None


def test_gpu_heating_towards_its_slowdown_temperature_is_flagged() -> None:
    kinds = _gpu(seeded(6), temperature_per_day=3.0)
    assert KIND_GPU_TEMPERATURE in kinds
    assert KIND_GPU_POWER_DRIFT not in kinds


def test_gpu_fan_heading_for_full_speed_is_flagged() -> None:
    assert KIND_GPU_FAN in _gpu(seeded(7), fan_per_day=5.0)


def test_gpu_power_drifting_up_at_the_same_load_is_flagged() -> None:
    kinds = _gpu(seeded(8), drift_w_per_day=4.0)
    assert kinds == [KIND_GPU_POWER_DRIFT]


@pytest.mark.parametrize("seed", range(20))
def test_stable_gpu_with_a_daily_rhythm_is_never_flagged(seed: int) -> None:
    assert _gpu(seeded(seed)) == []


async def test_gpu_hours_of_a_file_from_before_the_fan_was_sampled(tmp_path: Path) -> None:
    path = tmp_path / "metrics.db"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE gpu_samples (time REAL NOT NULL, uuid TEXT NOT NULL, gpu_index INTEGER"
        " NOT NULL, name TEXT NOT NULL, temperature_c REAL, power_draw_w REAL,"
        " utilization_percent REAL, PRIMARY KEY (time, uuid)) WITHOUT ROWID"
    )
    hour = 3600.0 * 500_000
    old.executemany(
        "INSERT INTO gpu_samples VALUES (?, 'GPU-1', 0, 'RTX', ?, ?, 55)",
        [(hour + 10, 60.0, 200.0), (hour + 20, 70.0, 220.0)],
    )
    old.commit()
    old.close()
    history = GpuHistory(path, NoGpuProbe())
    await history.async_open()
    (gpu,) = await history.async_hours(hour - 1)
    await history.async_close()
    assert gpu.uuid == "GPU-1"
    assert len(gpu.temperature) == 1
    assert gpu.temperature[0][0] == hour + 1800
    assert gpu.temperature[0][1] == pytest.approx(65.0)
    assert gpu.fan == ()  # the old samples had none
    assert gpu.power_by_load == ((hour + 1800, 50, 210.0),)


async def test_disk_history_survives_a_restart_as_hourly_means(tmp_path: Path) -> None:
    store = ForecastStore(tmp_path / "forecasts.db")
    await store.async_open()
    await store.async_add_disk(NOW, [("/data", 10 * GB, 100 * GB)])
    await store.async_add_disk(NOW + 60, [("/data", 8 * GB, 100 * GB)])
    await store.async_close()
    again = ForecastStore(tmp_path / "forecasts.db")
    await again.async_open()
    hours = await again.async_disk_hours(NOW - 1)
    await again.async_add_disk(NOW + 9 * DAY_S, [("/data", 1 * GB, 100 * GB)])
    after = await again.async_disk_hours(0)
    await again.async_close()
    assert hours == {"/data": [(NOW // 3600 * 3600 + 1800, 9 * GB)]}
    assert after == {"/data": [((NOW + 9 * DAY_S) // 3600 * 3600 + 1800, 1 * GB)]}  # 8 days kept


def test_prune_task_payload_is_checked() -> None:
    handler = PruneHandler(Pruner(data_dir=Path("/nonexistent"), audit=AuditLog(None)))
    assert handler.validate({}) == {
        "dry_run": True,
        "images": "unused",
        "budget_bytes": 20 * GB,
    }
    for bad, message in (
        ({"images": "all"}, "images must be one of dangling, unused"),
        ({"budget_bytes": -1}, "budget_bytes must be at least 0"),
        ({"dry_run": "no"}, "dry_run must be bool"),
        ({"force": True}, "Unknown payload field(s): force"),
    ):
        with pytest.raises(PayloadError, match=re.escape(message)):
            handler.validate(bad)


async def test_a_card_heating_up_is_forecast_from_the_gpu_history_and_nvml(
    tmp_path: Path,
) -> None:
    nvml = FakeNvml([make_gpu(0, slowdown=87)])
    probe = NvmlProbe(nvml)
    await probe.async_start()
    history = GpuHistory(None, probe)
    await history.async_open()
    uuid = nvml.gpus[0].uuid
    rows = []
    for step in range(8 * 24 * 4):  # every 15 minutes for 8 days, 2 °C warmer each day
        when = NOW - 8 * DAY_S + step * 900
        heat = 60 + 2 * (when - NOW + 8 * DAY_S) / DAY_S
        rows.append((when, uuid, 0, "RTX", heat, 200.0, 50.0, 40.0))
    await history._run(lambda: history._store(rows, None))
    store = ForecastStore(tmp_path / "forecasts.db")
    service = ForecastService(
        store, paths=[], bus=EventBus(), probe=probe, gpu_history=history, clock=lambda: NOW
    )
    await store.async_open()
    report = await service.async_forecasts()
    await store.async_close()
    await history.async_close()
    await probe.async_close()
    (forecast,) = report.forecasts
    assert forecast.kind == KIND_GPU_TEMPERATURE
    assert forecast.label == "GPU 0 (RTX)"
    assert forecast.threshold == 87.0
    assert forecast.days_until == pytest.approx((87 - 76) / 2, abs=0.3)
