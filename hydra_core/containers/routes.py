"""Routes for containers and self-healing."""

from __future__ import annotations

from aiohttp import web

from ..models import ACTOR_TYPES, Actor
from ..wire import dump
from ..worker.errors import ApiError
from ..worker.requests import check_query, read_object
from .models import CONTAINER_ACTIONS
from .part import ContainersPart
from .service import ContainerActionError, ContainerService

routes = web.RouteTableDef()
# Callers may act as these; "self_heal" is the worker's own.
_CALLER_ACTORS = tuple(actor for actor in ACTOR_TYPES if actor != "self_heal")
_MAX_TEXT = 500


def _service(request: web.Request) -> ContainerService:
    return ContainersPart.of(request).service


@routes.get("/containers")
async def handle_containers(request: web.Request) -> web.Response:
    """Every container, the engine's state and the self-healing settings."""
    check_query(request, {})
    return web.json_response(dump(_service(request).report()))


@routes.get("/containers/{name}")
async def handle_container(request: web.Request) -> web.Response:
    """One container by name."""
    check_query(request, {})
    name = request.match_info["name"]
    container = _service(request).get(name)
    if container is None:
        raise ApiError(404, "container_not_found", f"No container named {name!r}")
    return web.json_response(dump(container))


@routes.post("/containers/{name}/{action}")
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
        {"audit": dump(entry), "container": dump(container) if container else None}
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


@routes.get("/healing")
async def handle_healing(request: web.Request) -> web.Response:
    """The self-healing settings."""
    check_query(request, {})
    return web.json_response(dump(_service(request).healing))


@routes.put("/healing")
async def handle_set_healing(request: web.Request) -> web.Response:
    """Switch self-healing on or off."""
    check_query(request, {})
    body = await read_object(request)
    if set(body) != {"enabled"} or not isinstance(body["enabled"], bool):
        raise ApiError(400, "invalid_body", 'Send {"enabled": true} or {"enabled": false}')
    settings = await _service(request).async_set_healing(enabled=body["enabled"])
    return web.json_response(dump(settings))
