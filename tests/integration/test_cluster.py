"""The cluster in a real Home Assistant: each node of the Ray cluster a device under its head
worker's, a "Cluster nodes" sensor, a repair while a node is lost that goes when it rejoins, and
the node that ran each task in the queue's to-do list and the task's events.

Most tests run the head worker in this process: the real worker application on loopback with
its real task queue and cluster part (``/api/v1/cluster``, the ``cluster`` events); only its
placer, the part that talks to Ray, is a stand-in (Ray does not run on Home Assistant's Python):
its nodes are a report the test sets, in the real wire models, and the attempts it places come
back from ``hydra-compute``. One test runs the real thing end to end: a head worker and a worker
that joins it, each a process on the worker's Python (3.11, with Ray), forming a Ray cluster on
127.0.0.1 (``tests/cluster/harness.py``); the joined host is killed and comes back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
import os
from pathlib import Path
import sys
from typing import Any
from unittest.mock import patch

from aiohttp import web
from homeassistant.const import CONF_TOKEN, CONF_URL, STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.hydra.const import DOMAIN, EVENT_TASK_SUCCEEDED
from hydra_core.audit import AuditLog
from hydra_core.cluster.models import (
    ClusterNode,
    ClusterReport,
    NodeResources,
)
from hydra_core.cluster.node import FOLDER, RayNode
from hydra_core.cluster.options import ClusterOptions
from hydra_core.cluster.part import ClusterPart
from hydra_core.cluster.routing import RoutingRules
from hydra_core.events import EventBus
from hydra_core.gpu import NvmlProbe
from hydra_core.gpu.models import GpuInfo
from hydra_core.scheduler.part import TasksPart
from hydra_core.scheduler.store import TaskQuery
from hydra_core.worker.app import create_app
from tests.cluster.harness import LOOPBACK, TOKEN, Cluster, Worker, free_port
from tests.cluster.standin import StandInPlacer
from tests.fake_nvml import FakeNvml

from .conftest import (
    WORKER_ID,
    WORKER_NAME,
    TaskWorker,
    entry_for,
    make_scheduler,
    setup_entry,
    wait_for_state,
    wait_until,
)
from .dashboard_strategy import generated_dashboard
from .worker_process import WORKER_PYTHON

NODES = "sensor.gpubox_cluster_nodes"
COMPUTE_ONLINE = "binary_sensor.hydra_compute_node_connectivity"
COMPUTE_VRAM_FREE = "sensor.hydra_compute_node_vram_free"
QUEUE = "todo.gpubox_hydra_queue"
_MIB = 1024**2


def _node(name: str, node_id: str, **changes: object) -> ClusterNode:
    return replace(
        ClusterNode(node_id=node_id, name=name, address="127.0.0.1", last_seen=1_800_000_000.0),
        **changes,
    )


HEAD = _node(
    WORKER_NAME,
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
REPORT = ClusterReport(
    mode="head",
    address="127.0.0.1:6379",
    nodes=(HEAD, COMPUTE),
    routes={"chapter_image": "images", "test": "images"},
)


@dataclass
class ClusterWorker(TaskWorker):
    """The head worker of a two-node cluster: its task queue and its cluster part."""

    report: ClusterReport = REPORT
    placer: StandInPlacer | None = None

    def build_app(self) -> web.Application:
        """The worker application with the queue and the cluster part, as ``build`` makes
        them for ``cluster: head``."""
        probe = NvmlProbe(self.nvml)
        bus = EventBus()
        self.scheduler = make_scheduler(self.data_dir, self.handlers(), probe, bus)
        self.placer = StandInPlacer(self.report, bus)
        self.scheduler.placer = self.placer
        options = ClusterOptions(
            cluster="head",
            cluster_address=self.report.address,
            cluster_routes=tuple(f"{kind}={label}" for kind, label in self.report.routes.items()),
        )
        node = RayNode(
            options,
            name=WORKER_NAME,
            probe=probe,
            data_dir=self.data_dir,
            api_url=f"{self.url}/api/v1",
            token=self.token,
        )
        audit = AuditLog(self.data_dir / "audit.db")
        cluster = ClusterPart(
            options,
            node=node,
            scheduler=self.scheduler,
            placer=self.placer,  # type: ignore[arg-type]
            name=WORKER_NAME,
            rules=RoutingRules(
                options.routes,
                placer=self.placer,
                scheduler=self.scheduler,
                audit=audit,
                bus=bus,
                folder=self.data_dir / FOLDER,
            ),
        )
        return create_app(
            info=self.info,
            token=self.token,
            probe=probe,
            audit=audit,
            bus=bus,
            parts=[TasksPart(self.scheduler), cluster],
            data_dir=self.data_dir,
        )


@pytest.fixture
async def cluster_worker(nvml: FakeNvml, tmp_path: Path) -> AsyncIterator[ClusterWorker]:
    async with ClusterWorker(nvml, data_dir=tmp_path) as worker:
        yield worker


@pytest.fixture
def cluster_entry(cluster_worker: ClusterWorker) -> MockConfigEntry:
    return entry_for(cluster_worker)


def _device(hass: HomeAssistant, entry: MockConfigEntry, identifier: str) -> dr.DeviceEntry | None:
    return dr.async_get(hass).async_get_device_by_identifier((DOMAIN, identifier), entry.entry_id)


def _lost_issue(hass: HomeAssistant, entry: MockConfigEntry, node: str) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, f"node_lost_{entry.entry_id}_{node}")


async def test_nodes_are_devices_under_the_worker(
    hass: HomeAssistant, cluster_entry: MockConfigEntry
) -> None:
    """Each node is a device connected through the worker's, with its VRAM; the worker's
    "Cluster nodes" sensor counts the live ones and lists each with the routing rules."""
    await setup_entry(hass, cluster_entry)
    worker = _device(hass, cluster_entry, WORKER_ID)
    assert worker is not None
    compute = _device(hass, cluster_entry, f"{WORKER_ID}_node_hydra-compute")
    head = _device(hass, cluster_entry, f"{WORKER_ID}_node_gpubox")
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
    assert nodes.attributes["routes"] == {"chapter_image": "images", "test": "images"}
    assert nodes.attributes["nodes"]["hydra-compute"]["labels"] == ["images", "comfyui"]
    assert nodes.attributes["nodes"]["gpubox"]["head"] is True
    assert _lost_issue(hass, cluster_entry, "hydra-compute") is None

    # The Hydra dashboard gains a Cluster view: the count, then each node's card.
    views = {view["path"]: view for view in (await generated_dashboard(hass))["views"]}
    cards = {card["title"]: card["entities"] for card in views["cluster"]["cards"]}
    assert cards["Cluster"] == [NODES]
    assert set(cards["hydra-compute node"]) >= {COMPUTE_ONLINE, COMPUTE_VRAM_FREE}
    assert "sensor.gpubox_node_vram_free" in cards["gpubox node"]


def _compute_gpu(**changes: object) -> GpuInfo:
    """hydra-compute's card as its worker reports it to the head."""
    gpu = GpuInfo(
        index=0,
        uuid="GPU-c0ffee00-0000-4000-8000-000000000001",
        name="NVIDIA RTX A4000",
        utilization_percent=40.0,
        memory_total_bytes=16 * 1024**3,
        memory_used_bytes=4 * 1024**3,
        memory_free_bytes=12 * 1024**3,
        temperature_c=55.0,
        power_draw_w=100.0,
        power_limit_w=140.0,
    )
    return replace(gpu, **changes)


