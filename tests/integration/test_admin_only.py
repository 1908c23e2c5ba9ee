"""Who may do what: a real Home Assistant user who is not an administrator (in HA's own "Users"
group, allowed to control entities) cannot change the GPUs' power, the queue's settings or have
Hydra remove files, by action, entity or Assist; the refusal is translated and nothing changes
on the worker. An administrator and automations (no user) still can."""

from __future__ import annotations

from homeassistant.auth.const import GROUP_ID_USER
from homeassistant.auth.models import User
from homeassistant.components import conversation
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import Unauthorized
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser

from custom_components.hydra.const import DOMAIN
from hydra_core.client import HydraClient
from hydra_core.containers.client import ContainersClient
from hydra_core.scheduler import TaskQuery
from tests.fake_nvml import FakeNvml
from tests.podman import PodmanEngine

from .conftest import ContainerWorker, PowerWorker, TaskWorker, entry_for, setup_entry

POWER_SELECT = "select.gpubox_power_profile"
AUTONOMOUS = "switch.gpubox_autonomous_work"
MAX_CONCURRENT = "number.gpubox_max_concurrent_tasks"


@pytest.fixture
async def member(hass: HomeAssistant, hass_owner_user: MockUser) -> User:
    """A household member: a real user in Home Assistant's "Users" group, not an admin (the
    owner exists first, as the first user made is the owner)."""
    user = await hass.auth.async_create_user("Bob", group_ids=[GROUP_ID_USER])
    assert not user.is_admin
    return user


def _limits(nvml: FakeNvml) -> list[float]:
    return [gpu.limit_mw / 1000 for gpu in nvml.gpus]


async def test_power_is_an_administrators_to_change(
    hass: HomeAssistant,
    power_worker: PowerWorker,
    nvml: FakeNvml,
    member: User,
    hass_admin_user: MockUser,
) -> None:
    await setup_entry(hass, entry_for(power_worker))
    before = _limits(nvml)

    with pytest.raises(Unauthorized) as caught:
        await hass.services.async_call(
            DOMAIN,
            "set_power_profile",
            {"profile": "eco"},
            blocking=True,
            context=Context(user_id=member.id),
        )
    assert caught.value.translation_key == "admin_power"
    assert str(caught.value) == "Only a Home Assistant administrator can change the GPUs' power"
    with pytest.raises(Unauthorized, match="administrator"):
        await hass.services.async_call(
            "select",
            "select_option",
            {ATTR_ENTITY_ID: POWER_SELECT, "option": "eco"},
            blocking=True,
            context=Context(user_id=member.id),
        )
    assert _limits(nvml) == before

    await hass.services.async_call(
        "select",
        "select_option",
        {ATTR_ENTITY_ID: POWER_SELECT, "option": "eco"},
        blocking=True,
        context=Context(user_id=hass_admin_user.id),
    )
    assert _limits(nvml) != before
    # An automation (no user) acts as the administrator who wrote it.
    await hass.services.async_call(DOMAIN, "set_power_profile", {"profile": "full"}, blocking=True)
    assert _limits(nvml) == before


async def test_queue_settings_are_an_administrators_to_change(
    hass: HomeAssistant, task_worker: TaskWorker, tasks_entry: MockConfigEntry, member: User
) -> None:
    # Assist first, as in Home Assistant: Hydra's sentences join the default agent's.
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "conversation", {})
    await setup_entry(hass, tasks_entry)
    assert task_worker.scheduler is not None
    settings = task_worker.scheduler.settings

    with pytest.raises(Unauthorized, match="task queue's settings"):
        await hass.services.async_call(
            "switch",
            "turn_off",
            {ATTR_ENTITY_ID: AUTONOMOUS},
            blocking=True,
            context=Context(user_id=member.id),
        )
    with pytest.raises(Unauthorized, match="task queue's settings"):
        await hass.services.async_call(
            "number",
            "set_value",
            {ATTR_ENTITY_ID: MAX_CONCURRENT, "value": 9},
            blocking=True,
            context=Context(user_id=member.id),
        )
    assert task_worker.scheduler.settings == settings

    # Assist says no to the same person, and the queue stays as it was.
    result = await conversation.async_converse(
        hass, "pause autonomous work", None, Context(user_id=member.id), language="en"
    )
    speech = result.response.speech["plain"]["speech"]
    assert "administrator" in speech
    assert not task_worker.scheduler.settings.paused


async def test_removing_files_is_an_administrators_to_ask(
    hass: HomeAssistant,
    task_worker: TaskWorker,
    tasks_entry: MockConfigEntry,
    member: User,
    hass_admin_user: MockUser,
) -> None:
    await setup_entry(hass, tasks_entry)
    assert task_worker.scheduler is not None

    async def maintenance(user_id: str, **payload: object) -> object:
        return await hass.services.async_call(
            DOMAIN,
            "queue_task",
            {"kind": "maintenance", "payload": payload},
            blocking=True,
            return_response=True,
            context=Context(user_id=user_id),
        )

    with pytest.raises(Unauthorized) as caught:
        await maintenance(member.id, retention_days=1)
    assert caught.value.translation_key == "admin_delete"
    assert await task_worker.scheduler.async_list(TaskQuery(kind="maintenance")) == []

    # A dry run removes nothing: anyone may ask for one.
    assert await maintenance(member.id, dry_run=True) is not None
    await maintenance(hass_admin_user.id, retention_days=1)
    queued = await task_worker.scheduler.async_list(TaskQuery(kind="maintenance"))
    assert sorted(task.payload["dry_run"] for task in queued) == [False, True]
    assert {task.actor.name for task in queued} == {"Bob", hass_admin_user.name}


async def test_containers_are_an_administrators_to_control(
    hass: HomeAssistant,
    podman: PodmanEngine,
    container_worker: ContainerWorker,
    containers_entry: MockConfigEntry,
    member: User,
) -> None:
    podman.run("web", init=True)
    await setup_entry(hass, containers_entry, "web")
    started = podman.inspect("web")["State"]["StartedAt"]

    for domain, service, entity_id in (
        ("button", "press", "button.web_restart"),
        ("switch", "turn_off", "switch.web_running"),
        ("switch", "turn_on", "switch.gpubox_self_healing"),
    ):
        with pytest.raises(Unauthorized, match="start, stop or restart containers"):
            await hass.services.async_call(
                domain,
                service,
                {ATTR_ENTITY_ID: entity_id},
                blocking=True,
                context=Context(user_id=member.id),
            )
    state = podman.inspect("web")["State"]
    assert (state["Running"], state["StartedAt"]) == (True, started)
    client = HydraClient(
        async_get_clientsession(hass), container_worker.url, container_worker.token
    )
    assert not (await ContainersClient(client).async_containers()).healing.enabled
