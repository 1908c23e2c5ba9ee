"""Routes of the cluster part: ``/cluster`` (the nodes) and ``/cluster/run`` (an attempt the
head placed on this node)."""

from __future__ import annotations

from aiohttp import web

from ..wire import dump, read_body
from ..worker.requests import check_query
from .models import NodeRunRequest
from .part import ClusterPart

routes = web.RouteTableDef()


@routes.get("/cluster")
async def handle_cluster(request: web.Request) -> web.Response:
    """The cluster's nodes (their resources, labels, health and when last seen) and routes."""
    check_query(request, {})
    return web.json_response(dump(await ClusterPart.of(request).async_report()))


@routes.post("/cluster/run")
async def handle_run(request: web.Request) -> web.Response:
    """Run one attempt of a task with this worker's handler; the head's Ray task waits for the
    answer, and the handler is cancelled if that Ray task goes away."""
    check_query(request, {})
    part = ClusterPart.of(request)
    body = await read_body(request, NodeRunRequest)

    def gone() -> bool:
        transport = request.transport
        return transport is None or transport.is_closing()

    return web.json_response(dump(await part.async_run_here(body, gone)))
