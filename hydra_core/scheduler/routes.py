"""Routes for the task queue and its scheduler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ..models import CallerActor
from ..wire import dump, read_body
from ..worker.errors import ApiError
from ..worker.requests import check_query, query_before, query_choice, query_limit
from .models import TASK_STATES, SchedulerChanges, SchedulerState, Task, TaskRequest
from .part import TasksPart
from .scheduler import DEFAULT_PRIORITY, Scheduler
from .store import MAX_LIST, TaskQuery

routes = web.RouteTableDef()


def _task_id(request: web.Request) -> int:
    raw = request.match_info["task_id"]
    if not raw.isdecimal():
        raise ApiError(400, "invalid_task_id", f"A task id is a whole number, not {raw!r}")
    if int(raw) >= 2**63:  # beyond SQLite's integers: no such task can exist
        raise ApiError(404, "task_not_found", f"No task {raw}")
    return int(raw)


async def _one_task(
    request: web.Request, call: Callable[[Scheduler, int], Awaitable[Task]]
) -> web.Response:
    """A route on one task by its id: ``call`` on the scheduler, the task back as JSON."""
    check_query(request, {})
    task = await call(TasksPart.service_of(request), _task_id(request))
    return web.json_response(dump(task))


@routes.post("/tasks")
async def handle_create(request: web.Request) -> web.Response:
    """Queue a task: ``{kind, payload, priority, max_attempts, actor}``."""
    check_query(request, {})
    scheduler = TasksPart.service_of(request)
    body = await read_body(request, TaskRequest)
    task = await scheduler.async_enqueue(
        body.kind,
        body.payload,
        actor=CallerActor.resolve(body.actor),
        priority=DEFAULT_PRIORITY if body.priority is None else body.priority,
        max_attempts=body.max_attempts,
    )
    return web.json_response(dump(task), status=201)


@routes.get("/tasks")
async def handle_list(request: web.Request) -> web.Response:
    """Tasks, newest first; filters ``state``, ``kind``; paging ``before`` and ``limit``."""
    check_query(
        request,
        {
            "state": f"one of {', '.join(TASK_STATES)}",
            "kind": "task kind",
            "before": "task id, for paging",
            "limit": f"1 to {MAX_LIST} (default 100)",
        },
    )
    tasks = await TasksPart.service_of(request).async_list(
        TaskQuery(
            state=query_choice(request, "state", TASK_STATES),
            kind=request.query.get("kind"),
            before_id=query_before(request),
            limit=query_limit(request, MAX_LIST),
        )
    )
    return web.json_response({"tasks": [dump(task) for task in tasks]})


@routes.get("/tasks/{task_id}")
async def handle_get(request: web.Request) -> web.Response:
    """One task."""
    return await _one_task(request, Scheduler.async_get)


@routes.post("/tasks/{task_id}/cancel")
async def handle_cancel(request: web.Request) -> web.Response:
    """Cancel a task that has not finished."""
    return await _one_task(request, Scheduler.async_cancel)


@routes.post("/tasks/{task_id}/retry")
async def handle_retry(request: web.Request) -> web.Response:
    """Queue a failed or cancelled task again."""
    return await _one_task(request, Scheduler.async_retry)


async def _state(scheduler: Scheduler) -> web.Response:
    state = SchedulerState(
        settings=scheduler.settings, counts=await scheduler.async_counts(), kinds=scheduler.kinds
    )
    return web.json_response(dump(state))


@routes.get("/scheduler")
async def handle_scheduler(request: web.Request) -> web.Response:
    """Settings, today's counts and the accepted kinds."""
    check_query(request, {})
    return await _state(TasksPart.service_of(request))


@routes.put("/scheduler")
async def handle_update_scheduler(request: web.Request) -> web.Response:
    """Change settings: any of the thresholds, ``max_concurrent``, ``paused``."""
    check_query(request, {})
    scheduler = TasksPart.service_of(request)
    changes = await read_body(request, SchedulerChanges, code="invalid_setting")
    await scheduler.async_update_settings(**changes)
    return await _state(scheduler)
