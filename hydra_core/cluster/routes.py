"""Routes of the cluster part: ``/cluster`` (the nodes), ``/cluster/run`` (an attempt the
head placed on this node) and ``/cluster/routes`` (the head's routing rules)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..models import Actor, CallerActor
from ..wire import dump, read_body
from ..worker.requests import check_query
from .models import ClusterRoutesRequest, NodeRunRequest
from .part import ClusterPart

routes = web.RouteTableDef()


@routes.get("/cluster")
async def handle_cluster(request: web.Request) -> web.Response:
    """The cluster's nodes (their resources, labels, health and when last seen) and routes."""
    check_query(request, {})
    return web.json_response(dump(await ClusterPart.of(request).async_report()))


@routes.post("/cluster/run")
async def handle_run(request: web.Request) -> web.StreamResponse:
    """Run one attempt of a task with this worker's handler, answering one JSON object a
    line: ``{"node"}`` at once, ``{"node", "progress", "message"}`` as the handler reports,
    and last ``{"answer": NodeRunResult}``. The head's Ray task reads them; if it goes away,
    the handler is cancelled."""
    check_query(request, {})
    part = ClusterPart.of(request)
    body = await read_body(request, NodeRunRequest)
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)

    async def send(item: dict[str, Any]) -> None:
        await response.write(json.dumps(item).encode() + b"\n")

    def gone() -> bool:
        transport = request.transport
        return transport is None or transport.is_closing()

    async def progress(percent: float, message: str | None) -> None:
        if not gone():
            await send({"node": part.node_name, "progress": percent, "message": message})

    await send({"node": part.node_name})
    answer = await part.async_run_here(body, gone, progress)
    if not gone():
        await send({"answer": dump(answer)})
        await response.write_eof()
    return response


@routes.get("/cluster/routes")
async def handle_routes(request: web.Request) -> web.Response:
    """The head's routing rules in force, where they come from (option or api), and the
    option's."""
    check_query(request, {})
    return web.json_response(dump(ClusterPart.of(request).rules.report()))


@routes.put("/cluster/routes")
async def handle_set_routes(request: web.Request) -> web.Response:
    """``{"routes": {"KIND_PATTERN": "LABEL", ...}, "actor": ...}``: the whole set, in force
    over the cluster_routes option from the next admitted task on (and after a restart); the
    answer's ``warnings`` name labels no live node has."""
    check_query(request, {})
    rules = ClusterPart.of(request).rules
    body = await read_body(request, ClusterRoutesRequest)
    answer = await rules.async_set(body.routes, CallerActor.resolve(body.actor))
    return web.json_response(dump(answer))


@routes.delete("/cluster/routes")
async def handle_reset_routes(request: web.Request) -> web.Response:
    """Forget the rules set through the API: the cluster_routes option's are in force again."""
    check_query(request, {})
    answer = await ClusterPart.of(request).rules.async_reset(Actor(type="api"))
    return web.json_response(dump(answer))
