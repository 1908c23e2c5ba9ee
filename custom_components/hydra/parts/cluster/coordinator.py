"""The head's Ray cluster: its nodes pushed as they are lost and join, polled for what they have
free. While a node is lost, Repairs says so; the repair goes when the node rejoins.

A node is followed by its worker's name: Ray gives a node that rejoins a new id, and the head
may list the lost one beside it for a while.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, override

from homeassistant.core import callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util

from hydra_core.cluster.client import ClusterClient
from hydra_core.cluster.models import (
    EVENT_CLUSTER_ROUTES,
    ClusterEvent,
    ClusterNode,
    ClusterReport,
    ClusterRoutes,
)
from hydra_core.models import WorkerEvent
from hydra_core.wire import dump, load

from ...const import CLUSTER_SCAN_INTERVAL, DOMAIN
from ...coordinator import HydraPartCoordinator, show_issue


def node_identifier(worker_id: str, name: str) -> str:
    """The device registry's identifier of a worker's cluster node."""
    return f"{worker_id}_node_{name}"


def node_gpu_identifier(worker_id: str, name: str, uuid: str) -> str:
    """The device registry's identifier of a GPU of a worker's cluster node."""
    return f"{node_identifier(worker_id, name)}_{uuid}"


def nodes_by_name(report: ClusterReport) -> dict[str, ClusterNode]:
    """Each node once, by its worker's name: alive before lost, then the latest seen."""
    nodes: dict[str, ClusterNode] = {}
    for node in report.nodes:
        known = nodes.get(node.name)
        if known is None or (node.alive, node.last_seen or 0.0) > (
            known.alive,
            known.last_seen or 0.0,
        ):
            nodes[node.name] = node
    return nodes


class HydraClusterCoordinator(HydraPartCoordinator[ClusterReport, ClusterClient]):
    """The nodes of the Ray cluster the worker heads."""

    part = "cluster"
    api_type = ClusterClient
    disabled = "cluster_disabled"
    interval = CLUSTER_SCAN_INTERVAL

    @override
    async def async_fetch(self) -> ClusterReport:
        """The nodes, their resources and health, and the routing rules."""
        return await self.api.async_report()

    @override
    async def _async_update_data(self) -> ClusterReport:
        report = await super()._async_update_data()
        self._update_lost_issues(report)
        return report

    @callback
    @override
    def async_set_updated_data(self, data: ClusterReport) -> None:
        self._update_lost_issues(data)
        super().async_set_updated_data(data)

    @override
    async def async_handle_event(self, event: WorkerEvent) -> None:
        """A node was lost or joined: show it at once, in place of what was known of it; the
        routing rules changed: show them at once."""
        if event.type == EVENT_CLUSTER_ROUTES:
            routes = load(ClusterRoutes, event.data).routes
            self.async_set_updated_data(replace(self.data, routes=routes))
            return
        node = load(ClusterEvent, event.data).node
        others = tuple(known for known in self.data.nodes if known.name != node.name)
        self.async_set_updated_data(replace(self.data, nodes=(*others, node)))

    @override
    def diagnostics(self) -> dict[str, Any]:
        return {**super().diagnostics(), "cluster": dump(self.data)}

    @override
    def device_identifiers(self) -> set[str]:
        nodes = nodes_by_name(self.data)
        return {node_identifier(self.worker_id, name) for name in nodes} | {
            node_gpu_identifier(self.worker_id, name, gpu.uuid)
            for name, node in nodes.items()
            for gpu in node.gpus
        }

    def node(self, name: str) -> ClusterNode | None:
        """A node as last known, by its worker's name."""
        return nodes_by_name(self.data).get(name)

    def _update_lost_issues(self, report: ClusterReport) -> None:
        """One repair per lost node; a node no longer listed keeps its repair (the head may
        drop lost nodes from its list) until it rejoins."""
        for name, node in nodes_by_name(report).items():
            issue_id = f"node_lost_{self.config_entry.entry_id}_{name}"
            if node.alive:
                ir.async_delete_issue(self.hass, DOMAIN, issue_id)
                continue
            since = (
                dt_util.as_local(dt_util.utc_from_timestamp(node.last_seen)).isoformat(
                    sep=" ", timespec="seconds"
                )
                if node.last_seen
                else "unknown"
            )
            show_issue(
                self.hass,
                issue_id,
                "node_lost",
                {
                    "worker": self.config_entry.title,
                    "node": name,
                    "address": node.address,
                    "since": since,
                },
            )
