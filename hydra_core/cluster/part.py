"""The cluster part: a head that places the queue's tasks on Ray nodes, or a node that joins.

With ``cluster: off`` (the default) the part is not built and nothing imports Ray. A head and a
joining node both run tasks placed on them through ``POST /cluster/run`` (see ``placer.py``
for the design); only the head keeps the ledger and places.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import logging
from typing import Any, Self

from ..background import cancel
from ..errors import Refusal
from ..metrics.models import ClusterMetrics, NodeHealth, NodeLatency
from ..models import Actor
from ..scheduler.handlers import (
    PayloadError,
    PermanentTaskError,
    TaskCancelledError,
    TaskContext,
    TaskHandler,
)
from ..scheduler.part import TasksPart
from ..scheduler.scheduler import Scheduler
from ..worker.config import CoreOptions, ensure_token
from ..worker.part import BuildContext, Part
from .models import (
    EVENT_CLUSTER,
    EVENT_CLUSTER_ROUTES,
    ClusterReport,
    NodeRunRequest,
    NodeRunResult,
)
from .node import FOLDER, RayNode
from .options import ClusterOptions
from .placer import RayPlacer
from .routing import NotHeadError, RoutingRules

_LOGGER = logging.getLogger(__name__)
# How often a run on this node looks whether the Ray task that asked for it is still there.
_GONE_POLL_S = 0.2
# How often a joining node looks whether its Ray node still runs.
_WATCH_S = 2.0


class ClusterPart(Part):
    """Built after the queue: it gives the queue its placer (head) and runs placed attempts."""

    name = "cluster"
    options = ClusterOptions
    event_types = (EVENT_CLUSTER, EVENT_CLUSTER_ROUTES)
    disabled_code = "cluster_disabled"
    disabled_message = "This worker is not part of a cluster (cluster: off)"
    route_modules = ("routes",)  # ``/cluster``, ``/cluster/run`` and ``/cluster/routes``

    def __init__(
        self,
        options: ClusterOptions,
        *,
        node: RayNode,
        scheduler: Scheduler,
        placer: RayPlacer | None,
        name: str,
        rules: RoutingRules | None = None,
    ) -> None:
        self._options = options
        self.node = node
        self.scheduler = scheduler
        self.placer = placer
        self._name = name
        # A head's routing rules (None on a node that joins: its head holds them).
        self._rules = rules
        self._watch: asyncio.Task[None] | None = None

    @classmethod
    def build(cls, context: BuildContext) -> Self | None:
        """Off unless the cluster option says head or join."""
        options = context.options(ClusterOptions)
        if options.cluster == "off":
            return None
        tasks = next((part for part in context.built if isinstance(part, TasksPart)), None)
        if tasks is None:
            raise ValueError("The cluster part needs the task queue")
        core = context.options(CoreOptions)
        scheme = "https" if core.tls_cert else "http"
        host = "127.0.0.1" if core.host in ("0.0.0.0", "", "::") else core.host  # noqa: S104
        node = RayNode(
            options,
            name=core.name,
            probe=context.probe,
            data_dir=context.data_dir,
            api_url=f"{scheme}://{host}:{core.port}/api/v1",
            token=ensure_token(core),
        )
        scheduler = tasks.service
        placer = None
        rules = None
        if options.cluster == "head":
            placer = RayPlacer(options, node=node, bus=context.bus, wake=scheduler.wake)
            scheduler.placer = placer
            rules = RoutingRules(
                options.routes,
                placer=placer,
                scheduler=scheduler,
                audit=context.audit,
                bus=context.bus,
                folder=context.data_dir / FOLDER,
            )
        part = cls(
            options, node=node, scheduler=scheduler, placer=placer, name=core.name, rules=rules
        )
        # Ray goes after the queue: running tasks finish (or go back) before it disconnects.
        scheduler.on_stopped.append(part._stop_ray)
        return part

    async def async_start(self) -> None:
        """Start this host's Ray node; a head connects to it (unless the queue did already).
        A joining node watches its Ray node and starts it again if it ends (the head's Ray
        was gone long enough for it to give up, or it failed to start)."""
        if self.placer is not None:
            await self.placer.async_connect()
        else:
            await self.node.async_start()
            self._watch = asyncio.create_task(self._keep_joined(), name="hydra cluster node")

    async def _keep_joined(self) -> None:
        while True:
            await asyncio.sleep(_WATCH_S)
            if (code := self.node.exited) is not None:
                _LOGGER.warning("The Ray node ended (exit status %s); joining again", code)
                await self.node.async_stop()
                await self.node.async_start()

    async def _stop_ray(self) -> None:
        if self._watch is not None:
            await cancel(self._watch)
        if self.placer is not None:
            await self.placer.async_stop()
        await self.node.async_stop()

    def capabilities(self) -> tuple[str, ...]:
        """head or join."""
        return (self._options.cluster,)

    async def async_report(self) -> ClusterReport:
        """The nodes (a head's view; a joining node knows only its head's address)."""
        if self.placer is not None:
            return await self.placer.async_report()
        return ClusterReport(mode=self._options.cluster, address=self.node.address)

    async def cluster_metrics(self) -> ClusterMetrics:
        """The nodes for ``/api/v1/metrics``, each up (alive, and its Hydra worker answers)
        or not, and the round trip of the head's last report from each: a head's view of its
        cluster (a node that rejoined is listed by Ray beside its lost self: it is up), a
        joining node's of itself."""
        up: dict[str, bool] = {}
        latencies: list[NodeLatency] = []
        for node in (await self.async_report()).nodes:
            up[node.name] = up.get(node.name, False) or (node.alive and node.worker_up)
            if node.alive and node.latency_ms is not None:
                latencies.append(
                    NodeLatency(source=self._name, target=node.name, seconds=node.latency_ms / 1000)
                )
        return ClusterMetrics(
            nodes=tuple(NodeHealth(node=name, up=alive) for name, alive in up.items())
            or (NodeHealth(node=self._name, up=True),),
            latencies=tuple(latencies),
        )

    async def async_run_here(
        self,
        request: NodeRunRequest,
        gone: Callable[[], bool],
        progress: Callable[[float, str | None], Awaitable[None]],
    ) -> NodeRunResult:
        """Run one placed attempt with this worker's handler (and its VRAM arbiter), until
        done or until ``gone`` says the Ray task that asked is no more; the handler's
        progress goes to ``progress``."""
        scheduler = self.scheduler
        handler = scheduler.handler(request.kind)
        if handler is None:
            return self._answer(error=f"{self._name} has no handler for {request.kind!r}")
        try:
            payload = handler.validate(request.payload)
        except PayloadError as err:
            return self._answer(error=f"Invalid {request.kind} payload: {err}")

        context = TaskContext(
            task_id=request.task_id,
            attempt=request.attempt,
            _report=progress,
            _cancelled=gone,
            _resources=lambda: scheduler.last_report,
            priority=request.priority,
        )
        holder = f"cluster task {request.task_id}"
        gate = scheduler.models_gate if handler.models else None
        run = asyncio.create_task(self._run(handler, payload, context, holder))
        try:
            while not run.done():
                await asyncio.wait({run}, timeout=_GONE_POLL_S)
                if not run.done() and gone():
                    _LOGGER.warning("Task %d: its Ray task is gone; cancelling", request.task_id)
                    run.cancel()
            return await run
        except asyncio.CancelledError:
            return self._answer(error="cancelled: the head's Ray task is gone")
        finally:
            if gate is not None:
                gate.release(holder)

    async def _run(
        self, handler: TaskHandler, payload: dict[str, Any], context: TaskContext, holder: str
    ) -> NodeRunResult:
        gate = self.scheduler.models_gate if handler.models else None
        try:
            if gate is not None:
                await gate.async_acquire(
                    holder,
                    handler.models,
                    priority=context.priority,
                    actor=Actor(type="task", id=str(context.task_id), name=handler.kind),
                )
            result = await handler.run(payload, context)
        except TaskCancelledError:
            return self._answer(error="cancelled")
        except PermanentTaskError as err:
            return self._answer(error=str(err) or type(err).__name__, permanent=True)
        except Refusal as err:
            return self._answer(error=err.message)
        except Exception as err:
            _LOGGER.warning("Task %d failed here: %s", context.task_id, err, exc_info=True)
            return self._answer(error=f"{type(err).__name__}: {err}")
        return NodeRunResult(node=self._name, result=result)

    @property
    def rules(self) -> RoutingRules:
        """The head's routing rules; NotHeadError on a node that joined."""
        if self._rules is None:
            raise NotHeadError(
                "This worker joined a cluster as a node; its head holds the routing rules"
                " (ask the head's worker)"
            )
        return self._rules

    @property
    def node_name(self) -> str:
        """This node's name in the cluster (the worker's name)."""
        return self._name

    def _answer(self, *, error: str, permanent: bool = False) -> NodeRunResult:
        return NodeRunResult(node=self._name, error=error, permanent=permanent)