COMPUTE_GPU = "sensor.hydra_compute_gpu_0"


async def test_node_gpus_and_latency_follow_the_heads_reports(
    hass: HomeAssistant, cluster_worker: ClusterWorker, cluster_entry: MockConfigEntry
) -> None:
    """Each GPU a node's worker reports to the head is a device under the node's, with the
    sensors a worker's own GPU has; the node shows the report's round trip, and goes offline
    (its GPUs unavailable) while its worker does not answer."""
    reported = replace(COMPUTE, gpus=(_compute_gpu(),), latency_ms=3.2, reported=1_800_000_000.0)
    cluster_worker.report = replace(REPORT, nodes=(HEAD, reported))
    await cluster_worker.restart()
    await setup_entry(hass, cluster_entry)
    node = _device(hass, cluster_entry, f"{WORKER_ID}_node_hydra-compute")
    gpu = _device(hass, cluster_entry, f"{WORKER_ID}_node_hydra-compute_{_compute_gpu().uuid}")
    assert node is not None
    assert gpu is not None
    assert (gpu.name, gpu.model, gpu.via_device_id) == (
        "hydra-compute GPU 0",
        "NVIDIA RTX A4000",
        node.id,
    )
    assert hass.states.get(f"{COMPUTE_GPU}_utilization").state == "40.0"
    assert hass.states.get(f"{COMPUTE_GPU}_temperature").state == "55.0"
    assert float(hass.states.get(f"{COMPUTE_GPU}_memory_free").state) == pytest.approx(12.0)
    assert float(hass.states.get(f"{COMPUTE_GPU}_memory_used").state) == pytest.approx(4.0)
    assert hass.states.get(f"{COMPUTE_GPU}_power_draw").state == "100.0"
    # The card reports no fan: no fan entity, as for a worker's own GPU.
    assert hass.states.get(f"{COMPUTE_GPU}_fan_speed") is None
    latency = hass.states.get("sensor.hydra_compute_node_latency")
    assert (latency.state, latency.attributes["unit_of_measurement"]) == ("3.2", "ms")
    assert hass.states.get(NODES).attributes["nodes"]["hydra-compute"]["worker_up"] is True
    # The dashboard's Cluster view shows the card under its node.
    views = {view["path"]: view for view in (await generated_dashboard(hass))["views"]}
    titles = [card["title"] for card in views["cluster"]["cards"]]
    assert titles.index("hydra-compute GPU 0") == titles.index("hydra-compute node") + 1
    gpu_card = views["cluster"]["cards"][titles.index("hydra-compute GPU 0")]
    shown = ("utilization", "temperature", "memory_usage", "power_draw")
    assert gpu_card["entities"] == [f"{COMPUTE_GPU}_{key}" for key in shown]

    # A model loads on the node: the next report shows it.
    assert cluster_worker.placer is not None
    loaded = _compute_gpu(
        utilization_percent=95.0, memory_used_bytes=14 * 1024**3, memory_free_bytes=2 * 1024**3
    )
    cluster_worker.placer.report = replace(
        REPORT, nodes=(HEAD, replace(reported, gpus=(loaded,), latency_ms=7.5))
    )
    await cluster_entry.runtime_data.parts["cluster"].async_refresh()
    await wait_for_state(hass, f"{COMPUTE_GPU}_utilization", "95.0")
    assert float(hass.states.get(f"{COMPUTE_GPU}_memory_free").state) == pytest.approx(2.0)
    assert hass.states.get("sensor.hydra_compute_node_latency").state == "7.5"

    # Its Ray runs on, its worker does not answer: not usable, its GPUs' figures unknown.
    cluster_worker.placer.report = replace(
        REPORT, nodes=(HEAD, replace(reported, worker_up=False, latency_ms=None))
    )
    await cluster_entry.runtime_data.parts["cluster"].async_refresh()
    await wait_for_state(hass, COMPUTE_ONLINE, STATE_OFF)
    online = hass.states.get(COMPUTE_ONLINE)
    assert (online.attributes["ray"], online.attributes["worker"]) == (True, False)
    assert hass.states.get(f"{COMPUTE_GPU}_utilization").state == STATE_UNAVAILABLE
    assert hass.states.get(NODES).attributes["nodes"]["hydra-compute"]["worker_up"] is False


