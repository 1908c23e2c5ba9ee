"""``GET /api/v1/metrics``: the worker in Prometheus's text format."""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from ..worker.part import PARTS_KEY
from ..worker.requests import check_query
from ..worker.state import STATE_KEY
from .collector import SnapshotCollector, read_snapshot
from .part import METRICS_PATH, MetricsPart

routes = web.RouteTableDef()


class _Scrape(Collector):
    """One scrape's families: the snapshot's, then the part's histograms."""

    def __init__(self, snapshot: SnapshotCollector, part: MetricsPart) -> None:
        self._snapshot = snapshot
        self._part = part

    def collect(self) -> Iterator[Metric]:
        """The snapshot's families, then the histograms."""
        yield from self._snapshot.collect()
        yield from self._part.registry.collect()


@routes.get(METRICS_PATH)
async def handle_metrics(request: web.Request) -> web.Response:
    """Every metric, read now; in OpenMetrics when Prometheus asks for it."""
    check_query(request, {})
    part = MetricsPart.of(request)
    snapshot = await read_snapshot(request.app[STATE_KEY], request.app[PARTS_KEY].values())
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encode(_Scrape(SnapshotCollector(snapshot), part))
    return web.Response(body=body, headers={"Content-Type": content_type})
