"""Task options: the to-do list's kind, and notifications sent through Home Assistant's notify
integration (a notify entity and a legacy notify service, both real, recording what they get)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from homeassistant.components.notify import (
    ATTR_TITLE,
    DOMAIN as NOTIFY_DOMAIN,
    BaseNotificationService,
    NotifyEntity,
)
from homeassistant.components.todo import DOMAIN as TODO_DOMAIN
from homeassistant.config_entries import ConfigEntry, ConfigFlow
from homeassistant.const import ATTR_ENTITY_ID, Platform
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockModule,
    MockPlatform,
    mock_config_flow,
    mock_integration,
    mock_platform,
    setup_test_component_platform,
)

from custom_components.hydra.const import (
    CONF_DEFAULT_KIND,
    CONF_NOTIFY_FAILURE,
    CONF_NOTIFY_SUCCESS,
    CONF_NOTIFY_TARGETS,
    CONF_SCAN_INTERVAL,
    DOMAIN,
)

from .conftest import TaskWorker, setup_entry, wait_for_state, wait_until

PHONE = "notify.phone"
DESK = "notify.desk"

type Sent = list[tuple[str, str, str | None]]


class RecordingNotifyEntity(NotifyEntity):
    """A notify entity that keeps what it was sent."""

    _attr_name = "Desk"

    def __init__(self, sent: Sent) -> None:
        self._sent = sent

    async def async_send_message(self, message: str, title: str | None = None) -> None:
        """Record the message."""
        self._sent.append((DESK, message, title))


class RecordingNotificationService(BaseNotificationService):
    """A legacy notify service (as mobile_app registers) that keeps what it was sent."""

    def __init__(self, sent: Sent) -> None:
        self._sent = sent

    async def async_send_message(self, message: str = "", **kwargs: Any) -> None:
        """Record the message."""
        self._sent.append((PHONE, message, kwargs.get(ATTR_TITLE)))


@pytest.fixture
async def sent(hass: HomeAssistant) -> AsyncIterator[Sent]:
    """Home Assistant's notify integration with notify.desk (an entity) and notify.phone."""
    messages: Sent = []

    async def get_service(*_args: Any) -> RecordingNotificationService:
        return RecordingNotificationService(messages)

    legacy = MockPlatform()
    legacy.async_get_service = get_service
    mock_platform(hass, "recording_phone.notify", legacy)
    assert await async_setup_component(
        hass, NOTIFY_DOMAIN, {NOTIFY_DOMAIN: [{"platform": "recording_phone", "name": "phone"}]}
    )

    async def setup_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
        await hass.config_entries.async_forward_entry_setups(entry, [Platform.NOTIFY])
        return True

    mock_integration(hass, MockModule("test", async_setup_entry=setup_entry))
    mock_platform(hass, "test.config_flow")
    setup_test_component_platform(
        hass, NOTIFY_DOMAIN, [RecordingNotifyEntity(messages)], from_config_entry=True
    )
    with mock_config_flow("test", ConfigFlow):
        entry = MockConfigEntry(domain="test")
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        assert hass.services.has_service(NOTIFY_DOMAIN, "phone")
        assert hass.states.get(DESK) is not None
        yield messages


async def _queue_test_task(hass: HomeAssistant, **payload: Any) -> dict[str, Any]:
    """Queue a ``test`` task through the action, as a user would; its answer."""
    data: dict[str, Any] = {"kind": "test"}
    if payload:
        data["payload"] = payload
    response = await hass.services.async_call(
        DOMAIN, "queue_task", data, blocking=True, return_response=True
    )
    assert response is not None
    return dict(response)


async def _set_options(hass: HomeAssistant, entry: MockConfigEntry, **changes: Any) -> None:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    options = {
        CONF_SCAN_INTERVAL: 30,
        CONF_DEFAULT_KIND: "maintenance",
        CONF_NOTIFY_TARGETS: [],
        CONF_NOTIFY_FAILURE: True,
        CONF_NOTIFY_SUCCESS: False,
        **changes,
    }
    result = await hass.config_entries.options.async_configure(result["flow_id"], options)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