async def test_a_joined_worker_shows_no_nodes(
    hass: HomeAssistant, cluster_worker: ClusterWorker, cluster_entry: MockConfigEntry
) -> None:
    """A worker that joined a cluster knows only its head's address: no node devices and no
    Cluster nodes sensor (its head's entry shows them), rather than a count of 0."""
    await cluster_worker.restart(report=ClusterReport(mode="join", address="127.0.0.1:6379"))
    await setup_entry(hass, cluster_entry)
    assert "cluster" in cluster_entry.runtime_data.parts
    assert hass.states.get(NODES) is None
    assert not [
        device
        for device in dr.async_entries_for_config_entry(dr.async_get(hass), cluster_entry.entry_id)
        if device.name and device.name.endswith(" node")
    ]


async def test_lost_node_raises_a_repair_until_it_rejoins(
    hass: HomeAssistant, cluster_worker: ClusterWorker, cluster_entry: MockConfigEntry
) -> None:
    """A node lost is pushed at once: offline, one node fewer, a repair naming it; when it
    rejoins (a new Ray node id, the same worker) the repair goes and it is used again."""
    await setup_entry(hass, cluster_entry)
    assert cluster_worker.placer is not None
    cluster_worker.placer.send(
        "node_lost", replace(COMPUTE, alive=False, last_seen=1_800_000_100.0)
    )
    await wait_for_state(hass, COMPUTE_ONLINE, STATE_OFF)
    assert hass.states.get(NODES).state == "1"
    assert hass.states.get(COMPUTE_VRAM_FREE).state == STATE_UNAVAILABLE
    issue = _lost_issue(hass, cluster_entry, "hydra-compute")
    assert issue is not None
    assert issue.translation_key == "node_lost"
    assert issue.translation_placeholders["node"] == "hydra-compute"

    cluster_worker.placer.send("node_joined", replace(COMPUTE, node_id="c3" * 28))
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

    assert cluster_worker.placer is not None
    cluster_worker.placer.report = replace(cluster_worker.report, nodes=(HEAD, COMPUTE))
    await cluster_entry.runtime_data.parts["cluster"].async_refresh()
    await wait_until(lambda: _lost_issue(hass, cluster_entry, "hydra-compute") is None)
    assert hass.states.get(COMPUTE_ONLINE).state == STATE_ON


