"""Options for containers, and what diagnostics tell about them."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_TOKEN
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.hydra.const import (
    CONF_CONTAINERS,
    CONF_REMOVE_AFTER,
    CONF_SCAN_INTERVAL,
    DOMAIN,
)
from tests.podman import PodmanEngine

from .conftest import WORKER_ID, ContainerWorker, setup_entry, wait_until

# The daily routine's sections, at the end of every worker's options.
ROUTINE = ["presence", "bedtime", "briefing"]


def _schema_keys(result: dict) -> list[str]:
    return [str(key) for key in result["data_schema"].schema]


async def test_choose_containers_and_grace_period(
    hass: HomeAssistant,
    podman: PodmanEngine,
    containers_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """The options list the worker's containers; those not chosen leave Home Assistant."""
    podman.run("web", init=True)
    podman.run("db", init=True)
    await setup_entry(hass, containers_entry, "web", "db")

    result = await hass.config_entries.options.async_init(containers_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert _schema_keys(result) == [
        CONF_SCAN_INTERVAL,
        CONF_CONTAINERS,
        CONF_REMOVE_AFTER,
        *ROUTINE,
    ]
    selector = result["data_schema"].schema[CONF_CONTAINERS]
    assert selector.config["options"] == ["db", "web"]

    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_SCAN_INTERVAL: 30, CONF_CONTAINERS: ["web"], CONF_REMOVE_AFTER: 2},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert containers_entry.state is ConfigEntryState.LOADED
    assert containers_entry.options[CONF_CONTAINERS] == ["web"]
    assert hass.states.get("sensor.web_state").state == "running"
    assert hass.states.get("sensor.db_state") is None
    assert (
        device_registry.async_get_device_by_identifier(
            (DOMAIN, f"{WORKER_ID}_container_db"), containers_entry.entry_id
        )
        is None
    )

    # A pattern saved earlier stays in the list even though no container has that name.
    hass.config_entries.async_update_entry(
        containers_entry, options={**containers_entry.options, CONF_CONTAINERS: ["media-*"]}
    )
    result = await hass.config_entries.options.async_init(containers_entry.entry_id)
    selector = result["data_schema"].schema[CONF_CONTAINERS]
    assert selector.config["options"] == ["db", "media-*", "web"]


async def test_options_of_an_entry_not_loaded(
    hass: HomeAssistant, container_worker: ContainerWorker, containers_entry: MockConfigEntry
) -> None:
    """While the worker is unreachable only the update interval can be changed."""
    await container_worker.stop()
    containers_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(containers_entry.entry_id)
    await hass.async_block_till_done()
    assert containers_entry.state is ConfigEntryState.SETUP_RETRY
    result = await hass.config_entries.options.async_init(containers_entry.entry_id)
    assert _schema_keys(result) == [CONF_SCAN_INTERVAL, *ROUTINE]


async def test_diagnostics_hold_the_containers(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    podman: PodmanEngine,
    container_worker: ContainerWorker,
    containers_entry: MockConfigEntry,
) -> None:
    """Diagnostics carry the engine and every container, and still no token."""
    podman.run("web", init=True, labels={"hydra.protected": "true"})
    await setup_entry(hass, containers_entry, "web")
    # The event stream connects in the background; diagnostics tell once it has caught up.
    await wait_until(lambda: containers_entry.runtime_data.parts["containers"].pushed)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, containers_entry)
    assert container_worker.token not in str(diagnostics)
    assert diagnostics["entry"]["data"][CONF_TOKEN] == "**REDACTED**"
    containers = diagnostics["containers"]
    assert containers["event_stream_connected"] is True
    assert containers["report"]["engine_available"] is True
    assert containers["report"]["engine_version"].startswith("Podman ")
    [web] = containers["report"]["containers"]
    assert (web["name"], web["state"], web["protected"]) == ("web", "running", True)
