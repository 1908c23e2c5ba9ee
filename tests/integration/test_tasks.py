"""The task queue in Home Assistant, against a real worker with a real scheduler and queue."""

from __future__ import annotations

from typing import Any

from homeassistant.components.todo import DOMAIN as TODO_DOMAIN, TodoItemStatus
from homeassistant.const import ATTR_ENTITY_ID, STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.hydra.const import (
    DOMAIN,
    EVENT_TASK_FAILED,
    EVENT_TASK_STARTED,
    EVENT_TASK_SUCCEEDED,
)
from hydra_core.models import Actor

from .conftest import WORKER_ID, TaskWorker, setup_entry, wait_for_state, wait_until

QUEUE = "todo.gpubox_hydra_queue"
AUTONOMOUS = "switch.gpubox_autonomous_work"
QUEUED = "sensor.gpubox_queued_tasks"
RUNNING = "sensor.gpubox_running_tasks"
SUCCEEDED = "sensor.gpubox_tasks_succeeded_today"
FAILED = "sensor.gpubox_tasks_failed_today"
# The debounced poll of today's counts runs within a second of a change.
COUNTS_DEADLINE_S = 3.0


async def _items(hass: HomeAssistant) -> list[dict[str, Any]]:
    response = await hass.services.async_call(
        TODO_DOMAIN,
        "get_items",
        target={ATTR_ENTITY_ID: QUEUE},
        blocking=True,
        return_response=True,
    )
    return response[QUEUE]["items"]


