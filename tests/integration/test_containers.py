"""Containers in Home Assistant, fed by a real worker following a real podman engine."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
import time
from typing import Any

from homeassistant.components.binary_sensor import BinarySensorDeviceClass
from homeassistant.components.button import ButtonDeviceClass
from homeassistant.components.sensor import SensorDeviceClass
from homeassistant.const import (
    ATTR_ENTITY_ID,
    ATTR_UNIT_OF_MEASUREMENT,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.hydra.const import (
    CONF_CONTAINERS,
    CONF_REMOVE_AFTER,
    DOMAIN,
    EVENT_CONTAINER_ACTION,
    EVENT_CONTAINER_HEAL_FAILED,
)
from hydra_core.client import HydraClient
from hydra_core.containers.client import ContainersClient
from tests.podman import TOGGLE_HEALTH_CMD, PodmanEngine, PodmanError

from .conftest import (
    PUSH_DEADLINE_S,
    WORKER_ID,
    WORKER_NAME,
    ContainerWorker,
    refresh_containers,
    setup_entry,
    wait_for_state,
    wait_until,
)

PROTECTED = {"hydra.protected": "true"}
# PID 1 that passes SIGTERM on, so stop and restart take milliseconds, not the 10 s grace.
QUICK = {"init": True}


def _container_id(entry: MockConfigEntry, name: str) -> str | None:
    """The id of the container as Home Assistant last heard of it."""
    container = entry.runtime_data.parts["containers"].containers.get(name)
    return None if container is None else container.id


@pytest.fixture
def engine_containers(podman: PodmanEngine) -> Iterator[PodmanEngine]:
    """A healthy web server, one failing its health check, one crashed, one protected."""
    podman.run("web", health_cmd="true", **QUICK)
    podman.healthcheck("web")
    podman.run("sick", health_cmd="false", **QUICK)
    podman.healthcheck("sick")
    podman.run("crash", exit_code=3)
    podman.run("vault", labels=PROTECTED, **QUICK)
    return podman


async def test_containers_are_devices_with_their_state(
    hass: HomeAssistant,
    engine_containers: PodmanEngine,
    containers_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Each container is a device via the worker, with state, health, problem and controls."""
    await setup_entry(hass, containers_entry)
    worker = device_registry.async_get_device_by_identifier(
        (DOMAIN, WORKER_ID), containers_entry.entry_id
    )
    web = device_registry.async_get_device_by_identifier(
        (DOMAIN, f"{WORKER_ID}_container_web"), containers_entry.entry_id
    )
    assert web.via_device_id == worker.id
    assert (web.name, web.model, web.manufacturer) == ("web", engine_containers.image, "Podman")

    state = hass.states.get("sensor.web_state")
    assert state.state == "running"
    assert state.attributes["device_class"] == SensorDeviceClass.ENUM
    assert "exited" in state.attributes["options"]
    assert hass.states.get("sensor.web_health").state == "healthy"
    assert hass.states.get("binary_sensor.web_problem").state == STATE_OFF
    assert (
        hass.states.get("binary_sensor.web_problem").attributes["device_class"]
        == BinarySensorDeviceClass.PROBLEM
    )
    assert hass.states.get("switch.web_running").state == STATE_ON
    assert hass.states.get("button.web_restart").attributes["device_class"] == (
        ButtonDeviceClass.RESTART
    )
    assert hass.states.get("sensor.web_restarts").state == "0"

    assert hass.states.get("sensor.sick_health").state == "unhealthy"
    assert hass.states.get("binary_sensor.sick_problem").state == STATE_ON
    assert hass.states.get("sensor.crash_state").state == "exited"
    assert hass.states.get("binary_sensor.crash_problem").state == STATE_ON
    assert hass.states.get("switch.crash_running").state == STATE_OFF
    assert hass.states.get("sensor.vault_health").state == "none"

    # CPU and memory change all the time: off until the user wants them.
    for key in ("cpu_usage", "memory_used"):
        entry = entity_registry.async_get(f"sensor.web_{key}")
        assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert entity_registry.async_get("sensor.web_state").unique_id == (
        f"{WORKER_ID}_container_web_state"
    )
    assert hass.states.get("binary_sensor.gpubox_container_engine").state == STATE_ON
    assert hass.states.get("switch.gpubox_self_healing").state == STATE_OFF


