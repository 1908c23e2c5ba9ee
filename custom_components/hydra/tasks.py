"""What Home Assistant asks of the worker's task queue: queue, cancel, retry, and how to say it.

The to-do list and the actions share these, so a task is queued and its mistakes are reported
the same way whichever way the user went.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from homeassistant.core import Context
from homeassistant.exceptions import HomeAssistantError

from hydra_core.client import HydraError
from hydra_core.models import SchedulerState, Task

from .coordinator import HydraTaskCoordinator
from .entity import async_actor, refusal_error

# What the worker refuses because of what the user asked, by its error code.
_USER_MISTAKES = frozenset(
    {
        "unknown_kind",
        "invalid_payload",
        "invalid_priority",
        "invalid_body",
        "invalid_task_id",
        "invalid_setting",
        "task_not_found",
        "task_finished",
        "task_not_retryable",
    }
)


def task_error(coordinator: HydraTaskCoordinator, err: HydraError) -> HomeAssistantError:
    """The user's mistake (ServiceValidationError), or the worker's failure."""
    return refusal_error(
        coordinator, err, mistakes=_USER_MISTAKES, failed_key="task_request_failed"
    )


async def _async_request(
    coordinator: HydraTaskCoordinator, request: Callable[[], Awaitable[Task]]
) -> Task:
    """Send a request; show the answer at once, and poll too while nothing is pushed."""
    try:
        task = await request()
    except HydraError as err:
        raise task_error(coordinator, err) from err
    coordinator.async_apply_task(task)
    if not coordinator.pushed:
        await coordinator.async_request_refresh()
    return task


async def async_queue_task(
    coordinator: HydraTaskCoordinator,
    kind: str,
    payload: dict[str, Any],
    context: Context | None,
    priority: int | None = None,
) -> Task:
    """Queue a task on behalf of the user or automation of ``context``."""
    actor = await async_actor(coordinator.hass, context)
    return await _async_request(
        coordinator,
        lambda: coordinator.client.async_queue_task(kind, payload, actor=actor, priority=priority),
    )


async def async_cancel_task(coordinator: HydraTaskCoordinator, task_id: int) -> Task:
    """Cancel a task that has not finished."""
    return await _async_request(coordinator, lambda: coordinator.client.async_cancel_task(task_id))


async def async_retry_task(coordinator: HydraTaskCoordinator, task_id: int) -> Task:
    """Queue a failed or cancelled task again."""
    return await _async_request(coordinator, lambda: coordinator.client.async_retry_task(task_id))


async def async_set_paused(coordinator: HydraTaskCoordinator, *, paused: bool) -> SchedulerState:
    """Pause or resume autonomous work (running tasks finish either way); show it at once."""
    try:
        scheduler = await coordinator.client.async_update_scheduler(paused=paused)
    except HydraError as err:
        raise task_error(coordinator, err) from err
    coordinator.async_apply_scheduler(scheduler)
    return scheduler


def tasks_waiting(scheduler: SchedulerState) -> int:
    """Tasks that wait to start: queued, or waiting for the GPUs to have room."""
    return scheduler.counts.get("queued", 0) + scheduler.counts.get("waiting", 0)


def task_summary(task: Task) -> str:
    """A task in a few words: its kind and payload."""
    if not task.payload:
        return task.kind
    fields = ", ".join(f"{key}={value}" for key, value in task.payload.items())
    return f"{task.kind} ({fields})"


def task_description(task: Task) -> str:
    """Where a task stands: its state, progress, why it waits, or its error."""
    lines = [f"#{task.id}: {task.state}, attempt {task.attempts} of {task.max_attempts}"]
    if task.state == "running":
        progress = f"{task.progress:.0f} %"
        if task.progress_message:
            progress += f": {task.progress_message}"
        lines.append(progress)
    if task.waiting_reason:
        lines.append(task.waiting_reason)
    if task.error:
        lines.append(f"Error: {task.error}")
    return "\n".join(lines)
