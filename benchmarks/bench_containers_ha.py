"""Latency from a container dying in the engine to its Home Assistant entity changing, 64 running.

Run: .venv/bin/python -m pytest benchmarks/bench_containers_ha.py -s -q -p no:cacheprovider

A real podman engine with 64 running containers, the real worker on loopback following it,
and a real Home Assistant with the integration (every container a device with its entities).
Kills containers one at a time and times kill -> `sensor.<name>_state` showing "exited", which
goes engine event -> worker -> /api/v1/events -> coordinator -> entity. Also prints Home
Assistant's time to apply one pushed container event to all the entities.
"""

from __future__ import annotations

import statistics
import time

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hydra.coordinator import HydraContainerCoordinator
from tests.integration.conftest import setup_entry, wait_for_state
from tests.podman import PodmanEngine

COUNT = 64
KILLS = 8


async def test_event_to_entity_latency(
    hass: HomeAssistant, podman: PodmanEngine, containers_entry: MockConfigEntry
) -> None:
    """Print the figures."""
    names = [f"svc-{index:02d}" for index in range(COUNT)]
    for name in names:
        podman.run(name, init=True)
    await setup_entry(hass, containers_entry, *names)
    entities = len(hass.states.async_entity_ids())

    applied: list[float] = []
    original = HydraContainerCoordinator.async_apply_event

    def timed_apply(self: HydraContainerCoordinator, event: object) -> None:
        started = time.perf_counter()
        original(self, event)
        applied.append(time.perf_counter() - started)

    HydraContainerCoordinator.async_apply_event = timed_apply  # type: ignore[method-assign]
    latencies = []
    try:
        for name in names[:KILLS]:
            started = time.perf_counter()
            await hass.async_add_executor_job(podman.kill, name)
            await wait_for_state(hass, f"sensor.{name.replace('-', '_')}_state", "exited")
            latencies.append(time.perf_counter() - started)
    finally:
        HydraContainerCoordinator.async_apply_event = original  # type: ignore[method-assign]
    print(
        f"\n{COUNT} running containers, {entities} entities: kill -> entity "
        f"median {1000 * statistics.median(latencies):.0f} ms, "
        f"max {1000 * max(latencies):.0f} ms ({KILLS} kills; goal < 2000 ms); "
        f"applying one pushed event: median {1000 * statistics.median(applied):.2f} ms"
    )
    assert max(latencies) < 2