async def test_cpu_and_memory_when_enabled(
    hass: HomeAssistant,
    podman: PodmanEngine,
    containers_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Enabled by the user, CPU and memory show real readings in % and MiB."""
    podman.run("busy", command=("sh", "-c", "while true; do :; done"), **QUICK)
    await setup_entry(hass, containers_entry, "busy")
    for key in ("cpu_usage", "memory_used"):
        entity_registry.async_update_entity(f"sensor.busy_{key}", disabled_by=None)
    await hass.config_entries.async_reload(containers_entry.entry_id)
    await hass.async_block_till_done()
    # CPU % needs two samples: wait for the worker's next cycles, then poll.
    await asyncio.sleep(1.2)
    await refresh_containers(hass, containers_entry)
    cpu = hass.states.get("sensor.busy_cpu_usage")
    assert cpu.attributes[ATTR_UNIT_OF_MEASUREMENT] == "%"
    assert float(cpu.state) > 10
    memory = hass.states.get("sensor.busy_memory_used")
    assert memory.attributes[ATTR_UNIT_OF_MEASUREMENT] == "MiB"
    assert 0 < float(memory.state) < 100


async def test_a_dying_container_shows_within_two_seconds(
    hass: HomeAssistant, podman: PodmanEngine, containers_entry: MockConfigEntry
) -> None:
    """A kill in the engine reaches the entities through the event stream, not a poll."""
    podman.run("web", **QUICK)
    await setup_entry(hass, containers_entry, "web")
    assert hass.states.get("sensor.web_state").state == "running"
    began = time.monotonic()
    podman.kill("web")
    await wait_for_state(hass, "sensor.web_state", "exited", PUSH_DEADLINE_S)
    assert time.monotonic() - began < PUSH_DEADLINE_S
    assert hass.states.get("switch.web_running").state == STATE_OFF


async def test_turning_unhealthy_shows_within_two_seconds(
    hass: HomeAssistant, podman: PodmanEngine, containers_entry: MockConfigEntry
) -> None:
    """A failed health check makes the problem sensor turn on at once, and off when it passes."""
    podman.run("web", health_cmd=TOGGLE_HEALTH_CMD, **QUICK)
    podman.make_healthy("web")
    await setup_entry(hass, containers_entry, "web")
    assert hass.states.get("binary_sensor.web_problem").state == STATE_OFF
    podman.make_unhealthy("web")
    await wait_for_state(hass, "binary_sensor.web_problem", STATE_ON)
    assert hass.states.get("sensor.web_health").state == "unhealthy"
    podman.make_healthy("web")
    await wait_for_state(hass, "sensor.web_health", "healthy")


async def test_restart_and_stop_and_start(
    hass: HomeAssistant,
    podman: PodmanEngine,
    containers_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """The button restarts, the switch stops and starts; each action is an HA event."""
    # Ends cleanly on SIGTERM (exit code 0), as a well-behaved server does.
    podman.run("web", command=("sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"))
    started = podman.inspect("web")["State"]["StartedAt"]
    await setup_entry(hass, containers_entry, "web")
    actions = async_capture_events(hass, EVENT_CONTAINER_ACTION)
    await hass.services.async_call(
        "button", "press", {ATTR_ENTITY_ID: "button.web_restart"}, blocking=True
    )
    assert podman.inspect("web")["State"]["StartedAt"] != started
    await wait_until(lambda: len(actions) == 1)
    device = device_registry.async_get_device_by_identifier(
        (DOMAIN, f"{WORKER_ID}_container_web"), containers_entry.entry_id
    )
    assert actions[0].data == {
        "entry_id": containers_entry.entry_id,
        "device_id": device.id,
        "container": "web",
        "action": "restart",
        "result": "ok",
        "reason": None,
        "detail": None,
        "actor_type": "automation",
        "actor_id": actions[0].data["actor_id"],
        "actor_name": None,
        "audit_id": actions[0].data["audit_id"],
    }

    await hass.services.async_call(
        "switch", "turn_off", {ATTR_ENTITY_ID: "switch.web_running"}, blocking=True
    )
    await wait_for_state(hass, "switch.web_running", STATE_OFF)
    assert hass.states.get("sensor.web_state").state == "exited"
    # Stopped on purpose: not a problem.
    assert hass.states.get("binary_sensor.web_problem").state == STATE_OFF
    await hass.services.async_call(
        "switch", "turn_on", {ATTR_ENTITY_ID: "switch.web_running"}, blocking=True
    )
    await wait_for_state(hass, "sensor.web_state", "running")
    await wait_until(lambda: len(actions) == 3)
    assert [event.data["action"] for event in actions] == ["restart", "stop", "start"]


async def test_self_healing_switch(
    hass: HomeAssistant,
    podman: PodmanEngine,
    container_worker: ContainerWorker,
    containers_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Switched on in HA, the worker heals; past its budget Repairs and an event say so."""
    await setup_entry(hass, containers_entry)
    client = HydraClient(
        async_get_clientsession(hass), container_worker.url, container_worker.token
    )
    failed = async_capture_events(hass, EVENT_CONTAINER_HEAL_FAILED)
    actions = async_capture_events(hass, EVENT_CONTAINER_ACTION)
    podman.run("crash", exit_code=3)
    await wait_for_state(hass, "binary_sensor.crash_problem", STATE_ON)

    await hass.services.async_call(
        "switch", "turn_on", {ATTR_ENTITY_ID: "switch.gpubox_self_healing"}, blocking=True
    )
    assert hass.states.get("switch.gpubox_self_healing").state == STATE_ON
    assert (await ContainersClient(client).async_containers()).healing.enabled

    # It exits again after every restart: three restarts, then self-healing gives up.
    await wait_until(lambda: len(failed) == 1, within=10)
    heals = [event.data for event in actions if event.data["actor_type"] == "self_heal"]
    assert [data["result"] for data in heals] == ["ok", "ok", "ok", "refused"]
    assert heals[0]["reason"] == "exited with code 3"
    assert failed[0].data["container"] == "crash"
    assert failed[0].data["restarts"] == 3
    assert failed[0].data["title"] == "Self-healing gave up on crash"
    assert "3 times in the last 60 minutes" in failed[0].data["message"]
    issue_id = f"heal_exhausted_{containers_entry.entry_id}_crash"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None

    # Fixed: once it runs, the issue goes.
    podman.recreate("crash", exit_code=None, **QUICK)
    await wait_for_state(hass, "sensor.crash_state", "running")
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None

    await hass.services.async_call(
        "switch", "turn_off", {ATTR_ENTITY_ID: "switch.gpubox_self_healing"}, blocking=True
    )
    assert hass.states.get("switch.gpubox_self_healing").state == STATE_OFF
    assert not (await ContainersClient(client).async_containers()).healing.enabled


async def test_new_container_gets_entities_without_reload(
    hass: HomeAssistant, podman: PodmanEngine, containers_entry: MockConfigEntry
) -> None:
    """A container created later appears at once."""
    await setup_entry(hass, containers_entry)
    assert hass.states.get("sensor.late_state") is None
    podman.run("late", **QUICK)
    await wait_for_state(hass, "sensor.late_state", "running")
    assert hass.states.get("button.late_restart") is not None


async def test_removed_container_goes_unavailable_then_away(
    hass: HomeAssistant,
    podman: PodmanEngine,
    containers_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Gone: unavailable for the grace period, then its device goes, save what the user disabled.

    Coming back under the same name, it gets the same entities, the disabled one still disabled.
    """
    podman.run("web", **QUICK)
    podman.run("other", **QUICK)
    await setup_entry(hass, containers_entry, "web", "other")
    entity_registry.async_update_entity(
        "sensor.web_restarts", disabled_by=er.RegistryEntryDisabler.USER
    )
    await hass.async_block_till_done()

    podman.remove("web")
    await wait_for_state(hass, "sensor.web_state", STATE_UNAVAILABLE)
    assert hass.states.get("button.web_restart").state == STATE_UNAVAILABLE
    assert hass.states.get("sensor.other_state").state == "running"

    await refresh_containers(hass, containers_entry, timedelta(hours=23))
    assert entity_registry.async_get("sensor.web_state") is not None
    # When it went missing is kept across a restart of the integration.
    assert await hass.config_entries.async_reload(containers_entry.entry_id)
    await hass.async_block_till_done()

    await refresh_containers(hass, containers_entry, timedelta(hours=25))
    assert entity_registry.async_get("sensor.web_state") is None
    assert hass.states.get("sensor.web_state") is None
    assert (
        device_registry.async_get_device_by_identifier(
            (DOMAIN, f"{WORKER_ID}_container_web"), containers_entry.entry_id
        )
        is None
    )
    kept = entity_registry.async_get("sensor.web_restarts")
    assert kept.disabled_by is er.RegistryEntryDisabler.USER
    assert kept.device_id is None
    assert entity_registry.async_get("sensor.other_state") is not None

    podman.run("web", **QUICK)
    await wait_for_state(hass, "sensor.web_state", "running")
    back = entity_registry.async_get("sensor.web_restarts")
    assert back.disabled_by is er.RegistryEntryDisabler.USER
    assert back.device_id is not None


async def test_recreated_container_keeps_its_entities(
    hass: HomeAssistant,
    podman: PodmanEngine,
    containers_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Recreated under the same name (new id): the same entities, available again."""
    podman.run("web", **QUICK)
    await setup_entry(hass, containers_entry, "web")
    entity_registry.async_update_entity("sensor.web_state", name="Web server")
    old_id = podman.inspect("web")["Id"]
    podman.recreate("web")
    assert podman.inspect("web")["Id"] != old_id
    await wait_until(lambda: _container_id(containers_entry, "web") not in (None, old_id))
    await wait_for_state(hass, "sensor.web_state", "running")
    assert entity_registry.async_get("sensor.web_state").name == "Web server"
    # The same eight entities, not a second set.
    web = sorted(
        entry.entity_id
        for entry in er.async_entries_for_config_entry(entity_registry, containers_entry.entry_id)
        if entry.unique_id.startswith(f"{WORKER_ID}_container_web_")
    )
    assert web == [
        "binary_sensor.web_problem",
        "button.web_restart",
        "sensor.web_cpu_usage",
        "sensor.web_health",
        "sensor.web_memory_used",
        "sensor.web_restarts",
        "sensor.web_state",
        "switch.web_running",
    ]


async def test_only_chosen_containers(
    hass: HomeAssistant,
    podman: PodmanEngine,
    container_worker: ContainerWorker,
    device_registry: dr.DeviceRegistry,
) -> None:
    """With containers chosen in the options, only those (by name or pattern) are shown."""
    podman.run("media-plex", **QUICK)
    podman.run("media-sonarr", **QUICK)
    podman.run("db", **QUICK)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=WORKER_NAME,
        unique_id=WORKER_ID,
        data={"url": container_worker.url, "token": container_worker.token},
        options={CONF_CONTAINERS: ["media-*"], CONF_REMOVE_AFTER: 1},
    )
    await setup_entry(hass, entry, "media-plex", "media-sonarr")
    assert hass.states.get("sensor.media_plex_state").state == "running"
    assert hass.states.get("sensor.media_sonarr_state").state == "running"
    assert hass.states.get("sensor.db_state") is None
    podman.run("media-radarr", **QUICK)
    podman.run("cache", **QUICK)
    await wait_for_state(hass, "sensor.media_radarr_state", "running")
    assert hass.states.get("sensor.cache_state") is None


async def test_worker_without_engine_has_no_container_entities(
    hass: HomeAssistant, init_integration: MockConfigEntry, issue_registry: ir.IssueRegistry
) -> None:
    """A worker with container monitoring off: GPU entities only, no errors, no issues."""
    assert "containers" not in init_integration.runtime_data.parts
    assert hass.states.async_entity_ids("switch") == []
    # The worker's own button (the briefing) only.
    assert hass.states.async_entity_ids("button") == ["button.gpubox_send_briefing"]
    assert hass.states.async_entity_ids("binary_sensor") == []
    assert hass.states.get("sensor.gpubox_gpu_0_temperature").state == "61.0"
    assert not issue_registry.issues


async def test_action_failures_are_explained(
    hass: HomeAssistant,
    podman: PodmanEngine,
    container_worker: ContainerWorker,
    containers_entry: MockConfigEntry,
) -> None:
    """An engine that refuses, or a worker that is gone, end the action with a clear error."""
    with pytest.raises(PodmanError):
        podman.run("broken", command=("/no/such/program",))
    podman.run("web", **QUICK)
    await setup_entry(hass, containers_entry, "web")
    await wait_until(lambda: hass.states.get("switch.broken_running") is not None)

    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            "switch", "turn_on", {ATTR_ENTITY_ID: "switch.broken_running"}, blocking=True
        )
    assert caught.value.translation_key == "container_action_failed"
    assert str(caught.value).startswith("Could not start broken: ")

    await container_worker.stop()
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            "button", "press", {ATTR_ENTITY_ID: "button.web_restart"}, blocking=True
        )
    assert caught.value.translation_key == "cannot_connect"
    assert str(caught.value).startswith("Cannot reach the Hydra worker: ")
    with pytest.raises(HomeAssistantError, match="Cannot reach the Hydra worker"):
        await hass.services.async_call(
            "switch", "turn_off", {ATTR_ENTITY_ID: "switch.gpubox_self_healing"}, blocking=True
        )


