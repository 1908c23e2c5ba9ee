"""The container engine going away and coming back, as Home Assistant shows it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hydra.const import DOMAIN
from tests.podman import PodmanEngine

from .conftest import refresh_containers, setup_entry, wait_for_state

ENGINE = "binary_sensor.gpubox_container_engine"


@pytest.fixture
def engine_stopper(podman: PodmanEngine) -> Iterator[PodmanEngine]:
    """The engine, whose service the test may stop; it runs again afterwards for the others."""
    yield podman
    if not podman.running:
        podman.start_service()


async def test_engine_down_then_back(
    hass: HomeAssistant,
    engine_stopper: PodmanEngine,
    containers_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Engine gone: its containers are unavailable, Repairs says so after 5 minutes.

    Engine back: everything returns and the issue goes, without a reload.
    """
    engine_stopper.run("web", init=True)
    await setup_entry(hass, containers_entry, "web")
    assert hass.states.get(ENGINE).state == STATE_ON
    issue_id = f"engine_unavailable_{containers_entry.entry_id}"

    engine_stopper.stop_service()
    await wait_for_state(hass, ENGINE, STATE_OFF, within=5)
    assert hass.states.get("sensor.web_state").state == STATE_UNAVAILABLE
    assert hass.states.get("switch.web_running").state == STATE_UNAVAILABLE
    # The worker itself still answers: its GPU sensors stay.
    assert hass.states.get("sensor.gpubox_gpu_0_temperature").state == "61.0"

    await refresh_containers(hass, containers_entry, timedelta(minutes=4))
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    await refresh_containers(hass, containers_entry, timedelta(minutes=5, seconds=1))
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "engine_unavailable"
    assert issue.translation_placeholders["worker"] == "gpubox"
    assert "Cannot reach the container engine" in issue.translation_placeholders["error"]

    engine_stopper.start_service()
    await wait_for_state(hass, ENGINE, STATE_ON, within=10)
    await wait_for_state(hass, "sensor.web_state", "running")
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    assert containers_entry.state.recoverable
