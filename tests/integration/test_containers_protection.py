"""Protected containers in Home Assistant: by the worker's name patterns and by label, through a
real worker following a real podman engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from homeassistant.const import ATTR_ENTITY_ID, STATE_UNAVAILABLE
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.aiohttp_client import async_get_clientsession
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockUser,
    async_capture_events,
)

from custom_components.hydra.const import EVENT_CONTAINER_ACTION
from hydra_core.client import HydraClient
from tests.fake_nvml import FakeNvml
from tests.podman import PodmanEngine

from .conftest import (
    ContainerWorker,
    entry_for,
    refresh_containers,
    setup_entry,
    wait_for_state,
    wait_until,
)
from .test_containers import PROTECTED, QUICK

CONTROLS = ("switch.{}_running", "button.{}_restart")
CONTROLS_OF_VAULT = ("switch.vault_running", "button.vault_restart")


@pytest.fixture
async def pattern_worker(
    nvml: FakeNvml, podman: PodmanEngine, tmp_path: Path
) -> AsyncIterator[ContainerWorker]:
    """A worker that protects every container whose name matches ``db-*``."""
    async with ContainerWorker(
        nvml, docker_host=podman.docker_host, data_dir=tmp_path, protected=("db-*",)
    ) as loopback:
        yield loopback


@pytest.fixture
def pattern_entry(pattern_worker: ContainerWorker) -> MockConfigEntry:
    """The entry the config flow makes for that worker."""
    return entry_for(pattern_worker)


def _controls(entity_registry: er.EntityRegistry, name: str) -> list[str]:
    """The container's controls that Home Assistant has, in the registry."""
    return [
        entity_id
        for template in CONTROLS
        if entity_registry.async_get(entity_id := template.format(name.replace("-", "_")))
    ]


async def test_pattern_protected_container_has_no_controls(
    hass: HomeAssistant,
    podman: PodmanEngine,
    pattern_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Protected by the worker's pattern: its state shows, nothing to stop or restart it with,
    also after a rename into the pattern and a recreate as Docker Compose does it."""
    old_id = podman.run("db-main", **QUICK)
    podman.run("web", **QUICK)
    await setup_entry(hass, pattern_entry, "db-main", "web")
    assert _controls(entity_registry, "db-main") == []
    assert hass.states.get("sensor.db_main_state").state == "running"
    assert _controls(entity_registry, "web") == ["switch.web_running", "button.web_restart"]

    # Renamed into the pattern: the old name is a vanished container, the new one protected.
    podman.rename("web", "db-web")
    await wait_for_state(hass, "sensor.db_web_state", "running")
    assert hass.states.get("switch.web_running").state == STATE_UNAVAILABLE
    assert _controls(entity_registry, "db-web") == []

    # A temporary name, then renamed: no controls under either name.
    new_id = podman.compose_recreate("db-main")
    containers = pattern_entry.runtime_data.parts["containers"]
    await wait_until(lambda: containers.containers["db-main"].id == new_id)
    await wait_for_state(hass, "sensor.db_main_state", "running")
    assert _controls(entity_registry, "db-main") == []
    assert _controls(entity_registry, f"{old_id[:12]}_db-main") == []

    # Past the grace period the vanished names are gone entirely.
    await refresh_containers(hass, pattern_entry, timedelta(days=2))
    assert _controls(entity_registry, "web") == []
    assert hass.states.get(f"sensor.{old_id[:12]}_db_main_state") is None
    assert podman.inspect("db-web")["State"]["Running"]
    assert podman.inspect("db-main")["State"]["Running"]


async def test_a_container_protected_meanwhile_is_refused_then_loses_its_controls(
    hass: HomeAssistant,
    podman: PodmanEngine,
    container_worker: ContainerWorker,
    containers_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    hass_admin_user: MockUser,
) -> None:
    """Recreated with the label while Home Assistant still shows its restart button: the press
    is refused with the translated error and audited, its controls go, and come back without
    the label."""
    podman.run("vault", **QUICK)
    await setup_entry(hass, containers_entry, "vault")
    assert _controls(entity_registry, "vault") == list(CONTROLS_OF_VAULT)
    actions = async_capture_events(hass, EVENT_CONTAINER_ACTION)

    # Blocking, so Home Assistant hears of it only after the press below has started.
    protected_id = podman.recreate("vault", labels=PROTECTED, **QUICK)
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            "button",
            "press",
            {ATTR_ENTITY_ID: "button.vault_restart"},
            blocking=True,
            context=Context(user_id=hass_admin_user.id),
        )
    assert caught.value.translation_key == "container_protected"
    assert str(caught.value) == "vault is protected: Hydra never starts, stops or restarts it"
    assert podman.inspect("vault")["Id"] == protected_id
    started = podman.inspect("vault")["State"]["StartedAt"]

    client = HydraClient(
        async_get_clientsession(hass), container_worker.url, container_worker.token
    )
    [entry] = await client.async_audit(container="vault")
    assert (entry.action, entry.result, entry.detail) == ("restart", "refused", "protected")
    assert (entry.actor.type, entry.actor.id, entry.actor.name) == (
        "user",
        hass_admin_user.id,
        hass_admin_user.name,
    )
    await wait_until(lambda: len(actions) == 1)
    assert actions[0].data["result"] == "refused"
    assert actions[0].data["actor_name"] == hass_admin_user.name

    await wait_until(lambda: _controls(entity_registry, "vault") == [])
    assert hass.states.get("button.vault_restart") is None
    assert hass.states.get("sensor.vault_state").state == "running"
    assert podman.inspect("vault")["State"]["StartedAt"] == started

    podman.recreate("vault", labels={}, **QUICK)
    await wait_until(lambda: _controls(entity_registry, "vault") == list(CONTROLS_OF_VAULT))
    await wait_for_state(hass, "switch.vault_running", "on")
