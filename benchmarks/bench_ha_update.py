"""Home Assistant's time to apply one coordinator update to every GPU entity (4 GPUs).

Run: .venv/bin/python -m pytest benchmarks/bench_ha_update.py -s -q -p no:cacheprovider

A real Home Assistant (the test harness) with the integration set up against a real worker on
loopback; the update itself is applied in-process so only Home Assistant's side is timed:
listeners, entity value functions and state writes for every GPU sensor.
"""

from __future__ import annotations

from dataclasses import replace
import statistics
import time

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from tests.fake_nvml import FakeNvml, make_gpu

ROUNDS = 300


@pytest.fixture
def nvml() -> FakeNvml:
    """Four GPUs."""
    return FakeNvml([make_gpu(index) for index in range(4)])


async def test_coordinator_update_cost(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Print the median and 95th percentile of one update's cost."""
    coordinator = init_integration.runtime_data.status
    base = coordinator.data
    entities = len(hass.states.async_entity_ids("sensor"))
    durations = []
    for round_ in range(ROUNDS):
        # Every reading changes, so every entity writes a new state.
        gpus = tuple(
            replace(gpu, temperature_c=40.0 + round_ % 50, utilization_percent=float(round_ % 100))
            for gpu in base.gpu.gpus
        )
        status = replace(base, gpu=replace(base.gpu, gpus=gpus))
        started = time.perf_counter()
        coordinator.gpus = status.gpu_by_uuid()
        coordinator.async_set_updated_data(status)
        durations.append(time.perf_counter() - started)
        await hass.async_block_till_done()
    durations.sort()
    median = statistics.median(durations) * 1000
    p95 = durations[int(0.95 * len(durations))] * 1000
    print(
        f"\n{entities} sensor entities, 4 GPUs, {ROUNDS} updates: "
        f"median {median:.2f} ms, p95 {p95:.2f} ms per update (goal < 10 ms)"
    )
    assert entities >= 4 * 9