async def test_options_offer_kinds_and_notify_targets(
    hass: HomeAssistant, sent: Sent, tasks_entry: MockConfigEntry
) -> None:
    """The form lists the worker's kinds and every notify entity and service."""
    await setup_entry(hass, tasks_entry)
    result = await hass.config_entries.options.async_init(tasks_entry.entry_id)
    schema = result["data_schema"].schema
    assert [str(key) for key in schema] == [
        CONF_SCAN_INTERVAL,
        CONF_DEFAULT_KIND,
        CONF_NOTIFY_TARGETS,
        CONF_NOTIFY_FAILURE,
        CONF_NOTIFY_SUCCESS,
        "presence",
        "bedtime",
        "briefing",
    ]
    assert schema[CONF_DEFAULT_KIND].config["options"] == ["maintenance", "test"]
    assert schema[CONF_NOTIFY_TARGETS].config["options"] == [DESK, PHONE]
    hass.config_entries.options.async_abort(result["flow_id"])

    await _set_options(hass, tasks_entry, notify_targets=["notify.gone"])
    result = await hass.config_entries.options.async_init(tasks_entry.entry_id)
    # A target chosen earlier stays choosable, even while it does not exist.
    assert "notify.gone" in result["data_schema"].schema[CONF_NOTIFY_TARGETS].config["options"]
    hass.config_entries.options.async_abort(result["flow_id"])


async def test_todo_items_queue_the_chosen_kind(
    hass: HomeAssistant, task_worker: TaskWorker, tasks_entry: MockConfigEntry
) -> None:
    """The options choose what a new to-do item queues."""
    await setup_entry(hass, tasks_entry)
    await _set_options(hass, tasks_entry, default_kind="test")
    await hass.services.async_call(
        TODO_DOMAIN,
        "add_item",
        {"item": "Something"},
        target={ATTR_ENTITY_ID: "todo.gpubox_hydra_queue"},
        blocking=True,
    )
    await wait_for_state(hass, "sensor.gpubox_tasks_succeeded_today", "1", within=3)
    [task] = tasks_entry.runtime_data.parts["tasks"].data.tasks
    assert task.kind == "test"
    assert (await task_worker.scheduler.async_get(task.id)).kind == "test"


async def test_failure_and_success_notify_the_chosen_targets(
    hass: HomeAssistant, sent: Sent, tasks_entry: MockConfigEntry
) -> None:
    """A failed task sends a short message to each target; success only when asked for."""
    await setup_entry(hass, tasks_entry)
    await _set_options(hass, tasks_entry, notify_targets=[DESK, PHONE])
    failed = await _queue_test_task(hass, outcome="fail")
    await _queue_test_task(hass)
    await wait_until(lambda: len(sent) == 2)
    await hass.async_block_till_done()
    task_id = failed["task_id"]
    message = (
        f"test (outcome=fail, hold=False) (task {task_id}) failed on gpubox: "
        "the test asked this task to fail"
    )
    assert sorted(sent) == [
        (DESK, message, "Hydra task failed"),
        (PHONE, message, "Hydra task failed"),
    ]

    sent.clear()
    await _set_options(
        hass, tasks_entry, notify_targets=["phone"], notify_failure=False, notify_success=True
    )
    succeeded = await _queue_test_task(hass)
    await _queue_test_task(hass, outcome="fail")
    await wait_until(lambda: len(sent) == 1)
    await wait_for_state(hass, "sensor.gpubox_tasks_failed_today", "2", within=3)
    await hass.async_block_till_done()
    assert sent == [
        (
            PHONE,
            f"test (outcome=succeed, hold=False) (task {succeeded['task_id']}) succeeded on gpubox",
            "Hydra task succeeded",
        )
    ]


async def test_a_missing_target_is_logged_not_raised(
    hass: HomeAssistant,
    sent: Sent,
    tasks_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A target that no longer exists does not stop the others."""
    await setup_entry(hass, tasks_entry)
    await _set_options(hass, tasks_entry, notify_targets=["notify.gone", PHONE])
    await _queue_test_task(hass, outcome="fail")
    await wait_until(lambda: len(sent) == 1)
    await hass.async_block_till_done()
    assert "Could not notify notify.gone about a Hydra task" in caplog.text
