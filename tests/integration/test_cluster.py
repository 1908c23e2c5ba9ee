"""The cluster in a real Home Assistant: each node of the Ray cluster a device under its head
worker's, a "Cluster nodes" sensor, and a repair while a node is lost that goes when it rejoins.

The head worker here is the real worker application on loopback; its cluster part is a
stand-in that answers ``/api/v1/cluster`` and sends the ``cluster`` events from a node report
the test sets (Ray does not run on Home Assistant's Python), in the wire models of the real one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field, replace
from typing import ClassVar

from aiohttp import web
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hydra.const import DOMAIN
from hydra_core.cluster.models import (
    EVENT_CLUSTER,
    ClusterEvent,
    ClusterNode,
    ClusterReport,
    NodeResources,
)
from hydra_core.events import EventBus
from hydra_core.gpu import NvmlProbe
from hydra_core.wire import dump
from hydra_core.worker.app import create_app
from hydra_core.worker.part import Part
from tests.fake_nvml import FakeNvml

from .conftest import WORKER_ID, LoopbackWorker, entry_for, setup_entry, wait_for_state, wait_until

NODES = "sensor.gpubox_cluster_nodes"
COMPUTE_ONLINE = "binary_sensor.hydra_compute_node_connectivity"
COMPUTE_VRAM_FREE = "sensor.hydra_compute_node_vram_free"
_MIB = 1024**2


def _node(name: str, node_id: str, **changes: object) -> ClusterNode:
    return replace(
        ClusterNode(node_id=node_id, name=name, address="127.0.0.1", last_seen=1_800_000_000.0),
        **changes,
    )


HEAD = _node(
    "gpubox",
    "a1" * 28,
    head=True,
    gpu_model="NVIDIA GeForce RTX 4090",
    total=NodeResources(cpus=16, gpus=1, vram_mb=24_000, labels=("llm",)),
    available=NodeResources(cpus=16, gpus=1, vram_mb=20_000, labels=("llm",)),
)
COMPUTE = _node(
    "hydra-compute",
    "b2" * 28,
    gpu_model="NVIDIA RTX A4000",
    total=NodeResources(cpus=8, gpus=1, vram_mb=16_000, labels=("images", "comfyui")),
    available=NodeResources(cpus=8, gpus=1, vram_mb=12_000, labels=("images", "comfyui")),
)


class StandInClusterPart(Part):
    """The head's cluster part as the wire shows it: ``GET /cluster`` answers ``report``, and
    ``send`` publishes a ``cluster`` event."""

    name = "cluster"
    options = object
    event_types = (EVENT_CLUSTER,)
    disabled_code = "cluster_disabled"
    disabled_message = "This worker is not the head of a cluster"
    routes: ClassVar[web.RouteTableDef] = web.RouteTableDef()

    def __init__(self, report: ClusterReport, bus: EventBus) -> None:
        self.report = report
        self._bus = bus

    @classmethod
    def route_table(cls) -> Iterable[web.AbstractRouteDef]:
        return cls.routes

    def send(self, event: str, node: ClusterNode) -> None:
        """The head saw ``node`` lost or (re)joined: list it so, and say so."""
        others = tuple(known for known in self.report.nodes if known.name != node.name)
        self.report = replace(self.report, nodes=(*others, node))
        self._bus.publish(EVENT_CLUSTER, dump(ClusterEvent(event=event, node=node)))


@StandInClusterPart.routes.get("/cluster")
async def _handle_cluster(request: web.Request) -> web.Response:
    return web.json_response(dump(StandInClusterPart.of(request).report))


@dataclass
class ClusterWorker(LoopbackWorker):
    """The head worker of a two-node cluster, its routing rules set by its options."""

    report: ClusterReport = field(
        default_factory=lambda: ClusterReport(
            mode="head",
            address="127.0.0.1:6379",
            nodes=(HEAD, COMPUTE),
            routes={"chapter_image": "images", "llm_*": "llm"},
        )
    )
    cluster: StandInClusterPart | None = None

    def build_app(self) -> web.Application:
        """The worker application with the cluster part."""
        bus = EventBus()
        self.cluster = StandInClusterPart(self.report, bus)
        return create_app(
            info=self.info,
            token=self.token,
            probe=NvmlProbe(self.nvml),
            bus=bus,
            parts=[self.cluster],
        )


@pytest.fixture
async def cluster_worker(nvml: FakeNvml) -> AsyncIterator[ClusterWorker]:
    async with ClusterWorker(nvml) as worker:
        yield worker


@pytest.fixture
def cluster_entry(cluster_worker: ClusterWorker) -> MockConfigEntry:
    return entry_for(cluster_worker)


def _lost_issue(hass: HomeAssistant, entry: MockConfigEntry, node: str) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, f"node_lost_{entry.entry_id}_{node}")


async def test_nodes_are_devices_under_the_worker(
    hass: HomeAssistant, cluster_entry: MockConfigEntry
) -> None:
    """Each node is a device connected through the worker's, with its VRAM; the worker's
    "Cluster nodes" sensor counts the live ones and lists each with the routing rules."""
    await setup_entry(hass, cluster_entry)
    devices = dr.async_get(hass)

    def device(identifier: str) -> dr.DeviceEntry | None:
        return devices.async_get_device_by_identifier((DOMAIN, identifier), cluster_entry.entry_id)

    worker = device(WORKER_ID)
    assert worker is not None
    compute = device(f"{WORKER_ID}_node_hydra-compute")
    head = device(f"{WORKER_ID}_node_gpubox")
    assert compute is not None
    assert head is not None
    assert (compute.name, compute.model, compute.via_device_id) == (
        "hydra-compute node",
        "NVIDIA RTX A4000",
        worker.id,
    )
    assert head.via_device_id == worker.id

    assert hass.states.get(COMPUTE_ONLINE).state == STATE_ON
    vram_free = hass.states.get(COMPUTE_VRAM_FREE)
    # 12,000 MiB, shown in GiB.
    assert float(vram_free.state) == pytest.approx(12_000 * _MIB / 1024**3, abs=0.05)
    assert hass.states.get("sensor.gpubox_node_vram_free") is not None

    nodes = hass.states.get(NODES)
    assert nodes.state == "2"
    assert nodes.attributes["routes"] == {"chapter_image": "images", "llm_*": "llm"}
    assert nodes.attributes["nodes"]["hydra-compute"]["labels"] == ["images", "comfyui"]
    assert nodes.attributes["nodes"]["gpubox"]["head"] is True
    assert _lost_issue(hass, cluster_entry, "hydra-compute") is None


async def test_lost_node_raises_a_repair_until_it_rejoins(
    hass: HomeAssistant, cluster_worker: ClusterWorker, cluster_entry: MockConfigEntry
) -> None:
    """A node lost is pushed at once: offline, one node fewer, a repair naming it; when it
    rejoins (a new Ray node id, the same worker) the repair goes and it is used again."""
    await setup_entry(hass, cluster_entry)
    assert cluster_worker.cluster is not None
    cluster_worker.cluster.send(
        "node_lost", replace(COMPUTE, alive=False, last_seen=1_800_000_100.0)
    )
    await wait_for_state(hass, COMPUTE_ONLINE, STATE_OFF)
    assert hass.states.get(NODES).state == "1"
    assert hass.states.get(COMPUTE_VRAM_FREE).state == STATE_UNAVAILABLE
    issue = _lost_issue(hass, cluster_entry, "hydra-compute")
    assert issue is not None
    assert issue.translation_key == "node_lost"
    assert issue.translation_placeholders["node"] == "hydra-compute"

    cluster_worker.cluster.send("node_joined", replace(COMPUTE, node_id="c3" * 28))
    await wait_for_state(hass, COMPUTE_ONLINE, STATE_ON)
    assert _lost_issue(hass, cluster_entry, "hydra-compute") is None
    assert hass.states.get(NODES).state == "2"
    assert hass.states.get(NODES).attributes["nodes"]["hydra-compute"]["node_id"] == "c3" * 28


async def test_node_lost_while_home_assistant_was_away(
    hass: HomeAssistant, cluster_worker: ClusterWorker, cluster_entry: MockConfigEntry
) -> None:
    """The head lists a node it lost (beside its rejoined self, for another): the repair is
    raised at set-up for the one still lost, and a poll that finds it back removes it."""
    cluster_worker.report = replace(
        cluster_worker.report,
        nodes=(
            HEAD,
            replace(COMPUTE, alive=False),
            replace(HEAD, node_id="d4" * 28, name="hydra-ai", alive=False, head=False),
            replace(HEAD, node_id="e5" * 28, name="hydra-ai", head=False),
        ),
    )
    await cluster_worker.restart()
    await setup_entry(hass, cluster_entry)
    assert hass.states.get(NODES).state == "2"
    assert hass.states.get(COMPUTE_ONLINE).state == STATE_OFF
    assert _lost_issue(hass, cluster_entry, "hydra-compute") is not None
    assert _lost_issue(hass, cluster_entry, "hydra-ai") is None

    assert cluster_worker.cluster is not None
    cluster_worker.cluster.report = replace(cluster_worker.report, nodes=(HEAD, COMPUTE))
    await cluster_entry.runtime_data.parts["cluster"].async_refresh()
    await wait_until(lambda: _lost_issue(hass, cluster_entry, "hydra-compute") is None)
    assert hass.states.get(COMPUTE_ONLINE).state == STATE_ON
