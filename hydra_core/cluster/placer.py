"""The head's side of the cluster: the Ray driver that places admitted tasks on the nodes.

Why this design. Each host runs a Hydra worker with its own handlers, ComfyUI clients, VRAM
arbiter and power profiles; Ray only decides *where*. An admitted task of a kind a routing rule
names becomes a Ray task (``proxy.run_on_node``) asking for the kind's ``VRAM_MB`` and the
rule's label resource (none for ``KIND=*``); Ray places it on a node that has them, and there it
asks that node's worker to run the handler in-process, streaming back the node, the handler's
progress and its answer. So a task runs the handler the user's worker has, with that node's
arbiter and power profile, and the head records what comes back in its ledger.

Attempts are the ledger's alone: Ray never retries (``max_retries=0``). A node lost mid-task
fails the attempt with ``NodeLostError``; the scheduler counts it and queues the task again at
once, and Ray places it on another node that fits. So a task runs at most ``max_attempts``
times whatever fails, and the handler's own retries go through the ledger's backoff as on one
box. A task no node could ever fit is refused at enqueue (Ray would leave it pending forever).

Answers also go to a detached ``ResultsBox`` actor on the head's Ray node: a head worker
killed with SIGKILL and restarted adopts its Ray head (see ``node.py``), takes the answers of
the attempts that finished while it was gone, and queues the others again (their Ray tasks died
with the old driver, and their nodes cancelled the handlers when the connection dropped).

Placement by the VRAM free now. Ray's ``VRAM_MB`` is fixed when a node starts (Ray has no
public way to change a node's resources), and counts only what running tasks asked for. So
every ``cluster_report_interval`` the head asks each alive node's worker for its GPUs
(``proxy.report_gpus``, a Ray task pinned to that node) and keeps what they have free, whether
the worker answered, and the round trip. An admitted task then goes to the node, among those
that fit it and whose worker answers, with the most VRAM free (the GPUs' free memory, no more
than the node offers, no more than Ray has not given out), pinned there with node affinity and
still asking for its ``VRAM_MB`` so that Ray's accounting keeps Hydra's own tasks from
overcommitting a node between two reports. If none has the room now but one could ever fit,
the queue holds the task ``waiting`` with the reason (``async_held``), no attempt spent, and
looks again as soon as a report changes a node's room. A node not reported yet is left to Ray's
own placement, as a task that asks no VRAM is when every node is fine.

``ray`` is imported here only when a head starts; nothing else in the worker imports it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
import contextlib
from dataclasses import replace
import fnmatch
import logging
import os
import time
from typing import Any

from ..background import cancel
from ..events import EventBus
from ..gpu.models import GpuReport
from ..scheduler.handlers import AttemptLostError, TaskHandler
from ..scheduler.models import Task
from ..scheduler.scheduler import PlacedReport
from ..wire import dump, load
from . import proxy
from .models import (
    EVENT_CLUSTER,
    ClusterEvent,
    ClusterNode,
    ClusterReport,
    NodeResources,
    NodeRunResult,
)
from .node import GPU_LABEL, LABEL_RESOURCE, NAME_LABEL, VRAM_RESOURCE, RayNode, label_resource
from .options import ClusterOptions

_LOGGER = logging.getLogger(__name__)
_CONNECT_TIMEOUT_S = 60.0
_MIB_PER_GB = 1024
_MIB = 1024**2
# The least a node's worker is given to answer a report (the node's HTTP timeout), and what
# Ray is given on top to start a worker process on the node for it (seconds, the first time).
_REPORT_ANSWER_S = 2.0
_REPORT_RAY_S = 10.0
# The label of a routing rule that places a kind on any node with room for it.
ANY_NODE = "*"


class NodeLostError(AttemptLostError):
    """The node running an attempt was lost (or its Ray worker died): the attempt is over."""


class RayPlacer:
    """Connects to the head's Ray node as a driver and runs placed attempts through it."""

    def __init__(
        self,
        options: ClusterOptions,
        *,
        node: RayNode,
        bus: EventBus,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._options = options
        self._node = node
        self._bus = bus
        # Tells the queue to look again: a node's room or worker changed.
        self._wake = wake
        self._routes = options.routes
        self._ray: Any = None
        self._box: Any = None
        self._remote: Any = None
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()
        self._problem: str | None = "not connected yet"
        self._nodes: dict[str, ClusterNode] = {}
        self._monitor: asyncio.Task[None] | None = None
        self._reporter: asyncio.Task[None] | None = None
        # Attempts pinned to a node and running, by task id: (node id, VRAM MB, when placed).
        self._pinned: dict[int, tuple[str, float, float]] = {}
        # When the last look at the nodes began (monotonic).
        self._looked_at = 0.0
        self._report_remote: Any = None
        self._affinity: Any = None

    # Life cycle

    async def async_connect(self) -> None:
        """Start (or adopt) the Ray head and connect to it, once: the queue's start (which
        reconciles) and the part's may both ask first."""
        async with self._lock:
            if self._ready.is_set():
                return
            await self._node.async_start()
            await asyncio.to_thread(self._connect)
            self._problem = None
            self._ready.set()
            await self._look()
            self._monitor = asyncio.create_task(self._watch(), name="hydra cluster nodes")
            self._reporter = asyncio.create_task(
                self._report_forever(), name="hydra cluster reports"
            )

    def _connect(self) -> None:
        # Ray's own handler of fatal signals would end the worker at a SIGTERM, before it stops
        # its queue and its Ray node.
        os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
        import ray  # noqa: PLC0415 - Ray only where a cluster is asked for
        from ray.util.scheduling_strategies import (  # noqa: PLC0415
            NodeAffinitySchedulingStrategy,
        )

        deadline = time.monotonic() + _CONNECT_TIMEOUT_S
        while True:
            try:
                ray.init(
                    address=self._node.address,
                    namespace=proxy.NAMESPACE,
                    logging_level=logging.WARNING,
                    log_to_driver=False,
                    configure_logging=False,
                    _node_ip_address=self._node.address.rpartition(":")[0],
                )
                break
            except (ConnectionError, RuntimeError) as err:
                if time.monotonic() > deadline:
                    raise
                _LOGGER.debug("Ray head not up yet: %s", err)
                time.sleep(0.5)
        ray.cloudpickle.register_pickle_by_value(proxy)
        self._ray = ray
        self._remote = ray.remote(proxy.run_on_node)
        self._report_remote = ray.remote(proxy.report_gpus)
        self._affinity = NodeAffinitySchedulingStrategy
        self._box = (
            ray.remote(proxy.ResultsBox)
            .options(
                name=proxy.BOX_NAME,
                lifetime="detached",
                get_if_exists=True,
                num_cpus=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(
                    node_id=ray.get_runtime_context().get_node_id(), soft=False
                ),
            )
            .remote()
        )

    async def async_stop(self) -> None:
        """Stop watching the nodes and disconnect (the Ray head stops with the node)."""
        if self._monitor is not None:
            await cancel(self._monitor)
        if self._reporter is not None:
            await cancel(self._reporter)
        if self._ray is not None:
            await asyncio.to_thread(self._disconnect, self._ray)
            self._ray = None

    def _disconnect(self, ray: Any) -> None:
        # The queue has stopped, with nothing of its own running: the box holds nothing it
        # needs, and a Ray head drains for up to 30 s while an actor lives on it.
        with contextlib.suppress(Exception):
            ray.kill(self._box)
        ray.shutdown()

    def set_routes(self, routes: Mapping[str, str]) -> None:
        """Place by these rules (kind pattern → label) from the next admitted task on."""
        self._routes = dict(routes)

    # What the scheduler asks

    def route(self, kind: str) -> str | None:
        """The label tasks of ``kind`` are routed to, if a rule names one."""
        return next(
            (
                label
                for pattern, label in self._routes.items()
                if fnmatch.fnmatchcase(kind, pattern)
            ),
            None,
        )

    def places(self, handler: TaskHandler) -> bool:
        """Whether the cluster runs this kind: those a routing rule names (not coordinators).

        Opt-in, since a kind whose payload points at the head's own state (a chapter's asset
        reads the head's chapter store) cannot run on another host's worker.
        """
        return not handler.coordinator and self.route(handler.kind) is not None

    def demand(self, handler: TaskHandler) -> dict[str, float]:
        """The Ray resources one task of this kind asks for."""
        wanted: dict[str, float] = {}
        if handler.needs_gpu and handler.vram_gb > 0:
            wanted[VRAM_RESOURCE] = float(round(handler.vram_gb * _MIB_PER_GB))
        if (label := self.route(handler.kind)) not in (None, ANY_NODE):
            wanted[label_resource(label)] = 1.0
        return wanted

    async def async_unfit(self, handler: TaskHandler) -> str | None:
        """Why no node of the cluster could ever run a task of this kind, or None."""
        await self.async_connect()
        wanted = self.demand(handler)
        if any(_fits(node, wanted) for node in await self._alive(fresh=False)):
            return None
        if any(_fits(node, wanted) for node in await self._alive(fresh=True)):
            return None
        label = self.route(handler.kind)
        needs = []
        if VRAM_RESOURCE in wanted:
            needs.append(f"{wanted[VRAM_RESOURCE]:.0f} MB of VRAM")
        if label not in (None, ANY_NODE):
            needs.append(f"a node labelled {label!r}")
        need = " on ".join(needs)
        alive = await self._alive(fresh=False)
        nodes = "; ".join(
            f"{node.name}: {node.total.vram_mb:.0f} MB"
            + (f" [{', '.join(node.total.labels)}]" if node.total.labels else "")
            for node in alive
        )
        return (
            f"No node of the cluster could ever run a {handler.kind} task: it needs {need}"
            f" (nodes: {nodes or 'none'})"
        )

    async def async_held(self, handler: TaskHandler) -> str | None:
        """Why a task of this kind must wait now, or None."""
        if not self._ready.is_set():
            return None
        return self._choose(handler)[1]

    def _choose(self, handler: TaskHandler) -> tuple[str | None, str | None]:
        """Where an attempt goes: (the node to pin it to, or None for Ray's own choice; why it
        must wait instead, or None)."""
        wanted = self.demand(handler)
        need = wanted.get(VRAM_RESOURCE, 0.0)
        fitting = [node for node in self._nodes.values() if node.alive and _fits(node, wanted)]
        unknown = [node for node in fitting if node.reported is None and node.worker_up]
        usable = [
            node
            for node in fitting
            if node.reported is not None
            and node.worker_up
            and ((live := _live_free_mb(node)) is None or live >= need)
        ]
        if usable and (need > 0 or unknown or len(usable) < len(fitting)):
            best = max(usable, key=lambda node: (self._room(node) >= need, self._room(node)))
            return best.node_id, None
        if usable or unknown or not fitting:
            # Ray places it: every node that fits is fine, or not reported yet (or none fits
            # now: a node just lost, which the queue's enqueue check and Ray's own wait cover).
            return None, None
        details = ", ".join(
            f"{node.name}: its Hydra worker does not answer"
            if not node.worker_up
            else f"{node.name}: {_live_free_mb(node) or 0:.0f} MB free"
            for node in sorted(fitting, key=lambda node: node.name)
        )
        if need > 0:
            return None, f"no node has {need:.0f} MB of VRAM free now ({details})"
        return None, f"no node that could run it answers now ({details})"

    def _ray_free(self, node: ClusterNode) -> float:
        """The VRAM Ray has not given out on the node: its figure at the last look, less what
        the attempts pinned there since, still running, asked for (so that a burst of tasks
        does not all go to one node before the next look)."""
        since = sum(
            mb
            for node_id, mb, placed in self._pinned.values()
            if node_id == node.node_id and placed > self._looked_at
        )
        return max(node.available.vram_mb - since, 0.0)

    def _room(self, node: ClusterNode) -> float:
        """The VRAM a task could have on the node now: what Ray has not given out, no more
        than its GPUs have free."""
        live = _live_free_mb(node)
        return self._ray_free(node) if live is None else min(self._ray_free(node), live)

    def _worker_down(self, node_id: str | None) -> None:
        """The worker of the node an attempt was pinned to did not answer: no more tasks there
        until a report says it answers again."""
        if node_id is not None and (node := self._nodes.get(node_id)) is not None:
            self._nodes[node_id] = replace(node, worker_up=False, latency_ms=None)

    async def async_run(
        self, task: Task, handler: TaskHandler, report: PlacedReport
    ) -> NodeRunResult:
        """Run one attempt on a node that fits, passing on which node and its progress;
        NodeLostError if its node or worker died."""
        await self.async_connect()
        ray = self._ray
        node_id, reason = self._choose(handler)
        if reason is not None:
            # Another task took the room since the queue admitted this one: not begun, so
            # not counted; the queue holds it waiting until a node has the room.
            held = NodeLostError(f"No node can take it now: {reason}")
            held.started = False
            raise held
        wanted = self.demand(handler)
        options: dict[str, Any] = {"num_cpus": 0, "max_retries": 0, "resources": wanted}
        if node_id is not None:
            options["scheduling_strategy"] = self._affinity(node_id=node_id, soft=False)
            self._pinned[task.id] = (node_id, wanted.get(VRAM_RESOURCE, 0.0), time.monotonic())
        request = {
            "task_id": task.id,
            "kind": task.kind,
            "payload": task.payload,
            "attempt": task.attempts,
            "priority": task.priority,
        }
        stream = self._remote.options(**options, num_returns="streaming").remote(request, self._box)
        try:
            async for ref in stream:
                item = await ref
                if "answer" in item:
                    return load(NodeRunResult, item["answer"])
                await report(item["node"], item.get("progress"), item.get("message"))
        except asyncio.CancelledError:
            # Ends the Ray worker: the node's worker sees the connection drop and cancels.
            with contextlib.suppress(Exception):
                ray.cancel(stream, force=True)
            raise
        except ray.exceptions.RayTaskError as err:
            if isinstance(err.cause, ConnectionError):
                self._worker_down(node_id)
                lost = NodeLostError(f"Its node was lost: {err.cause}")
                lost.started = not isinstance(err.cause, proxy.NodeUnreachableError)
                raise lost from err
            raise RuntimeError(f"The Ray task failed: {err.cause}") from err
        except ray.exceptions.TaskUnschedulableError as err:
            # The node it was pinned to went away before it began there.
            self._worker_down(node_id)
            unplaced = NodeLostError(f"Its node was lost before it began: {err}")
            unplaced.started = False
            raise unplaced from err
        except ray.exceptions.RayError as err:
            self._worker_down(node_id)
            raise NodeLostError(f"Its node was lost: {type(err).__name__}") from err
        finally:
            self._pinned.pop(task.id, None)
        raise NodeLostError("Its node ended the attempt without an answer")

    async def async_take_answers(
        self, task_ids: Iterable[int]
    ) -> dict[int, tuple[int, NodeRunResult]]:
        """The answers of attempts that finished while this head was away, by task id."""
        await self.async_connect()
        taken = await self._box.take.remote(list(task_ids))
        return {
            task_id: (attempt, load(NodeRunResult, answer))
            for task_id, (attempt, answer) in taken.items()
        }

    # Nodes

    async def async_report(self) -> ClusterReport:
        """The nodes as last seen, and the routing rules."""
        if self._ready.is_set():
            await self._look()
        shown = (
            replace(node, available=replace(node.available, vram_mb=self._room(node)))
            for node in self._nodes.values()
        )
        return ClusterReport(
            mode=self._options.cluster,
            address=self._node.address,
            nodes=tuple(sorted(shown, key=lambda node: (not node.head, node.name))),
            routes=dict(self._routes),
            problem=self._problem,
        )

    async def _alive(self, *, fresh: bool) -> list[ClusterNode]:
        """The nodes alive as last seen (``fresh``: looked at now, for a node just joined)."""
        if fresh:
            await self._look()
        return [node for node in self._nodes.values() if node.alive]

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._options.cluster_poll_interval)
            try:
                await self._look()
            except Exception as err:
                self._problem = f"Cannot read the cluster's nodes: {err}"
                _LOGGER.warning(self._problem)

    async def _look(self) -> None:
        looked = time.monotonic()
        seen = await asyncio.to_thread(self._read_nodes)
        self._problem = None
        now = time.time()
        for read in seen:
            before = self._nodes.get(read.node_id)
            if read.alive or before is None:
                node = replace(read, last_seen=now if read.alive else None)
            else:
                node = replace(read, last_seen=before.last_seen if not before.alive else now)
            if before is not None:
                # What the node's worker last reported stays until its next report.
                node = replace(
                    node,
                    gpus=before.gpus,
                    worker_up=before.worker_up,
                    latency_ms=before.latency_ms,
                    reported=before.reported,
                )
            self._nodes[node.node_id] = node
            if node.alive and (before is None or not before.alive):
                self._event("node_joined", node)
            elif not node.alive and before is not None and before.alive:
                self._event("node_lost", node)
        self._looked_at = looked

    async def _report_forever(self) -> None:
        while True:
            try:
                alive = [node for node in self._nodes.values() if node.alive]
                changed = await asyncio.gather(*(self._report(node) for node in alive))
                if any(changed):
                    self._wake()
            except Exception as err:
                _LOGGER.warning("Cannot ask the cluster's nodes for their GPUs: %s", err)
            await asyncio.sleep(self._options.cluster_report_interval)

    async def _report(self, node: ClusterNode) -> bool:
        """Ask one node's worker for its GPUs; whether its room or its worker's state changed."""
        answer_s = max(self._options.cluster_report_interval, _REPORT_ANSWER_S)
        started = time.monotonic()
        ref = self._report_remote.options(
            num_cpus=0,
            max_retries=0,
            scheduling_strategy=self._affinity(node_id=node.node_id, soft=False),
        ).remote(answer_s)
        try:
            async with asyncio.timeout(answer_s + _REPORT_RAY_S):
                answer = await ref
        except (TimeoutError, self._ray.exceptions.RayError) as err:
            with contextlib.suppress(Exception):
                self._ray.cancel(ref, force=True)
            answer = {"error": f"no report through Ray: {type(err).__name__}"}
        latency_ms = round((time.monotonic() - started) * 1000, 1)
        if (before := self._nodes.get(node.node_id)) is None:
            return False
        if "report" in answer:
            gpus = load(GpuReport, answer["report"]).gpus
            after = replace(
                before, gpus=gpus, worker_up=True, latency_ms=latency_ms, reported=time.time()
            )
        else:
            if before.worker_up:
                _LOGGER.warning(
                    "The Hydra worker of node %s does not answer: %s", node.name, answer["error"]
                )
            after = replace(before, worker_up=False, latency_ms=None)
        self._nodes[node.node_id] = after
        return (_live_free_mb(before), before.worker_up) != (_live_free_mb(after), after.worker_up)

    def _read_nodes(self) -> list[ClusterNode]:
        ray = self._ray
        available = ray._private.state.available_resources_per_node()
        head_id = ray.get_runtime_context().get_node_id()
        nodes = []
        for entry in ray.nodes():
            node_id = entry["NodeID"]
            labels = entry.get("Labels") or {}
            nodes.append(
                ClusterNode(
                    node_id=node_id,
                    name=labels.get(NAME_LABEL) or entry.get("NodeManagerAddress", node_id),
                    address=entry.get("NodeManagerAddress", ""),
                    head=node_id == head_id,
                    alive=bool(entry.get("Alive")),
                    gpu_model=(labels.get(GPU_LABEL) or "").replace("_", " ") or None,
                    total=_resources(entry.get("Resources") or {}),
                    available=_resources(available.get(node_id) or {}),
                )
            )
        return nodes

    def _event(self, event: str, node: ClusterNode) -> None:
        _LOGGER.info("Cluster node %s (%s): %s", node.name, node.address, event)
        self._bus.publish(EVENT_CLUSTER, dump(ClusterEvent(event=event, node=node)))


def _resources(resources: dict[str, float]) -> NodeResources:
    prefix = LABEL_RESOURCE.format("")
    return NodeResources(
        cpus=resources.get("CPU", 0.0),
        gpus=resources.get("GPU", 0.0),
        vram_mb=resources.get(VRAM_RESOURCE, 0.0),
        labels=tuple(
            sorted(key.removeprefix(prefix) for key in resources if key.startswith(prefix))
        ),
    )


def _live_free_mb(node: ClusterNode) -> float | None:
    """The VRAM the node's GPUs had free at its last report, no more than it offers; None
    before a report, or for a node without GPU monitoring (Ray's figure alone counts)."""
    free = [gpu.memory_free_bytes for gpu in node.gpus if gpu.memory_free_bytes is not None]
    if node.reported is None or not free:
        return None
    return min(sum(free) / _MIB, node.total.vram_mb)


def _fits(node: ClusterNode, wanted: dict[str, float]) -> bool:
    prefix = LABEL_RESOURCE.format("")
    for key, amount in wanted.items():
        if key == VRAM_RESOURCE and node.total.vram_mb < amount:
            return False
        if key.startswith(prefix) and key.removeprefix(prefix) not in node.total.labels:
            return False
    return True
