"""What Home Assistant asks of the worker's task queue: queue, cancel, retry, and how to say it.

The to-do list and the actions share these, so a task is queued and its mistakes are reported
the same way whichever way the user went.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from homeassistant.core import Context

from hydra_core.scheduler.models import SchedulerState, Task

from ...entity import async_actor
from ...helpers import async_worker_request
from .coordinator import HydraTaskCoordinator

# The kind that removes old outputs (unless it is a dry run).
MAINTENANCE_KIND = "maintenance"
# The kinds that remove files, each with what its payload's dry_run defaults to.
REMOVING_KINDS = {MAINTENANCE_KIND: False, "prune": True}
# What the user reads when the worker fails a request to its queue.
FAILED_KEY = "task_request_failed"


async def async_task_request[R](coordinator: HydraTaskCoordinator, request: Awaitable[R]) -> R:
    """The worker's answer to a request to its queue, or the error the user reads."""
    return await async_worker_request(coordinator, request, failed_key=FAILED_KEY)


async def _async_request(coordinator: HydraTaskCoordinator, request: Awaitable[Task]) -> Task:
    """Send a request; show the answer at once, and poll too while nothing is pushed."""
    task = await async_task_request(coordinator, request)
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
    """Queue a task on behalf of the user or automation of ``context``; a maintenance task or
    a prune that removes files is an administrator's to ask for."""
    removes_files = kind in REMOVING_KINDS and not payload.get("dry_run", REMOVING_KINDS[kind])
    actor = await async_actor(coordinator.hass, context, admin="delete" if removes_files else None)
    return await _async_request(
        coordinator,
        coordinator.api.async_queue_task(kind, payload, actor=actor, priority=priority),
    )


async def async_cancel_task(coordinator: HydraTaskCoordinator, task_id: int) -> Task:
    """Cancel a task that has not finished."""
    return await _async_request(coordinator, coordinator.api.async_cancel_task(task_id))


async def async_retry_task(coordinator: HydraTaskCoordinator, task_id: int) -> Task:
    """Queue a failed or cancelled task again."""
    return await _async_request(coordinator, coordinator.api.async_retry_task(task_id))


async def async_update_scheduler(
    coordinator: HydraTaskCoordinator, context: Context | None, **changes: float | bool
) -> SchedulerState:
    """Change the queue's settings (an administrator's to change); show them at once."""
    await async_actor(coordinator.hass, context, admin="queue")
    scheduler = await async_task_request(
        coordinator, coordinator.api.async_update_scheduler(**changes)
    )
    coordinator.async_apply_scheduler(scheduler)
    return scheduler


async def async_set_paused(
    coordinator: HydraTaskCoordinator, context: Context | None, *, paused: bool
) -> SchedulerState:
    """Pause or resume autonomous work (running tasks finish either way)."""
    return await async_update_scheduler(coordinator, context, paused=paused)


def tasks_waiting(scheduler: SchedulerState) -> int:
    """Tasks that wait to start: queued, or waiting for the GPUs to have room."""
    return scheduler.counts.get("queued", 0) + scheduler.counts.get("waiting", 0)