async def test_the_node_of_each_task(
    hass: HomeAssistant, cluster_worker: ClusterWorker, cluster_entry: MockConfigEntry
) -> None:
    """A task placed on a node names it in the queue's to-do item and in its event."""
    await setup_entry(hass, cluster_entry)
    succeeded = async_capture_events(hass, EVENT_TASK_SUCCEEDED)
    response = await hass.services.async_call(
        DOMAIN, "queue_task", {"kind": "test"}, blocking=True, return_response=True
    )
    task_id = response["task_id"]
    await wait_until(lambda: bool(succeeded))
    assert (succeeded[0].data["task_id"], succeeded[0].data["node"]) == (task_id, "hydra-compute")

    items = await hass.services.async_call(
        "todo", "get_items", target={"entity_id": QUEUE}, blocking=True, return_response=True
    )
    (item,) = items[QUEUE]["items"]
    assert item["description"] == f"#{task_id}: succeeded, attempt 1 of 1\nNode: hydra-compute"


async def test_a_task_no_node_has_room_for_waits_in_the_todo_list(
    hass: HomeAssistant, cluster_worker: ClusterWorker, cluster_entry: MockConfigEntry
) -> None:
    """While no node has the VRAM a task needs free, it waits, the to-do item saying why, no
    attempt spent; once a report shows the room, it runs."""
    await setup_entry(hass, cluster_entry)
    assert cluster_worker.placer is not None
    reason = "no node has 12000 MB of VRAM free now (hydra-compute: 4576 MB free)"
    cluster_worker.placer.held = reason
    response = await hass.services.async_call(
        DOMAIN, "queue_task", {"kind": "test"}, blocking=True, return_response=True
    )
    task_id = response["task_id"]

    async def item() -> dict[str, Any]:
        await cluster_entry.runtime_data.parts["tasks"].async_refresh()
        items = await hass.services.async_call(
            "todo", "get_items", target={"entity_id": QUEUE}, blocking=True, return_response=True
        )
        (only,) = items[QUEUE]["items"]
        return only  # type: ignore[no-any-return]

    async with asyncio.timeout(10):
        while (waiting := await item())["description"] != (
            f"#{task_id}: waiting, attempt 0 of 1\n{reason}"
        ):
            await asyncio.sleep(0.05)
    assert waiting["status"] == "needs_action"

    succeeded = async_capture_events(hass, EVENT_TASK_SUCCEEDED)
    cluster_worker.placer.held = None
    assert cluster_worker.scheduler is not None
    cluster_worker.scheduler.wake()  # as the placer does when a report shows the room
    await wait_until(lambda: bool(succeeded))
    assert (succeeded[0].data["task_id"], succeeded[0].data["node"]) == (task_id, "hydra-compute")


async def test_a_task_no_node_fits_is_refused(
    hass: HomeAssistant, cluster_worker: ClusterWorker, cluster_entry: MockConfigEntry
) -> None:
    """Queueing a task that no node could ever run is refused with the head's reason, and
    nothing is queued."""
    await setup_entry(hass, cluster_entry)
    assert cluster_worker.placer is not None
    cluster_worker.placer.unfit = (
        "No node of the cluster could ever run a test task: it needs 100000 MB of VRAM on a"
        " node labelled 'images' (nodes: hydra-compute: 16000 MB [images, comfyui])"
    )
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "queue_task", {"kind": "test"}, blocking=True, return_response=True
        )
    assert err.value.translation_key == "no_node_fits"
    assert "100000 MB of VRAM" in err.value.translation_placeholders["error"]
    assert cluster_worker.scheduler is not None
    assert await cluster_worker.scheduler.async_list(TaskQuery()) == []


