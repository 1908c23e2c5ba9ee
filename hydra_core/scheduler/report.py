"""The night report: what happened on the worker since a given time, for the morning briefing."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from ..audit import AuditQuery
from ..containers.part import ContainersPart
from ..containers.service import ContainerService
from ..gpu.history import GpuHistory
from ..gpu.models import GpuNight
from ..gpu.part import GpuPart
from ..wire import dump
from ..worker.errors import ApiError
from ..worker.requests import check_query, query_number
from ..worker.state import AUDIT_KEY
from .models import NightReport, Task
from .part import TasksPart
from .scheduler import Scheduler
from .store import MAX_LIST

routes = web.RouteTableDef()
# A report lists at most the latest this many finished tasks and audit entries of its span.
MAX_TASKS = MAX_LIST
MAX_HEALING = 200


@routes.get("/report")
async def handle_report(request: web.Request) -> web.Response:
    """What happened from ``since`` (Unix seconds, required) until now.

    ``tasks``: the tasks that finished (succeeded, failed, cancelled) in the span, oldest first
    (the latest ``MAX_TASKS``). ``waiting``: the tasks that have not started yet, now: queued
    (including those held back by a retry's backoff) and waiting for resources; running tasks
    are not counted. ``gpus``: each GPU's peak temperature, energy and mean load from the
    worker's samples (empty without a history). ``healing``: the audit log's entries in the
    span, oldest first (the latest ``MAX_HEALING``). ``unhealthy``: containers unhealthy or
    exited with an error now; ``containers_available`` is False when the worker follows no
    container engine or cannot reach it.
    """
    check_query(request, {"since": "unix time the report starts at, required"})
    until = time.time()
    since = query_number(request, "since", low=0, high=2**40)
    if since is None:
        raise ApiError(400, "invalid_query", "since is required: the Unix time to report from")
    if since > until:
        raise ApiError(
            400,
            "invalid_query",
            f"since must not be in the future: it is {since:.0f}, the worker's time {until:.0f}",
        )
    app = request.app
    queue, gpu = TasksPart.find(app), GpuPart.find(app)
    (tasks, waiting), gpus, healing = await asyncio.gather(
        _tasks(queue.service if queue else None, since, until),
        _gpus(gpu.service if gpu else None, since, until),
        app[AUDIT_KEY].async_query(AuditQuery(since=since, until=until, limit=MAX_HEALING)),
    )
    containers = ContainersPart.find(app)
    available, unhealthy = _containers(containers.service if containers else None)
    report = NightReport(
        since=since,
        until=until,
        tasks=tasks,
        waiting=waiting,
        gpus=gpus,
        healing=tuple(reversed(healing)),
        unhealthy=unhealthy,
        containers_available=available,
    )
    return web.json_response(dump(report))


async def _tasks(
    scheduler: Scheduler | None, since: float, until: float
) -> tuple[tuple[Task, ...], int]:
    if scheduler is None:
        return (), 0
    finished = await scheduler.async_finished(since, until, MAX_TASKS)
    counts = await scheduler.async_counts()
    return tuple(finished), counts["queued"] + counts["waiting"]


async def _gpus(history: GpuHistory | None, since: float, until: float) -> tuple[GpuNight, ...]:
    if history is None:
        return ()
    return await history.async_summary(since, until)


def _containers(service: ContainerService | None) -> tuple[bool, tuple[str, ...]]:
    """Whether the engine can be read, and the containers with a problem as last seen."""
    current = None if service is None else service.report()
    if current is None or not current.engine_available:
        return False, ()
    return True, tuple(container.name for container in current.containers if container.problem)
