"""The GPU history behind the night report: what it keeps, and the sums it makes of a night."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
import sqlite3
from typing import Any

import pytest

from hydra_core.gpu import NvmlProbe
from hydra_core.gpu.history import GpuHistory
from hydra_core.gpu.models import GpuNight
from tests.fake_nvml import FakeNvml, make_gpu

T0 = 1_750_000_000.0  # a night in June 2025
INTERVAL = 30.0
HOUR = 3600.0
DAY = 86400.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    """A history over a fake NVML, with its clock."""

    nvml: FakeNvml
    probe: NvmlProbe
    history: GpuHistory
    clock: Clock
    closed: bool = False

    async def close(self) -> None:
        """Stop the history and the probe (as a worker stopping does)."""
        if not self.closed:
            self.closed = True
            await self.history.async_close()
            await self.probe.async_close()

    async def sample_at(self, when: float, gpu: int = 0, **readings: Any) -> None:
        """Set one card's readings (NVML's units), then take a sample at ``when``."""
        for name, value in readings.items():
            setattr(self.nvml.gpus[gpu], name, value)
        self.clock.now = when
        await self.history.async_sample()

    async def night(self, since: float = 0, until: float = 2**40) -> GpuNight:
        """The summary of the one GPU sampled in the span."""
        (night,) = await self.history.async_summary(since, until)
        return night


MakeRig = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig() -> AsyncIterator[MakeRig]:
    """Open histories over fake GPUs with a hand-moved clock; all closed afterwards."""
    rigs: list[Rig] = []

    async def make(
        path: Path | None = None,
        *,
        gpus: int = 1,
        keep_s: float = 8 * DAY,
        nvml: FakeNvml | None = None,
    ) -> Rig:
        nvml = nvml or FakeNvml([make_gpu(index) for index in range(gpus)])
        probe = NvmlProbe(nvml)
        clock = Clock(T0)
        history = GpuHistory(path, probe, interval_s=INTERVAL, keep_s=keep_s, clock=clock)
        await probe.async_start()
        await history.async_open()
        rigs.append(Rig(nvml, probe, history, clock))
        return rigs[-1]

    yield make
    for rig in rigs:
        await rig.close()


async def test_constant_power_for_an_hour_is_its_watt_hours(make_rig: MakeRig) -> None:
    rig = await make_rig()
    for step in range(int(HOUR / INTERVAL) + 1):  # 0 s .. 3600 s inclusive
        await rig.sample_at(T0 + step * INTERVAL, power_mw=250_000)

    night = await rig.night()
    assert night.energy_wh == pytest.approx(250.0)
    assert night.samples == 121
    assert (night.index, night.uuid, night.name) == (
        0,
        make_gpu(0).uuid,
        "NVIDIA GeForce RTX 4090",
    )


async def test_peak_temperature_mean_utilization_and_a_ramp(make_rig: MakeRig) -> None:
    rig = await make_rig()
    await rig.sample_at(T0, temperature=50, gpu_util=10, power_mw=100_000)
    await rig.sample_at(T0 + 30, temperature=78, gpu_util=20, power_mw=300_000)
    await rig.sample_at(T0 + 60, temperature=65, gpu_util=60, power_mw=300_000)

    night = await rig.night()
    assert night.peak_temperature_c == 78
    assert night.mean_utilization_percent == pytest.approx(30.0)
    # 30 s ramping 100 -> 300 W (mean 200 W), then 30 s at 300 W: 15,000 J.
    assert night.energy_wh == pytest.approx(15_000 / 3600)


async def test_a_gap_longer_than_three_intervals_is_not_bridged(make_rig: MakeRig) -> None:
    rig = await make_rig()
    for offset in (0, 30, 60):
        await rig.sample_at(T0 + offset, power_mw=360_000)
    # The worker was down for 20 minutes; then three more samples, the first gap exactly
    # three intervals long (still bridged: a couple of missed rounds).
    for offset in (1260, 1350, 1380):
        await rig.sample_at(T0 + offset, power_mw=360_000)

    night = await rig.night()
    assert night.samples == 6
    # 60 s + 90 s + 30 s at 360 W; the 1,200 s outage counts for nothing.
    assert night.energy_wh == pytest.approx(360 * 180 / 3600)


async def test_missing_readings_are_skipped_not_zero(make_rig: MakeRig) -> None:
    rig = await make_rig()
    await rig.sample_at(T0, temperature=60, gpu_util=50, power_mw=100_000)
    rig.nvml.gpus[0].unsupported = {
        "nvmlDeviceGetTemperature",
        "nvmlDeviceGetUtilizationRates",
        "nvmlDeviceGetPowerUsage",
    }
    await rig.sample_at(T0 + 30)
    rig.nvml.gpus[0].unsupported = set()
    await rig.sample_at(T0 + 60, temperature=40, gpu_util=70, power_mw=300_000)

    night = await rig.night()
    assert night.samples == 3
    assert night.peak_temperature_c == 60
    assert night.mean_utilization_percent == pytest.approx(60.0)  # not (50 + 0 + 70) / 3
    # Power integrated straight from 100 W to 300 W over the 60 s: 12,000 J.
    assert night.energy_wh == pytest.approx(12_000 / 3600)


async def test_a_card_that_never_reports_a_value_says_none(make_rig: MakeRig) -> None:
    rig = await make_rig()
    rig.nvml.gpus[0].unsupported = {"nvmlDeviceGetTemperature", "nvmlDeviceGetPowerUsage"}
    await rig.sample_at(T0)
    await rig.sample_at(T0 + 30)

    night = await rig.night()
    assert (night.samples, night.peak_temperature_c, night.energy_wh) == (2, None, None)
    assert night.mean_utilization_percent == 37


async def test_only_the_span_counts_and_unsampled_gpus_are_left_out(make_rig: MakeRig) -> None:
    rig = await make_rig(gpus=2)
    await rig.sample_at(T0 - HOUR, temperature=95)  # the evening before: both GPUs
    rig.nvml.gpus.pop()  # GPU 1 is gone for the night
    for offset in (0, 30, 60):
        await rig.sample_at(T0 + offset, temperature=70)
    await rig.sample_at(T0 + HOUR, temperature=99)  # after the span

    nights = await rig.history.async_summary(T0, T0 + 60)
    assert [(n.index, n.samples, n.peak_temperature_c) for n in nights] == [(0, 3, 70)]
    both = await rig.history.async_summary(T0 - HOUR, T0)
    assert [(n.index, n.samples) for n in both] == [(0, 2), (1, 1)]
    assert await rig.history.async_summary(T0 + 2 * HOUR, T0 + 3 * HOUR) == ()


async def test_gpus_are_ordered_by_index_and_named_as_last_seen(make_rig: MakeRig) -> None:
    rig = await make_rig(gpus=2)
    await rig.sample_at(T0)
    rig.nvml.gpus.reverse()  # after a reboot the cards swapped places
    rig.nvml.gpus[0].name = "NVIDIA RTX A6000"
    await rig.sample_at(T0 + 30)

    nights = await rig.history.async_summary(T0, T0 + 30)
    assert [(n.index, n.uuid, n.samples) for n in nights] == [
        (0, make_gpu(1).uuid, 2),
        (1, make_gpu(0).uuid, 2),
    ]
    assert nights[0].name == "NVIDIA RTX A6000"


async def test_no_gpu_stores_nothing(make_rig: MakeRig) -> None:
    rig = await make_rig(gpus=0)
    await rig.sample_at(T0)
    assert await rig.history.async_summary(0, 2**40) == ()


async def test_samples_older_than_the_keep_time_are_pruned_hourly(make_rig: MakeRig) -> None:
    rig = await make_rig(keep_s=8 * DAY)
    await rig.sample_at(T0)
    await rig.sample_at(T0 + 8 * DAY - 60)  # the first sample is not yet 8 days old
    await rig.sample_at(T0 + 8 * DAY + 60)  # now it is, but the last prune was not an hour ago
    assert (await rig.night()).samples == 3
    await rig.sample_at(T0 + 8 * DAY + HOUR)
    assert (await rig.night()).samples == 3  # the first is gone, the newest is in


async def test_a_restart_keeps_the_night(make_rig: MakeRig, tmp_path: Path) -> None:
    path = tmp_path / "metrics.db"
    rig = await make_rig(path)
    await rig.sample_at(T0, power_mw=200_000)
    await rig.sample_at(T0 + 30, power_mw=200_000)
    await rig.close()

    again = await make_rig(path, nvml=rig.nvml)
    await again.sample_at(T0 + 60, power_mw=200_000)
    night = await again.night()
    assert night.samples == 3
    assert night.energy_wh == pytest.approx(200 * 60 / 3600)


async def test_a_slow_disk_does_not_hold_the_event_loop(make_rig: MakeRig, tmp_path: Path) -> None:
    """The SQLite work runs on the history's own thread: the loop keeps serving meanwhile."""
    path = tmp_path / "metrics.db"
    rig = await make_rig(path)
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the database
        sampling = asyncio.create_task(rig.sample_at(T0))
        ticks = 0
        for _ in range(20):
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 20
        assert not sampling.done()  # still waiting for the lock, on its own thread
        blocker.execute("COMMIT")
        async with asyncio.timeout(5):
            await sampling
    finally:
        blocker.close()
    assert (await rig.night()).samples == 1


async def test_background_sampling_runs_until_stopped() -> None:
    probe = NvmlProbe(FakeNvml([make_gpu(0)]))
    history = GpuHistory(None, probe, interval_s=0.02)
    await probe.async_start()
    await history.async_start()
    try:
        async with asyncio.timeout(5):
            while not (nights := await history.async_summary(0, 2**40)) or nights[0].samples < 3:
                await asyncio.sleep(0.02)
    finally:
        await history.async_stop()
        await probe.async_close()
    assert nights[0].energy_wh > 0