# Ray marks a host dead after missed health checks (by default 5 of one every 3 s): checked more
# often here, the head sees a killed host lost within seconds.
_FAST_HEALTH_CHECKS = {
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "500",
    "RAY_health_check_failure_threshold": "3",
}
# Starting a Ray node takes seconds on a small machine; a lost one is seen within ~6 s.
RAY_DEADLINE_S = 60.0


def _start(worker: Worker) -> None:
    """Start a worker of the real cluster on the worker's Python (the harness starts its own)."""
    with (
        patch.object(sys, "executable", str(WORKER_PYTHON)),
        patch.dict(os.environ, _FAST_HEALTH_CHECKS),
    ):
        worker.start()


@pytest.fixture
def ray_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """The head worker h (8,000 MB of VRAM, labelled images) and the worker a (24,000 MB)
    joined to it: real processes, a real Ray cluster on 127.0.0.1."""
    address = f"{LOOPBACK}:{free_port()}"
    head = Worker(
        "h",
        tmp_path,
        *("--cluster", "head", "--cluster-address", address, "--cluster-vram-mb", "8000"),
        *("--cluster-labels", "images", "--cluster-poll-interval", "0.5"),
        # Only the kinds a routing rule names are placed over the cluster.
        *("--cluster-routes", "big=*"),
    )
    node = Worker(
        "a",
        tmp_path,
        *("--cluster", "join", "--cluster-address", address, "--cluster-vram-mb", "24000"),
    )
    cluster = Cluster(head, [node])
    try:
        _start(head)
        _start(node)
        cluster.wait_node("a", within=RAY_DEADLINE_S)
        yield cluster
    finally:
        # Killed, not stopped: a clean stop of a Ray head takes half a minute, and nothing of
        # the workers' state outlives the test.
        for worker in cluster.workers:
            if worker.process is not None and worker.process.poll() is None:
                worker.kill_host()


async def test_a_real_cluster_in_home_assistant(hass: HomeAssistant, ray_cluster: Cluster) -> None:
    """On a real Ray cluster: both hosts are devices under the head worker, a task too big for
    the head runs on a and says so in the to-do list, and killing a's host raises the repair,
    which goes when a comes back."""
    head = ray_cluster.head
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="h",
        data={CONF_URL: f"http://{LOOPBACK}:{head.port}", CONF_TOKEN: TOKEN},
    )
    await setup_entry(hass, entry)
    worker_id = entry.runtime_data.status.data.worker.worker_id
    devices = dr.async_get(hass)
    worker = devices.async_get_device_by_identifier((DOMAIN, worker_id), entry.entry_id)
    for name in ("h", "a"):
        node = devices.async_get_device_by_identifier(
            (DOMAIN, f"{worker_id}_node_{name}"), entry.entry_id
        )
        assert node is not None, name
        assert node.via_device_id == worker.id
    assert hass.states.get("sensor.h_cluster_nodes").state == "2"
    # 24,000 MiB, shown in GiB.
    assert float(hass.states.get("sensor.a_node_vram_offered").state) == 24_000 / 1024

    succeeded = async_capture_events(hass, EVENT_TASK_SUCCEEDED)
    response = await hass.services.async_call(
        DOMAIN, "queue_task", {"kind": "big"}, blocking=True, return_response=True
    )
    await wait_until(lambda: bool(succeeded), within=RAY_DEADLINE_S)
    assert succeeded[0].data["node"] == "a"
    assert ray_cluster.ran_on(response["task_id"]) == [("a", 1)]
    items = await hass.services.async_call(
        "todo",
        "get_items",
        target={"entity_id": "todo.h_hydra_queue"},
        blocking=True,
        return_response=True,
    )
    (item,) = items["todo.h_hydra_queue"]["items"]
    assert "Node: a" in item["description"].splitlines()

    await asyncio.to_thread(ray_cluster.nodes["a"].kill_host)
    await wait_until(lambda: _lost_issue(hass, entry, "a") is not None, within=RAY_DEADLINE_S)
    assert hass.states.get("binary_sensor.a_node_connectivity").state == STATE_OFF
    assert hass.states.get("sensor.h_cluster_nodes").state == "1"

    await asyncio.to_thread(_start, ray_cluster.nodes["a"])
    await wait_until(lambda: _lost_issue(hass, entry, "a") is None, within=RAY_DEADLINE_S)
    await wait_for_state(hass, "binary_sensor.a_node_connectivity", STATE_ON)
    assert hass.states.get("sensor.h_cluster_nodes").state == "2"
