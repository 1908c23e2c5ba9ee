"""The simulated backend: plausible numbers, and never mistaken for real hardware."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from hydra_core.gpu import (
    BACKENDS,
    NoGpuProbe,
    NvmlProbe,
    SimulatedProbe,
    create_probe,
    simulated,
)
from hydra_core.gpu.models import GpuInfo


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The simulation's clock, set by the test (only the simulation module sees it)."""
    now = [1000.0]
    monkeypatch.setattr(simulated, "time", SimpleNamespace(monotonic=lambda: now[0]))
    return now


def assert_physical(gpu: GpuInfo) -> None:
    assert 0 <= gpu.utilization_percent <= 100
    assert 0 <= gpu.memory_utilization_percent <= 100
    assert 0 <= gpu.fan_percent <= 100
    assert 20 <= gpu.temperature_c <= 95
    assert gpu.memory_total_bytes > 0
    assert 0 <= gpu.memory_used_bytes <= gpu.memory_total_bytes
    assert gpu.memory_used_bytes + gpu.memory_free_bytes == gpu.memory_total_bytes
    assert 0 < gpu.power_limit_min_w <= gpu.power_limit_w <= gpu.power_limit_max_w
    assert gpu.power_limit_min_w <= gpu.power_limit_default_w <= gpu.power_limit_max_w
    assert 0 < gpu.power_draw_w <= gpu.power_limit_w


def test_default_two_gpus_named_simulated(clock: list[float]) -> None:
    report = SimulatedProbe().read()

    assert report.backend == "simulated"
    assert report.available is True
    assert report.reason is None
    assert [gpu.index for gpu in report.gpus] == [0, 1]
    assert all("Simulated" in gpu.name for gpu in report.gpus)
    assert len({gpu.uuid for gpu in report.gpus}) == 2


@pytest.mark.parametrize("count", [1, 3, 8])
def test_count_is_respected(clock: list[float], count: int) -> None:
    report = create_probe("simulated", simulated_count=count).read()

    assert len(report.gpus) == count
    assert [gpu.index for gpu in report.gpus] == list(range(count))
    assert len({gpu.uuid for gpu in report.gpus}) == count
    assert all("Simulated" in gpu.name for gpu in report.gpus)


def test_zero_gpus_is_not_available(clock: list[float]) -> None:
    report = SimulatedProbe(count=0).read()

    assert report.available is False
    assert report.gpus == ()
    assert report.reason


def test_values_stay_physical_over_a_whole_cycle(clock: list[float]) -> None:
    probe = SimulatedProbe(count=4)
    loads = set()
    start = clock[0]
    for step in range(0, 400, 4):  # the load follows a sine with a period of about 377 s
        clock[0] = start + step
        for gpu in probe.read().gpus:
            assert "Simulated" in gpu.name
            assert_physical(gpu)
            loads.add(gpu.utilization_percent)

    # The values really move (it is a simulation of a working GPU, not a constant).
    assert max(loads) - min(loads) > 50


def test_values_drift_with_time(clock: list[float]) -> None:
    probe = SimulatedProbe(count=1)
    before = probe.read().gpus[0]
    clock[0] += 30
    after = probe.read().gpus[0]

    assert after.utilization_percent != before.utilization_percent
    assert (after.index, after.uuid, after.name) == (before.index, before.uuid, before.name)


def test_create_probe_known_backends() -> None:
    assert isinstance(create_probe("nvml"), NvmlProbe)
    assert isinstance(create_probe("simulated"), SimulatedProbe)
    assert isinstance(create_probe("none"), NoGpuProbe)
    assert set(BACKENDS) == {"nvml", "simulated", "none"}


def test_no_gpu_probe_says_monitoring_is_off() -> None:
    report = create_probe("none").read()

    assert report.available is False
    assert report.gpus == ()
    assert "disabled" in report.reason


def test_create_probe_unknown_backend_names_the_choices() -> None:
    with pytest.raises(ValueError, match="bogus") as raised:
        create_probe("bogus")

    message = str(raised.value)
    for backend in ("nvml", "simulated", "none"):
        assert backend in message
