"""Ray as a head's cluster part and queue see it, for tests where Ray cannot run (Home
Assistant's Python) or is not the point (the routing rules' API): the real wire models, no Ray.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from hydra_core.cluster.models import (
    EVENT_CLUSTER,
    ClusterEvent,
    ClusterNode,
    ClusterReport,
    NodeRunResult,
)
from hydra_core.events import EventBus
from hydra_core.scheduler import TaskHandler
from hydra_core.scheduler.models import Task
from hydra_core.scheduler.scheduler import PlacedReport
from hydra_core.wire import dump

# The node every placed attempt runs on, and the label of the kinds placed there.
PLACED_ON = "hydra-compute"
PLACED_LABEL = "images"


class StandInPlacer:
    """Ray as the head's cluster part and queue see it: the nodes are ``report``, ``send``
    publishes what the real placer publishes when it sees a node lost or joined, and every
    attempt of the kinds routed to ``images`` runs on hydra-compute and succeeds there (each
    recorded in ``placed``)."""

    def __init__(self, report: ClusterReport, bus: EventBus) -> None:
        self.report = report
        self._bus = bus
        # Why no node could ever run the placed kinds (the real placer compares each node's
        # VRAM and labels with what the kind asks), or None.
        self.unfit: str | None = None
        # Why no node can take them now (the real placer compares the nodes' last reports,
        # their free VRAM and whether their workers answer, with what the kind asks), or None.
        self.held: str | None = None
        # The (task id, kind) of each attempt placed on hydra-compute.
        self.placed: list[tuple[int, str]] = []

    async def async_connect(self) -> None:
        """Nothing to connect to."""

    async def async_stop(self) -> None:
        """Nothing to stop."""

    async def async_report(self) -> ClusterReport:
        return self.report

    def set_routes(self, routes: Mapping[str, str]) -> None:
        """The routing rules in force, listed in the report as the real placer does."""
        self.report = replace(self.report, routes=dict(routes))

    def places(self, handler: TaskHandler) -> bool:
        return self.report.routes.get(handler.kind) == PLACED_LABEL

    async def async_unfit(self, handler: TaskHandler) -> str | None:
        return self.unfit

    async def async_held(self, handler: TaskHandler) -> str | None:
        return self.held

    async def async_run(
        self, task: Task, handler: TaskHandler, report: PlacedReport
    ) -> NodeRunResult:
        self.placed.append((task.id, task.kind))
        await report(PLACED_ON, None, None)
        return NodeRunResult(node=PLACED_ON, result={"outcome": "succeeded"})

    async def async_take_answers(self, task_ids: Iterable[int]) -> dict[int, object]:
        return {}

    def send(self, event: str, node: ClusterNode) -> None:
        """The head saw ``node`` lost or (re)joined: list it so (by its Ray id: a node that
        rejoins is listed beside its lost self), and say so."""
        others = tuple(known for known in self.report.nodes if known.node_id != node.node_id)
        self.report = replace(self.report, nodes=(*others, node))
        self._bus.publish(EVENT_CLUSTER, dump(ClusterEvent(event=event, node=node)))
