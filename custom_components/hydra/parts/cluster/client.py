"""The cluster part's call: what ``/api/v1/cluster`` answers.

It sits here, not in ``hydra_core/cluster/``, only because the worker side of the cluster
part was being written beside it; it belongs there with the part's other wire code.
"""

from __future__ import annotations

from hydra_core.client import PartClient
from hydra_core.cluster.models import ClusterReport


class ClusterClient(PartClient):
    """The head's view of its Ray cluster, through a ``HydraClient``."""

    async def async_report(self) -> ClusterReport:
        """The nodes, their resources and health, and the routing rules."""
        return await self._client.call(ClusterReport, "GET", "cluster")
