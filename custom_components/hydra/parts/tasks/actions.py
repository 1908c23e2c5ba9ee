"""Actions: queue, cancel and retry tasks on a worker's queue; each answers with the task."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

from homeassistant.core import (
    ServiceCall,
    ServiceResponse,
)
from homeassistant.helpers import config_validation as cv
import probatio

from hydra_core.scheduler.models import Task

from ...actions import ENTRY_SCHEMA, Action, action_part
from .coordinator import HydraTaskCoordinator
from .requests import async_cancel_task, async_queue_task, async_retry_task

SERVICE_QUEUE_TASK: Final = "queue_task"
SERVICE_CANCEL_TASK: Final = "cancel_task"
SERVICE_RETRY_TASK: Final = "retry_task"

ATTR_KIND: Final = "kind"
ATTR_PAYLOAD: Final = "payload"
ATTR_PRIORITY: Final = "priority"
ATTR_TASK_ID: Final = "task_id"

# The worker judges kind, payload and priority (its errors are translated), so the schema only
# checks their types: what is refused is refused with the worker's own reason.
QUEUE_TASK_SCHEMA: Final = ENTRY_SCHEMA.extend(
    {
        probatio.Required(ATTR_KIND): cv.string,
        probatio.Optional(ATTR_PAYLOAD, default=dict): dict,
        probatio.Optional(ATTR_PRIORITY): probatio.Coerce(int),
    }
)
TASK_SCHEMA: Final = ENTRY_SCHEMA.extend({probatio.Required(ATTR_TASK_ID): cv.positive_int})


def _response(task: Task) -> ServiceResponse:
    return {"task_id": task.id, "state": task.state}


async def _async_queue_task(call: ServiceCall) -> ServiceResponse:
    task = await async_queue_task(
        action_part(call, HydraTaskCoordinator),
        call.data[ATTR_KIND],
        call.data[ATTR_PAYLOAD],
        call.context,
        call.data.get(ATTR_PRIORITY),
    )
    return _response(task)


def _task_action(
    action: Callable[[HydraTaskCoordinator, int], Awaitable[Task]],
) -> Callable[[ServiceCall], Coroutine[Any, Any, ServiceResponse]]:
    async def handle(call: ServiceCall) -> ServiceResponse:
        return _response(
            await action(action_part(call, HydraTaskCoordinator), call.data[ATTR_TASK_ID])
        )

    return handle


TASK_ACTIONS: Final[dict[str, Action]] = {
    SERVICE_QUEUE_TASK: (_async_queue_task, QUEUE_TASK_SCHEMA),
    SERVICE_CANCEL_TASK: (_task_action(async_cancel_task), TASK_SCHEMA),
    SERVICE_RETRY_TASK: (_task_action(async_retry_task), TASK_SCHEMA),
}