async def _queue(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    return await hass.services.async_call(
        DOMAIN, "queue_task", data, blocking=True, return_response=True
    )


async def _todo(hass: HomeAssistant, service: str, **data: Any) -> None:
    """Call a to-do list action on the queue, as the to-do card does."""
    await hass.services.async_call(
        TODO_DOMAIN, service, data, target={ATTR_ENTITY_ID: QUEUE}, blocking=True
    )


async def _worker_task_state(worker: TaskWorker, task_id: int) -> str:
    assert worker.scheduler is not None
    return (await worker.scheduler.async_get(task_id)).state


async def _pause(hass: HomeAssistant) -> None:
    await hass.services.async_call(
        "switch", "turn_off", {ATTR_ENTITY_ID: AUTONOMOUS}, blocking=True
    )


async def test_queue_entities_on_the_worker_device(
    hass: HomeAssistant,
    tasks_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    """The queue, its counts, the autonomous-work switch and the gate's numbers."""
    await setup_entry(hass, tasks_entry)
    worker = device_registry.async_get_device_by_identifier(
        (DOMAIN, WORKER_ID), tasks_entry.entry_id
    )
    for entity_id in (QUEUE, AUTONOMOUS, QUEUED, SUCCEEDED, "number.gpubox_max_concurrent_tasks"):
        assert entity_registry.async_get(entity_id).device_id == worker.id
    assert hass.states.get(QUEUE).state == "0"
    assert hass.states.get(QUEUE).attributes["friendly_name"] == "gpubox Hydra queue"
    assert hass.states.get(AUTONOMOUS).state == STATE_ON
    assert hass.states.get(QUEUED).state == "0"
    assert hass.states.get(FAILED).attributes["state_class"] == "total"
    # The seed's defaults: 50 %, 4 GB, 30 s, 3 at once.
    assert hass.states.get("number.gpubox_max_gpu_utilization").state == "50.0"
    assert hass.states.get("number.gpubox_min_free_vram").state == "4.0"
    assert hass.states.get("number.gpubox_resource_check_interval").state == "30.0"
    assert hass.states.get("number.gpubox_max_concurrent_tasks").state == "3"
    assert entity_registry.async_get("number.gpubox_max_concurrent_tasks").entity_category == (
        "config"
    )


async def test_no_task_queue_no_task_entities(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """A worker without a scheduler: no queue entities, and the actions say why."""
    assert "tasks" not in init_integration.runtime_data.parts
    assert hass.states.get(QUEUE) is None
    assert hass.states.get(AUTONOMOUS) is None
    with pytest.raises(ServiceValidationError) as err:
        await _queue(hass, kind="maintenance")
    assert err.value.translation_key == "scheduler_disabled"


async def test_todo_lists_adds_and_cancels(
    hass: HomeAssistant, task_worker: TaskWorker, tasks_entry: MockConfigEntry
) -> None:
    """Adding an item queues the default kind; completing or deleting an item cancels it."""
    await setup_entry(hass, tasks_entry)
    await _pause(hass)
    assert task_worker.scheduler.settings.paused

    await _todo(hass, "add_item", item="Tidy up")
    await _todo(hass, "add_item", item="test")
    await wait_for_state(hass, QUEUE, "2")
    first, second = await _items(hass)
    assert first["summary"] == "maintenance (retention_days=30, dry_run=False)"
    assert first["status"] == TodoItemStatus.NEEDS_ACTION
    assert first["description"].startswith(f"#{first['uid']}: queued")
    # An item that names a kind the worker accepts queues that kind.
    assert second["summary"] == "test (outcome=succeed, hold=False)"
    await wait_for_state(hass, QUEUED, "2", within=COUNTS_DEADLINE_S)

    await _todo(hass, "update_item", item=first["uid"], status="completed")
    assert await _worker_task_state(task_worker, int(first["uid"])) == "cancelled"
    await _todo(hass, "remove_item", item=[second["uid"]])
    assert await _worker_task_state(task_worker, int(second["uid"])) == "cancelled"
    await wait_for_state(hass, QUEUE, "0")
    items = await _items(hass)
    assert {item["status"] for item in items} == {TodoItemStatus.COMPLETED}
    # A finished task stays in the worker's history: removing its item changes nothing.
    await _todo(hass, "remove_completed_items")
    assert len(await _items(hass)) == 2
    await wait_for_state(hass, QUEUED, "0", within=COUNTS_DEADLINE_S)

    # Re-opening a cancelled item retries its task.
    await _todo(hass, "update_item", item=first["uid"], status="needs_action")
    assert await _worker_task_state(task_worker, int(first["uid"])) == "queued"


async def test_switch_and_numbers_change_the_scheduler(
    hass: HomeAssistant, task_worker: TaskWorker, tasks_entry: MockConfigEntry
) -> None:
    """The switch pauses and resumes the queue; the numbers set the gate; the worker's own
    changes come back pushed."""
    await setup_entry(hass, tasks_entry)
    scheduler = task_worker.scheduler
    await _pause(hass)
    assert scheduler.settings.paused
    assert hass.states.get(AUTONOMOUS).state == STATE_OFF
    await hass.services.async_call("switch", "turn_on", {ATTR_ENTITY_ID: AUTONOMOUS}, blocking=True)
    assert not scheduler.settings.paused

    for entity, value in (
        ("max_gpu_utilization", 80),
        ("min_free_vram", 8.5),
        ("resource_check_interval", 10),
        ("max_concurrent_tasks", 5),
    ):
        await hass.services.async_call(
            "number",
            "set_value",
            {ATTR_ENTITY_ID: f"number.gpubox_{entity}", "value": value},
            blocking=True,
        )
    settings = scheduler.settings
    assert (settings.max_gpu_utilization, settings.min_free_vram_gb) == (80, 8.5)
    assert (settings.poll_interval_s, settings.max_concurrent) == (10, 5)
    assert isinstance(settings.max_concurrent, int)
    assert hass.states.get("number.gpubox_max_concurrent_tasks").state == "5"

    await scheduler.async_update_settings(paused=True, max_gpu_utilization=25)
    await wait_for_state(hass, AUTONOMOUS, STATE_OFF)
    # A percentage is a float on the wire, whether it was set as 25 or 25.0.
    await wait_for_state(hass, "number.gpubox_max_gpu_utilization", "25.0")


async def test_actions_queue_cancel_retry(
    hass: HomeAssistant, task_worker: TaskWorker, tasks_entry: MockConfigEntry
) -> None:
    """queue_task answers with the task id; cancel and retry act on it; counts follow."""
    await setup_entry(hass, tasks_entry)
    response = await _queue(
        hass,
        config_entry_id=tasks_entry.entry_id,
        kind="test",
        payload={"hold": True},
        priority=70,
    )
    task_id = response["task_id"]
    task = await task_worker.scheduler.async_get(task_id)
    assert (task.kind, task.priority, task.payload["hold"]) == ("test", 70, True)
    assert task.actor.type == "automation"
    await wait_for_state(hass, RUNNING, "1", within=COUNTS_DEADLINE_S)
    coordinator = tasks_entry.runtime_data.parts["tasks"]
    await wait_until(lambda: coordinator.tasks[task_id].progress == 10)
    items = await _items(hass)
    assert items[0]["description"] == f"#{task_id}: running, attempt 1 of 1\n10 %: started"

    cancelled = await hass.services.async_call(
        DOMAIN, "cancel_task", {"task_id": task_id}, blocking=True, return_response=True
    )
    assert cancelled == {"task_id": task_id, "state": "cancelled"}
    await wait_for_state(hass, RUNNING, "0", within=COUNTS_DEADLINE_S)

    retried = await hass.services.async_call(
        DOMAIN, "retry_task", {"task_id": task_id}, blocking=True, return_response=True
    )
    assert retried["state"] == "queued"
    task_worker.handler.release.set()
    await wait_for_state(hass, SUCCEEDED, "1", within=COUNTS_DEADLINE_S)
    assert await _worker_task_state(task_worker, task_id) == "succeeded"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"kind": "research"}, "unknown_kind"),
        ({"kind": "maintenance", "payload": {"retention_days": -1}}, "invalid_payload"),
        ({"kind": "maintenance", "payload": {"colour": "red"}}, "invalid_payload"),
        ({"kind": "maintenance", "priority": -1}, "invalid_priority"),
    ],
)
async def test_queue_task_refuses_bad_input(
    hass: HomeAssistant,
    task_worker: TaskWorker,
    tasks_entry: MockConfigEntry,
    data: dict[str, Any],
    key: str,
) -> None:
    """Unknown kind, payload failing its schema, negative priority: a clear error, no task."""
    await setup_entry(hass, tasks_entry)
    with pytest.raises(ServiceValidationError) as err:
        await _queue(hass, **data)
    assert err.value.translation_key == key
    assert str(err.value)
    assert await task_worker.scheduler.async_counts() == dict.fromkeys(
        ("queued", "waiting", "running", "succeeded", "failed", "cancelled"), 0
    )


