"""The cluster part's wire models: the nodes of the Ray cluster, their resources and health,
and what ``/api/v1/cluster`` answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from ..gpu.models import GpuInfo
from ..models import CallerActor
from ..wire import request_model

CLUSTER_MODES = ("off", "head", "join")
# The types of messages on /api/v1/events this part sends, and what their data holds.
EVENT_CLUSTER = "cluster"  # {"event": "node_joined" | "node_lost", "node": ClusterNode}
NODE_EVENTS = ("node_joined", "node_lost")
EVENT_CLUSTER_ROUTES = "cluster_routes"  # ClusterRoutes: the head's routing rules changed
# Where the routing rules in force come from: the cluster_routes option, or a PUT (saved).
ROUTES_SOURCES = ("option", "api")


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeResources:
    """What a node advertises to Ray (``total``) or has free now (``available``).

    ``vram_mb`` in ``total`` is what the node offers (its GPUs' memory, or ``cluster_vram_mb``);
    in ``available``, what Ray has not given to running tasks, and no more than the node's GPUs
    have free now (its last GPU report); ``labels`` are the node's routing labels (``llm``,
    ``images``, ...).
    """

    cpus: float = 0.0
    gpus: float = 0.0
    vram_mb: float = 0.0
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterNode:
    """One Ray node of the cluster: a Hydra worker's host."""

    # Ray's id of the node (hex); stable while the node runs, new when it rejoins.
    node_id: str
    # The Hydra worker's name on that host (its ``name`` option).
    name: str
    address: str
    head: bool = False
    alive: bool = True
    gpu_model: str | None = None
    total: NodeResources = field(default_factory=NodeResources)
    available: NodeResources = field(default_factory=NodeResources)
    # When the head last saw it alive (unix time); for a lost node, when it was lost.
    last_seen: float | None = None
    # The node's GPUs as its Hydra worker last reported them to the head (every
    # cluster_report_interval); empty for a node without GPU monitoring.
    gpus: tuple[GpuInfo, ...] = ()
    # Whether its Hydra worker answered the last report: a node whose worker does not is given
    # no tasks. True until a first report says otherwise.
    worker_up: bool = True
    # The round trip of the last report (head → node's worker → head), ms.
    latency_ms: float | None = None
    # When the last good report came (unix time); None: none yet (Ray alone places there).
    reported: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterReport:
    """What ``/api/v1/cluster`` answers on a head: its nodes and how tasks are routed."""

    mode: str
    # The Ray address the nodes join (host:port).
    address: str
    nodes: tuple[ClusterNode, ...] = ()
    # Task kind → the label of the nodes it runs on.
    routes: dict[str, str] = field(default_factory=dict)
    # Why the head cannot reach Ray now, or None.
    problem: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterEvent:
    """The data of a ``cluster`` event: a node joined (or rejoined) or was lost."""

    event: str
    node: ClusterNode


# What a head asks a node's worker (``POST /cluster/run``) from the Ray task placed there.


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRunRequest:
    """Run one attempt of a queued task with this node's own handler."""

    task_id: int
    kind: str
    payload: dict[str, Any]
    attempt: int = 1
    priority: int = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRunResult:
    """What the node's handler gave: a result, or an error (``permanent``: no retry helps)."""

    node: str
    result: dict[str, Any] | None = None
    error: str | None = None
    permanent: bool = False


# The routing rules of a head (``/api/v1/cluster/routes``).

MAX_ROUTES = 100
MAX_ROUTE_TEXT = 200
_RouteText = Annotated[str, StringConstraints(max_length=MAX_ROUTE_TEXT)]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterRoutes:
    """The head's routing rules in force: task kind pattern (``*`` wildcards) → node label
    (``*``: any node with the VRAM the kind needs)."""

    routes: dict[str, str] = field(default_factory=dict)
    # option: the cluster_routes option's rules; api: rules set by PUT (saved in the data dir,
    # in force over the option's until DELETE).
    source: str = "option"
    # The cluster_routes option's rules, what DELETE returns to.
    option_routes: dict[str, str] = field(default_factory=dict)
    # What the rules just set may not do yet (a label no live node has), for people.
    warnings: tuple[str, ...] = ()


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterRoutesRequest:
    """Replace the head's routing rules with ``routes`` (the whole set; ``{}``: route nothing,
    every kind runs on the head), on behalf of ``actor``."""

    routes: Annotated[dict[_RouteText, _RouteText], Field(max_length=MAX_ROUTES)]
    actor: CallerActor | None = None