async def test_action_with_a_rotated_token_asks_for_the_new_one(
    hass: HomeAssistant,
    podman: PodmanEngine,
    container_worker: ContainerWorker,
    containers_entry: MockConfigEntry,
) -> None:
    """The worker refuses the token on an action: the user is told, and asked for the new one."""
    podman.run("web", **QUICK)
    await setup_entry(hass, containers_entry, "web")
    # The event stream has caught up, so nothing reads the worker while it restarts.
    await wait_until(lambda: containers_entry.runtime_data.parts["containers"].pushed)
    await container_worker.restart(token="rotated-token-rotated-token")
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            "button", "press", {ATTR_ENTITY_ID: "button.web_restart"}, blocking=True
        )
    assert caught.value.translation_key == "invalid_auth"
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]


async def test_gone_container_can_be_deleted_by_hand(
    hass: HomeAssistant,
    podman: PodmanEngine,
    containers_entry: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    hass_storage: dict[str, Any],
) -> None:
    """Before the grace period ends the user may delete a gone container, never a live one.

    Removing the entry forgets what it kept about its containers.
    """
    podman.run("web", **QUICK)
    podman.run("other", **QUICK)
    await setup_entry(hass, containers_entry, "web", "other")
    podman.remove("web")
    await wait_for_state(hass, "sensor.web_state", STATE_UNAVAILABLE)
    await hass.async_block_till_done()
    registry = dr.async_get(hass)
    gone, live = (
        registry.async_get_device_by_identifier(
            (DOMAIN, f"{WORKER_ID}_container_{name}"), containers_entry.entry_id
        )
        for name in ("web", "other")
    )
    assert await async_setup_component(hass, "config", {})
    client = await hass_ws_client(hass)
    for device, allowed in ((live, False), (gone, True)):
        await client.send_json_auto_id(
            {"type": "config/device_registry/remove", "device_id": device.id}
        )
        assert (await client.receive_json())["success"] is allowed
    assert registry.async_get(gone.id) is None
    assert hass.states.get("sensor.web_state") is None

    # Back later under that name: it starts afresh, with new entities.
    podman.run("web", **QUICK)
    await wait_for_state(hass, "sensor.web_state", "running")
    podman.remove("web")
    await wait_for_state(hass, "sensor.web_state", STATE_UNAVAILABLE)

    key = f"{DOMAIN}.{containers_entry.entry_id}.containers"
    assert await hass.config_entries.async_unload(containers_entry.entry_id)
    assert list(hass_storage[key]["data"]["missing_since"]) == ["web"]
    assert await hass.config_entries.async_remove(containers_entry.entry_id)
    await hass.async_block_till_done()
    assert key not in hass_storage
