"""Routes of the VRAM arbiter: ``/models/available``, ``/models/loaded``,
``/models/can-load/{id}``, ``/models/load`` and ``/models/unload``."""

from __future__ import annotations

from aiohttp import web

from ..models import CallerActor
from ..wire import dump, read_body
from ..worker.requests import check_query, query_number
from .models import MAX_PRIORITY, LoadRequest, UnloadRequest, UnloadResult
from .part import ModelsPart
from .service import ModelNotFoundError

routes = web.RouteTableDef()


@routes.get("/models/available")
async def handle_available(request: web.Request) -> web.Response:
    """Every model of every backend, loaded or not, the backends and the GPU's memory."""
    check_query(request, {})
    arbiter = ModelsPart.service_of(request)
    await arbiter.async_refresh()
    return web.json_response(dump(await arbiter.async_status()))


@routes.get("/models/loaded")
async def handle_loaded(request: web.Request) -> web.Response:
    """The loaded models: VRAM, last use, work in flight, lease and TTL."""
    check_query(request, {})
    arbiter = ModelsPart.service_of(request)
    await arbiter.async_refresh()
    return web.json_response(dump(await arbiter.async_status(loaded_only=True)))


@routes.get("/models/can-load/{model:.+}")
async def handle_can_load(request: web.Request) -> web.Response:
    """Whether a model fits now, what a load would evict, or what blocks it; ``priority``:
    the load's (default 50)."""
    check_query(request, {"priority": f"0 to {MAX_PRIORITY} (default 50)"})
    arbiter = ModelsPart.service_of(request)
    priority = query_number(request, "priority", low=0, high=MAX_PRIORITY)
    plan = await arbiter.async_plan(
        request.match_info["model"], priority=50 if priority is None else int(priority)
    )
    return web.json_response(dump(plan))


@routes.post("/models/load")
async def handle_load(request: web.Request) -> web.Response:
    """Load a model, evicting idle ones if it does not fit: 200 with what was evicted, 409
    when leases or work in flight stand in the way, 507 when it cannot fit at all."""
    check_query(request, {})
    arbiter = ModelsPart.service_of(request)
    body = await read_body(request, LoadRequest)
    result = await arbiter.async_load(
        body.model,
        actor=CallerActor.resolve(body.actor),
        ttl_s=body.ttl_s,
        lease=(body.lease.holder, body.lease.seconds) if body.lease else None,
        priority=body.priority,
    )
    return web.json_response(dump(result))


@routes.post("/models/unload")
async def handle_unload(request: web.Request) -> web.Response:
    """Unload one model (``model``) or every one (``all``); ``force`` ends leases and pins."""
    check_query(request, {})
    arbiter = ModelsPart.service_of(request)
    body = await read_body(request, UnloadRequest)
    if (body.model is None) == (not body.all):
        raise ModelNotFoundError(
            "Name one model, or ask for all of them", code="invalid_body", status=400
        )
    unloaded, kept = await arbiter.async_unload(
        body.model, actor=CallerActor.resolve(body.actor), force=body.force
    )
    return web.json_response(dump(UnloadResult(unloaded=tuple(unloaded), kept=tuple(kept))))
