"""The cluster part's options: whether this worker heads a Ray cluster, joins one, or is alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..options import option
from .models import CLUSTER_MODES

if TYPE_CHECKING:
    from ..worker.config import WorkerConfig

DEFAULT_RAY_PORT = 6379


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterOptions:
    """Past one box: the head places admitted tasks on the Ray nodes that fit them."""

    cluster: str = option(
        "off",
        help="off: this worker runs its tasks itself (no Ray); head: it starts a Ray cluster,"
        " keeps the queue and places tasks on the nodes; join: its host joins the head's"
        " cluster as a node and runs what is placed on it (needs the cluster extra: ray)",
        choices=CLUSTER_MODES,
    )
    cluster_address: str = option(
        "",
        help="head: the HOST:PORT its Ray cluster listens on; join: the head's HOST:PORT",
        default_text=f"head: NODE_IP:{DEFAULT_RAY_PORT}",
    )
    cluster_node_ip: str = option(
        "",
        help="the IP address this node is reached at by the others (Ray's --node-ip-address)",
        default_text="Ray's guess",
    )
    cluster_labels: tuple[str, ...] = option(
        (),
        help="comma-separated labels of this node (llm, images, comfyui, ...) that routing"
        " rules send task kinds to",
    )
    cluster_routes: tuple[str, ...] = option(
        (),
        help="comma-separated KIND=LABEL (* wildcards in KIND): the head places tasks of that"
        " kind on nodes with the label (LABEL *: on any node with the VRAM it needs); kinds"
        " without a rule run on the head itself. Rules set later through the head's API or"
        " Home Assistant's options are kept over these until DELETE /api/v1/cluster/routes",
    )
    cluster_vram_mb: int = option(
        0,
        help="MB of GPU memory this node offers to the cluster's tasks; 0: all its GPUs' memory",
        low=0,
        high=999_999,
    )
    cluster_object_store_mb: int = option(
        256,
        help="MB of memory this node's Ray object store takes (tasks pass only small results)",
        low=80,
        high=999_999,
    )
    cluster_poll_interval: float = option(
        2.0,
        help="seconds between the head's looks at the nodes (a node lost or joined)",
        low=0.2,
        high=600,
    )

    cluster_report_interval: float = option(
        5.0,
        help="seconds between the head's asks to each node's worker for its GPUs (the VRAM it"
        " has free now, whether the worker answers): what placement goes by",
        low=0.2,
        high=600,
    )

    def check(self, _config: WorkerConfig) -> None:
        """A node cannot join nowhere, and a routing rule names a kind and a label."""
        if self.cluster == "join" and not self.cluster_address:
            raise ValueError("cluster: join needs cluster_address, the head's HOST:PORT")
        for rule in self.cluster_routes:
            kind, _, label = rule.partition("=")
            if not kind.strip() or not label.strip():
                raise ValueError(f"cluster_routes: {rule!r} is not KIND=LABEL")

    @property
    def routes(self) -> dict[str, str]:
        """Task kind pattern → label."""
        pairs = (rule.partition("=") for rule in self.cluster_routes)
        return {kind.strip(): label.strip() for kind, _, label in pairs}
