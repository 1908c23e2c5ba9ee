"""The worker's event stream as Home Assistant follows it: reconnecting, catching up, re-auth."""

from __future__ import annotations

from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.hydra.const import DOMAIN, EVENT_CONTAINER_ACTION
from hydra_core.client import HydraClient
from hydra_core.containers.client import ContainersClient
from hydra_core.models import Actor
from tests.podman import PodmanEngine

from .conftest import ContainerWorker, setup_entry, wait_for_state, wait_until

# Long enough for the first reconnection attempt (after 1 s) and the resync after it.
RECONNECT_S = 5


def _pushed(entry: MockConfigEntry) -> bool:
    return entry.runtime_data.parts["containers"].pushed


@pytest.fixture
async def web_entry(
    hass: HomeAssistant, podman: PodmanEngine, containers_entry: MockConfigEntry
) -> MockConfigEntry:
    """The containers entry, set up with the container "web" running."""
    podman.run("web", init=True)
    await setup_entry(hass, containers_entry, "web")
    return containers_entry


async def test_reconnects_after_a_worker_restart(
    hass: HomeAssistant,
    podman: PodmanEngine,
    container_worker: ContainerWorker,
    web_entry: MockConfigEntry,
) -> None:
    """The worker restarts: the stream comes back by itself and pushes again."""
    await wait_until(lambda: _pushed(web_entry))
    await container_worker.restart()
    await wait_until(lambda: _pushed(web_entry), within=RECONNECT_S)
    podman.kill("web")
    await wait_for_state(hass, "sensor.web_state", "exited")


async def test_changes_while_disconnected_are_caught_up(
    hass: HomeAssistant,
    podman: PodmanEngine,
    container_worker: ContainerWorker,
    web_entry: MockConfigEntry,
) -> None:
    """What happened while the stream was down shows after it reconnects, actions included."""
    actions = async_capture_events(hass, EVENT_CONTAINER_ACTION)
    await container_worker.stop()
    await wait_until(lambda: not _pushed(web_entry))
    podman.kill("web")
    await container_worker.start()
    # Another client acts before Home Assistant is back on the stream.
    client = HydraClient(
        async_get_clientsession(hass), container_worker.url, container_worker.token
    )
    await ContainersClient(client).async_container_action(
        "web", "start", Actor(type="api", name="cli"), "by hand"
    )

    await wait_until(lambda: len(actions) == 1, within=RECONNECT_S)
    assert (actions[0].data["action"], actions[0].data["actor_name"]) == ("start", "cli")
    await wait_for_state(hass, "sensor.web_state", "running")
    # Caught up once, not again when the stream delivers more.
    podman.kill("web")
    await wait_for_state(hass, "sensor.web_state", "exited")
    assert len(actions) == 1


async def test_rotated_token_asks_for_the_new_one(
    hass: HomeAssistant,
    podman: PodmanEngine,
    container_worker: ContainerWorker,
    containers_entry: MockConfigEntry,
) -> None:
    """The stream is refused the token: re-authentication starts, without waiting for a poll."""
    await setup_entry(hass, containers_entry)
    await container_worker.restart(token="rotated-token-rotated-token")
    await wait_until(
        lambda: bool(hass.config_entries.flow.async_progress_by_handler(DOMAIN)),
        within=RECONNECT_S,
    )
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]


async def test_unload_ends_the_stream(
    hass: HomeAssistant, podman: PodmanEngine, containers_entry: MockConfigEntry
) -> None:
    """Unloaded, the entry follows nothing any more (the test harness checks for leftovers)."""
    await setup_entry(hass, containers_entry)
    assert await hass.config_entries.async_unload(containers_entry.entry_id)
    await hass.async_block_till_done()
    assert containers_entry.state is ConfigEntryState.NOT_LOADED
    assert not containers_entry._background_tasks
