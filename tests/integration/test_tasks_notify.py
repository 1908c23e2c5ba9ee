"""Task options: the to-do list's kind, and notifications sent through Home Assistant's notify
integration (a notify entity and a legacy notify service, both real, recording what they get)."""

from __future__ import annotations

from typing import Any

from homeassistant.components.todo import DOMAIN as TODO_DOMAIN
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
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
from .notify import DESK, Sent, async_setup_recording_notify

PHONE = "notify.phone"


@pytest.fixture
async def sent(hass: HomeAssistant) -> Sent:
    """Home Assistant's notify integration with notify.desk (an entity) and notify.phone."""
    return await async_setup_recording_notify(hass, {"phone": False})


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
        (DESK, message, "Hydra task failed", None),
        (PHONE, message, "Hydra task failed", None),
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
            None,
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
