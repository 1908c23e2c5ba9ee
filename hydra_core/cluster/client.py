"""The cluster part's calls: the head's nodes (``/api/v1/cluster``) and its routing rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..client import PartClient
from ..models import Actor
from ..wire import dump
from .models import ClusterReport, ClusterRoutes


class ClusterClient(PartClient):
    """The head's view of its Ray cluster, through a ``HydraClient``."""

    async def async_report(self) -> ClusterReport:
        """The nodes, their resources and health, and the routing rules."""
        return await self._client.call(ClusterReport, "GET", "cluster")

    async def async_routes(self) -> ClusterRoutes:
        """The routing rules in force, where they come from, and the option's."""
        return await self._client.call(ClusterRoutes, "GET", "cluster/routes")

    async def async_set_routes(
        self, routes: Mapping[str, str], *, actor: Actor | None = None
    ) -> ClusterRoutes:
        """Replace the routing rules (the whole set; ``{}`` routes nothing); the answer's
        ``warnings`` name labels no live node has.

        HydraApiError ``invalid_route``, ``unknown_route_kind``, ``coordinator_route``,
        ``cluster_not_head`` (a worker that joined), ``cluster_disabled``.
        """
        body: dict[str, Any] = {"routes": dict(routes)}
        if actor is not None:
            body["actor"] = dump(actor)
        return await self._client.call(ClusterRoutes, "PUT", "cluster/routes", json=body)

    async def async_reset_routes(self) -> ClusterRoutes:
        """Return to the cluster_routes option's rules."""
        return await self._client.call(ClusterRoutes, "DELETE", "cluster/routes")
