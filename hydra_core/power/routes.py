"""Routes for GPU power profiles: what each card runs at, and setting a profile or a limit."""

from __future__ import annotations

from aiohttp import web

from ..models import CallerActor
from ..wire import dump, read_body
from ..worker.requests import check_query
from .models import PowerRequest
from .part import PowerPart

routes = web.RouteTableDef()


@routes.get("/power")
async def handle_status(request: web.Request) -> web.Response:
    """Every GPU's profile, target and enforced limit; ``available`` false (and why) without
    NVML or a GPU."""
    check_query(request, {})
    status = await PowerPart.service_of(request).async_status()
    return web.json_response(dump(status))


@routes.put("/power")
async def handle_set(request: web.Request) -> web.Response:
    """``{"profile": "eco"|"balanced"|"full"}`` or ``{"limit_w": watts}``, optionally on
    ``"gpus": [index, ...]`` (default all), on behalf of ``"actor"``."""
    check_query(request, {})
    power = PowerPart.service_of(request)
    body = await read_body(request, PowerRequest)
    status = await power.async_set(
        CallerActor.resolve(body.actor),
        profile=body.profile,
        limit_w=body.limit_w,
        gpus=body.gpus,
    )
    return web.json_response(dump(status))
