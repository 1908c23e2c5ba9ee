"""What the cluster part tells the metrics of its nodes (``hydra_cluster_node_*``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeHealth:
    """One node of the cluster: whether it answers."""

    node: str
    up: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeLatency:
    """The round trip from one node to another, as last measured."""

    source: str
    target: str
    seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterMetrics:
    """What a cluster part's ``cluster_metrics()`` returns."""

    nodes: tuple[NodeHealth, ...] = ()
    latencies: tuple[NodeLatency, ...] = ()