async def test_cancel_and_retry_refuse_what_cannot_be_done(
    hass: HomeAssistant, task_worker: TaskWorker, tasks_entry: MockConfigEntry
) -> None:
    """Cancelling a finished task, retrying a queued one or naming no task: clear errors."""
    await setup_entry(hass, tasks_entry)
    await _pause(hass)
    task = await task_worker.scheduler.async_enqueue("test", {}, actor=Actor(type="api"))
    await task_worker.scheduler.async_cancel(task.id)
    for service, task_id, key in (
        ("cancel_task", task.id, "task_finished"),
        ("cancel_task", 999, "task_not_found"),
    ):
        with pytest.raises(ServiceValidationError) as err:
            await hass.services.async_call(DOMAIN, service, {"task_id": task_id}, blocking=True)
        assert err.value.translation_key == key
    await task_worker.scheduler.async_retry(task.id)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "retry_task", {"task_id": task.id}, blocking=True)
    assert err.value.translation_key == "task_not_retryable"
    assert await _worker_task_state(task_worker, task.id) == "queued"


async def test_worker_down_is_a_runtime_error(
    hass: HomeAssistant, task_worker: TaskWorker, tasks_entry: MockConfigEntry
) -> None:
    """An unreachable worker is not the user's mistake; the entities go unavailable."""
    await setup_entry(hass, tasks_entry)
    await task_worker.stop()
    with pytest.raises(HomeAssistantError) as err:
        await _queue(hass, kind="maintenance")
    assert not isinstance(err.value, ServiceValidationError)
    assert err.value.translation_key == "cannot_connect"
    await tasks_entry.runtime_data.parts["tasks"].async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get(QUEUED).state == STATE_UNAVAILABLE
    await task_worker.start()
    await tasks_entry.runtime_data.parts["tasks"].async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get(QUEUED).state == "0"


async def test_task_events_fire(
    hass: HomeAssistant, task_worker: TaskWorker, tasks_entry: MockConfigEntry
) -> None:
    """hydra_task_started, _succeeded and _failed carry the task, for automations."""
    await setup_entry(hass, tasks_entry)
    started = async_capture_events(hass, EVENT_TASK_STARTED)
    succeeded = async_capture_events(hass, EVENT_TASK_SUCCEEDED)
    failed = async_capture_events(hass, EVENT_TASK_FAILED)
    good = (await _queue(hass, kind="maintenance", payload={"dry_run": True}))["task_id"]
    bad = (await _queue(hass, kind="test", payload={"outcome": "fail"}))["task_id"]
    await wait_until(lambda: len(succeeded) == 1 and len(failed) == 1)
    assert {event.data["task_id"] for event in started} == {good, bad}
    success = succeeded[0].data
    assert (success["task_id"], success["kind"], success["state"]) == (
        good,
        "maintenance",
        "succeeded",
    )
    assert success["entry_id"] == tasks_entry.entry_id
    assert success["result"]["dry_run"] is True
    failure = failed[0].data
    assert (failure["task_id"], failure["state"]) == (bad, "failed")
    assert failure["error"] == "the test asked this task to fail"
    assert failure["actor"]["type"] == "automation"
    await wait_for_state(hass, FAILED, "1", within=COUNTS_DEADLINE_S)
    await wait_for_state(hass, SUCCEEDED, "1", within=COUNTS_DEADLINE_S)


async def test_diagnostics_include_the_queue_without_payloads(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    tasks_entry: MockConfigEntry,
) -> None:
    """Support sees the scheduler and recent tasks; what users typed into payloads stays out."""
    await setup_entry(hass, tasks_entry)
    await _pause(hass)
    # A number no host figure contains (the host's memory in bytes once held "12345").
    response = await _queue(hass, kind="maintenance", payload={"retention_days": 1234.56789})
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, tasks_entry)
    queue = diagnostics["tasks"]
    assert queue["scheduler"]["settings"]["paused"] is True
    assert {
        "id": response["task_id"],
        "kind": "maintenance",
        "state": "queued",
        "error": None,
    } in queue["recent"]
    assert "1234.56789" not in str(diagnostics)
