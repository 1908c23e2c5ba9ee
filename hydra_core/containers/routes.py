"""Routes for containers and self-healing."""

from __future__ import annotations

from aiohttp import web

from ..models import CallerActor
from ..wire import dump, read_body
from ..worker.errors import ApiError
from ..worker.requests import check_query
from .models import CONTAINER_ACTIONS, ContainerActionRequest, HealingRequest
from .part import ContainersPart

routes = web.RouteTableDef()


@routes.get("/containers")
async def handle_containers(request: web.Request) -> web.Response:
    """Every container, the engine's state and the self-healing settings."""
    check_query(request, {})
    return web.json_response(dump(ContainersPart.service_of(request).report()))


@routes.get("/containers/{name}")
async def handle_container(request: web.Request) -> web.Response:
    """One container by name."""
    check_query(request, {})
    name = request.match_info["name"]
    container = ContainersPart.service_of(request).get(name)
    if container is None:
        raise ApiError(404, "container_not_found", f"No container named {name!r}")
    return web.json_response(dump(container))


@routes.post("/containers/{name}/{action}")
async def handle_action(request: web.Request) -> web.Response:
    """Start, stop or restart a container; the answer carries the audit entry."""
    check_query(request, {})
    service = ContainersPart.service_of(request)
    action = request.match_info["action"]
    if action not in CONTAINER_ACTIONS:
        raise ApiError(
            400, "invalid_action", f"Unknown action {action!r}; use {', '.join(CONTAINER_ACTIONS)}"
        )
    body = await read_body(request, ContainerActionRequest)
    entry, container = await service.async_action(
        request.match_info["name"], action, CallerActor.resolve(body.actor), body.reason
    )
    return web.json_response(
        {"audit": dump(entry), "container": dump(container) if container else None}
    )


@routes.get("/healing")
async def handle_healing(request: web.Request) -> web.Response:
    """The self-healing settings."""
    check_query(request, {})
    return web.json_response(dump(ContainersPart.service_of(request).healing))


@routes.put("/healing")
async def handle_set_healing(request: web.Request) -> web.Response:
    """Switch self-healing on or off."""
    check_query(request, {})
    body = await read_body(request, HealingRequest)
    settings = await ContainersPart.service_of(request).async_set_healing(enabled=body.enabled)
    return web.json_response(dump(settings))
