"""Routes for containers, self-healing, the audit log and the event stream."""

from __future__ import annotations

import asyncio
import contextlib
import time

from aiohttp import web

from ..audit import MAX_LIMIT, AuditLog, AuditQuery
from ..containers import ContainerActionError, ContainerService
from ..events import EventBus
from ..models import (
    ACTOR_TYPES,
    AUDIT_RESULTS,
    CONTAINER_ACTIONS,
    EVENT_HELLO,
    EVENT_KEEPALIVE,
    KEEPALIVE_S,
    Actor,
)
from .errors import ApiError
from .requests import check_query, query_number, read_object
from .state import STATE_KEY

CONTAINERS_KEY = web.AppKey("containers", ContainerService)
AUDIT_KEY = web.AppKey("audit", AuditLog)
BUS_KEY = web.AppKey("bus", EventBus)
# Callers may act as these; "self_heal" is the worker's own.
_CALLER_ACTORS = tuple(actor for actor in ACTOR_TYPES if actor != "self_heal")
_MAX_TEXT = 500


def add_routes(app: web.Application, prefix: str) -> None:
    """Register the routes."""
    app.router.add_get(f"{prefix}/containers", handle_containers)
    app.router.add_get(f"{prefix}/containers/{{name}}", handle_container)
    app.router.add_post(f"{prefix}/containers/{{name}}/{{action}}", handle_action)
    app.router.add_get(f"{prefix}/audit", handle_audit)
    app.router.add_get(f"{prefix}/healing", handle_healing)
    app.router.add_put(f"{prefix}/healing", handle_set_healing)
    app.router.add_get(f"{prefix}/events", handle_events)


def _service(request: web.Request) -> ContainerService:
    service = request.app.get(CONTAINERS_KEY)
    if service is None:
        raise ApiError(
            404,
            "containers_disabled",
            "Container monitoring is off on this worker (no engine configured: set docker_host)",
        )
    return service


async def handle_containers(request: web.Request) -> web.Response:
    """Every container, the engine's state and the self-healing settings."""
    check_query(request, {})
    return web.json_response(_service(request).report().as_dict())


async def handle_container(request: web.Request) -> web.Response:
    """One container by name."""
    check_query(request, {})
    name = request.match_info["name"]
    container = _service(request).get(name)
    if container is None:
        raise ApiError(404, "container_not_found", f"No container named {name!r}")
    return web.json_response(container.as_dict())


async def handle_action(request: web.Request) -> web.Response:
    """Start, stop or restart a container; the answer carries the audit entry."""
    check_query(request, {})
    service = _service(request)
    action = request.match_info["action"]
    if action not in CONTAINER_ACTIONS:
        raise ApiError(
            400, "invalid_action", f"Unknown action {action!r}; use {', '.join(CONTAINER_ACTIONS)}"
        )
    body = await read_object(request)
    actor = _actor(body.get("actor"))
    reason = _optional_text(body, "reason")
    try:
        entry, container = await service.async_action(
            request.match_info["name"], action, actor, reason
        )
    except ContainerActionError as err:
        raise ApiError(err.status, err.code, str(err)) from err
    return web.json_response(
        {"audit": entry.as_dict(), "container": container.as_dict() if container else None}
    )


def _actor(raw: object) -> Actor:
    if raw is None:
        return Actor(type="api")
    if not isinstance(raw, dict):
        raise ApiError(400, "invalid_body", "actor must be an object {type, id, name}")
    kind = raw.get("type")
    if kind not in _CALLER_ACTORS:
        raise ApiError(
            400, "invalid_body", f"actor.type must be one of {', '.join(_CALLER_ACTORS)}"
        )
    return Actor(type=kind, id=_optional_text(raw, "id"), name=_optional_text(raw, "name"))


def _optional_text(body: dict[str, object], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise ApiError(400, "invalid_body", f"{key} must be text of at most {_MAX_TEXT} characters")
    return value


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
    for key, allowed in (
        ("action", CONTAINER_ACTIONS),
        ("actor", ACTOR_TYPES),
        ("result", AUDIT_RESULTS),
    ):
        if key in request.query and request.query[key] not in allowed:
            raise ApiError(400, "invalid_query", f"{key} must be one of {', '.join(allowed)}")
    before = query_number(request, "before", low=1, high=2**62)
    limit = query_number(request, "limit", low=1, high=MAX_LIMIT)
    entries = await request.app[AUDIT_KEY].async_query(
        AuditQuery(
            container=request.query.get("container"),
            action=request.query.get("action"),
            actor_type=request.query.get("actor"),
            result=request.query.get("result"),
            since=query_number(request, "since", low=0, high=2**40),
            until=query_number(request, "until", low=0, high=2**40),
            before_id=None if before is None else int(before),
            limit=100 if limit is None else int(limit),
        )
    )
    return web.json_response({"entries": [entry.as_dict() for entry in entries]})


async def handle_healing(request: web.Request) -> web.Response:
    """The self-healing settings."""
    check_query(request, {})
    return web.json_response(_service(request).healing.as_dict())


async def handle_set_healing(request: web.Request) -> web.Response:
    """Switch self-healing on or off."""
    check_query(request, {})
    body = await read_object(request)
    if set(body) != {"enabled"} or not isinstance(body["enabled"], bool):
        raise ApiError(400, "invalid_body", 'Send {"enabled": true} or {"enabled": false}')
    settings = await _service(request).async_set_healing(enabled=body["enabled"])
    return web.json_response(settings.as_dict())


async def handle_events(request: web.Request) -> web.WebSocketResponse:
    """The event stream: a hello, then every worker event as JSON text messages."""
    check_query(request, {})
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    subscription = request.app[BUS_KEY].subscribe()
    await socket.send_json(
        {"type": EVENT_HELLO, "time": time.time(), "data": request.app[STATE_KEY].info.as_dict()}
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
            await socket.send_json(event.as_dict())
    except ConnectionResetError:
        pass
    finally:
        subscription.close()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await socket.close()
    return socket
