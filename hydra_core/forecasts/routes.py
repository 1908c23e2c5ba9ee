"""Routes for disk use, forecasts and the prune."""

from __future__ import annotations

from aiohttp import web

from ..models import CallerActor
from ..wire import dump, read_body
from ..worker.requests import check_query
from .models import PruneRequest
from .part import ForecastsPart

routes = web.RouteTableDef()


@routes.get("/disk")
async def handle_disk(request: web.Request) -> web.Response:
    """Every watched folder (size, free, growth, days until full) and the engine's disk use."""
    check_query(request, {})
    return web.json_response(dump(await ForecastsPart.service_of(request).async_disk()))


@routes.get("/forecasts")
async def handle_forecasts(request: web.Request) -> web.Response:
    """Every predicted problem within the horizon, soonest first, each with its evidence."""
    check_query(request, {})
    return web.json_response(dump(await ForecastsPart.service_of(request).async_forecasts()))


@routes.post("/prune")
async def handle_prune(request: web.Request) -> web.Response:
    """Prune now, or (``dry_run``, the default) say what a prune would remove."""
    check_query(request, {})
    body = await read_body(request, PruneRequest)
    part = ForecastsPart.of(request)
    report = await part.pruner.async_prune(
        actor=CallerActor.resolve(body.actor),
        dry_run=body.dry_run,
        images=body.images,
        budget_bytes=body.budget_bytes,
    )
    if not body.dry_run:
        await part.service.async_sample()
    return web.json_response(dump(report))
