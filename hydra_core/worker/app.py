"""The worker's control API: an aiohttp application under ``/api/v1``.

The core routes (health, status, GPUs, the audit log, the event stream) are here; every other
route belongs to a part (see ``part.py``) and is mounted from the part's route table.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
import contextlib
from pathlib import Path
import time

from aiohttp import web

from ..audit import MAX_LIMIT, AuditLog, AuditQuery
from ..background import cancel
from ..containers.models import CONTAINER_ACTIONS
from ..events import EventBus
from ..gpu import GpuProbe
from ..gpu.models import GpuInfo
from ..host import read_host_info
from ..models import (
    ACTOR_TYPES,
    AUDIT_RESULTS,
    EVENT_HELLO,
    EVENT_KEEPALIVE,
    KEEPALIVE_S,
    WorkerInfo,
    WorkerStatus,
)
from ..state_files import set_aside_files
from ..wire import dump
from .auth import token_middleware
from .errors import ApiError, error_middleware
from .part import PARTS_KEY, Part
from .parts import PARTS
from .requests import check_query, query_before, query_choice, query_limit, query_number
from .state import AUDIT_KEY, BUS_KEY, STATE_KEY, WorkerState

API_PREFIX = "/api/v1"
core_routes = web.RouteTableDef()


def create_app(
    *,
    info: WorkerInfo,
    token: str,
    probe: GpuProbe,
    audit: AuditLog | None = None,
    bus: EventBus | None = None,
    parts: Iterable[Part] = (),
    data_dir: Path | None = None,
) -> web.Application:
    """Build the application; what it is given starts with it and closes with it.

    ``parts`` start in the order given (that of ``PARTS``) and stop in reverse. The routes of
    every known part are mounted; those of a part not given answer 404 with its
    ``disabled_code``. ``data_dir``: where the worker keeps its state (its status lists
    the files there it had to set aside).
    """
    parts = list(parts)
    route_tokens = {
        API_PREFIX + path: value for part in parts for path, value in part.route_tokens().items()
    }
    app = web.Application(middlewares=[error_middleware, token_middleware(token, route_tokens)])
    app[STATE_KEY] = WorkerState(info=info, probe=probe, started_at=time.time(), data_dir=data_dir)
    app[AUDIT_KEY] = audit or AuditLog(None)
    app[BUS_KEY] = bus or EventBus()
    app[PARTS_KEY] = {part.name: part for part in parts}
    known = dict.fromkeys((*PARTS, *(type(part) for part in app[PARTS_KEY].values())))
    for table in (core_routes, *(kind.route_table() for kind in known)):
        for route in table:
            assert isinstance(route, web.RouteDef)
            app.router.add_route(
                route.method, API_PREFIX + route.path, route.handler, **route.kwargs
            )
    app.cleanup_ctx.append(_lifetime)
    app.on_shutdown.append(_end_event_streams)
    return app


async def _end_event_streams(app: web.Application) -> None:
    """Let open /events connections finish now instead of holding the shutdown up."""
    app[BUS_KEY].close_all()


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    """Start the probe, the audit log and the parts; close whatever started, in reverse."""
    async with contextlib.AsyncExitStack() as stack:
        probe = app[STATE_KEY].probe
        await probe.async_start()
        stack.push_async_callback(probe.async_close)
        audit = app[AUDIT_KEY]
        await audit.async_open()
        stack.push_async_callback(audit.async_close)
        for part in app[PARTS_KEY].values():
            await part.async_start()
            stack.push_async_callback(part.async_stop)
        yield


async def build_status(state: WorkerState, parts: Iterable[Part] = ()) -> WorkerStatus:
    """Read the host and every GPU into one status, with the parts this worker runs."""
    gpu_report = await state.probe.async_read()
    host = read_host_info()
    return WorkerStatus(
        worker=state.info,
        started_at=state.started_at,
        host=host,
        gpu=gpu_report,
        parts={part.name: part.info() for part in parts},
        set_aside=() if state.data_dir is None else set_aside_files(state.data_dir),
    )


@core_routes.get("/health")
async def handle_health(request: web.Request) -> web.Response:
    """Liveness and identity; the only route that needs no token."""
    check_query(request, {})
    return web.json_response({"status": "ok", **dump(request.app[STATE_KEY].info)})


@core_routes.get("/status")
async def handle_status(request: web.Request) -> web.Response:
    """The worker, its host, every GPU and the parts it runs."""
    check_query(request, {})
    status = await build_status(request.app[STATE_KEY], request.app[PARTS_KEY].values())
    return web.json_response(dump(status))


@core_routes.get("/gpus")
async def handle_gpus(request: web.Request) -> web.Response:
    """Every GPU, or the ones named by ``?index=`` (repeatable)."""
    check_query(request, {"index": "a GPU index, repeatable"})
    wanted = {_parse_index(value) for value in request.query.getall("index", [])}
    report = await request.app[STATE_KEY].probe.async_read()
    gpus: list[GpuInfo] = [gpu for gpu in report.gpus if not wanted or gpu.index in wanted]
    missing = wanted - {gpu.index for gpu in gpus}
    if missing:
        raise ApiError(
            404, "gpu_not_found", f"No GPU with index {', '.join(map(str, sorted(missing)))}"
        )
    body = dump(report)
    body["gpus"] = [dump(gpu) for gpu in gpus]
    return web.json_response(body)


def _parse_index(value: str) -> int:
    if not value.isdecimal():
        raise ApiError(400, "invalid_query", f"index must be a non-negative integer, not {value!r}")
    return int(value)


@core_routes.get("/audit")
async def handle_audit(request: web.Request) -> web.Response:
    """The audit log, newest first; filters combine."""
    check_query(
        request,
        {
            "container": "container name",
            "action": "start, stop or restart",
            "actor": f"one of {', '.join(ACTOR_TYPES)}",
            "result": f"one of {', '.join(AUDIT_RESULTS)}",
            "since": "unix time",
            "until": "unix time",
            "before": "entry id, for paging",
            "limit": f"1 to {MAX_LIMIT} (default 100)",
        },
    )
    entries = await request.app[AUDIT_KEY].async_query(
        AuditQuery(
            container=request.query.get("container"),
            action=query_choice(request, "action", CONTAINER_ACTIONS),
            actor_type=query_choice(request, "actor", ACTOR_TYPES),
            result=query_choice(request, "result", AUDIT_RESULTS),
            before_id=query_before(request),
            limit=query_limit(request, MAX_LIMIT),
            since=query_number(request, "since", low=0, high=2**40),
            until=query_number(request, "until", low=0, high=2**40),
        )
    )
    return web.json_response({"entries": [dump(entry) for entry in entries]})


@core_routes.get("/events")
async def handle_events(request: web.Request) -> web.WebSocketResponse:
    """The event stream: a hello, then every worker event as JSON text messages."""
    check_query(request, {})
    # Refused with the API's JSON answer before the upgrade when the worker has enough.
    subscription = request.app[BUS_KEY].subscribe()
    socket = web.WebSocketResponse()
    try:
        await socket.prepare(request)
    except BaseException:
        subscription.close()
        raise
    await socket.send_json(
        {"type": EVENT_HELLO, "time": time.time(), "data": dump(request.app[STATE_KEY].info)}
    )

    async def until_closed() -> None:
        async for _message in socket:
            pass  # the client only listens; this notices it closing
        subscription.close()

    reader = asyncio.create_task(until_closed())
    try:
        while True:
            try:
                event = await subscription.next(KEEPALIVE_S)
            except TimeoutError:
                # Lets both ends notice a dead connection within a minute or so.
                await socket.send_json({"type": EVENT_KEEPALIVE, "time": time.time(), "data": {}})
                continue
            if event is None:
                break
            await socket.send_json(dump(event))
    except ConnectionResetError:
        pass
    finally:
        subscription.close()
        await cancel(reader)
        await socket.close()
    return socket


__all__ = ["API_PREFIX", "STATE_KEY", "ApiError", "WorkerState", "build_status", "create_app"]
