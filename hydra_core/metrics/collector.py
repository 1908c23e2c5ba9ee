"""What ``/api/v1/metrics`` says: every value read from the parts at scrape time.

A scrape reads the worker once (``read_snapshot``: the GPU probe, the container service's last
view, the queue's counts, the arbiter's loaded models, ``/proc/diskstats``, the cluster) and
``SnapshotCollector`` turns that reading into metric families; nothing is copied into gauges in
between, so a value is never staler than the part's own. Only the histograms (task durations,
stage latencies) are kept, by the metrics part, since a scrape cannot see what ended between two.

GPU metrics follow utkuozdemir/nvidia_gpu_exporter's names (``nvidia_smi_*``, ratios 0-1, a
``uuid`` label, ``nvidia_smi_gpu_info`` carrying the name), so its Grafana boards and alerts work
on a Hydra worker. NVML gives Hydra no clocks, so ``nvidia_smi_clocks_*`` are absent.

The cluster part (``ClusterPart.cluster_metrics``) supplies the nodes and the round trip from the
head to each. Without it the worker is a cluster of one: its own node, up, and no latencies. The
families are always present, so a board built on them shows "no data" rather than an error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
import logging

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..arbiter.models import ModelsStatus
from ..arbiter.part import ModelsPart
from ..cluster.part import ClusterPart
from ..containers.models import CONTAINER_HEALTH, CONTAINER_STATES, ContainerReport
from ..containers.part import ContainersPart
from ..gpu.models import GpuReport
from ..models import WorkerInfo
from ..scheduler.models import TASK_STATES
from ..scheduler.part import TasksPart
from ..worker.part import Part
from ..worker.state import WorkerState
from .diskstats import DiskIo, read_diskstats
from .models import ClusterMetrics, NodeHealth

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """The worker as one scrape read it; None: the part is not running or could not be read."""

    info: WorkerInfo
    started_at: float
    gpu: GpuReport
    disks: list[DiskIo] = field(default_factory=list)
    containers: ContainerReport | None = None
    tasks: dict[str, int] | None = None
    scheduler_paused: bool | None = None
    models: ModelsStatus | None = None
    cluster: ClusterMetrics = field(default_factory=ClusterMetrics)


async def read_snapshot(state: WorkerState, parts: Iterable[Part]) -> Snapshot:
    """Read every source once; a part that fails is left out of this scrape, not the scrape."""
    running = list(parts)
    gpu = await state.probe.async_read()
    disks = await asyncio.get_running_loop().run_in_executor(None, read_diskstats)
    containers = tasks = paused = models = None
    cluster = ClusterMetrics(nodes=(NodeHealth(node=state.info.name, up=True),))
    for part in running:
        try:
            if isinstance(part, ContainersPart):
                containers = part.service.report()
            elif isinstance(part, TasksPart):
                tasks = await part.service.async_counts()
                paused = part.service.settings.paused
            elif isinstance(part, ModelsPart):
                models = await part.service.async_status(loaded_only=False)
            elif isinstance(part, ClusterPart):
                cluster = await part.cluster_metrics()
        except Exception:
            _LOGGER.exception("Metrics: could not read the %s part", part.name)
    return Snapshot(
        info=state.info,
        started_at=state.started_at,
        gpu=gpu,
        disks=disks,
        containers=containers,
        tasks=tasks,
        scheduler_paused=paused,
        models=models,
        cluster=cluster,
    )


class SnapshotCollector(Collector):
    """The metric families of one snapshot."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        """Every family; those of a part not running are there, without samples."""
        yield from self._worker()
        yield from self._gpus()
        yield from self._disks()
        yield from self._containers()
        yield from self._tasks()
        yield from self._models()
        yield from self._cluster()

    def _worker(self) -> Iterator[Metric]:
        info = self._snapshot.info
        family = GaugeMetricFamily(
            "hydra_worker_info", "The worker: its id, name and version", labels=_WORKER
        )
        family.add_metric([info.worker_id, info.name, info.version], 1)
        yield family
        yield GaugeMetricFamily(
            "hydra_worker_start_time_seconds",
            "When the worker started, unix time",
            value=self._snapshot.started_at,
        )

    def _gpus(self) -> Iterator[Metric]:
        report = self._snapshot.gpu
        yield GaugeMetricFamily(
            "hydra_gpu_available",
            "1 when the worker can read its GPUs",
            value=1 if report.available else 0,
        )
        info = GaugeMetricFamily(
            "nvidia_smi_gpu_info",
            "A GPU: its uuid, name, index and driver",
            labels=["uuid", "name", "index", "driver_version"],
        )
        readings = {name: GaugeMetricFamily(name, text, labels=["uuid"]) for name, text, _ in _GPU}
        for gpu in report.gpus:
            info.add_metric([gpu.uuid, gpu.name, str(gpu.index), report.driver_version or ""], 1)
            for name, _text, read in _GPU:
                value = getattr(gpu, read[0])
                if value is not None:
                    readings[name].add_metric([gpu.uuid], value * read[1])
        yield info
        yield from readings.values()

    def _disks(self) -> Iterator[Metric]:
        families = [
            (CounterMetricFamily(name, text, labels=["device"]), attribute)
            for name, text, attribute in _DISK
        ]
        for disk in self._snapshot.disks:
            for family, attribute in families:
                family.add_metric([disk.device], getattr(disk, attribute))
        yield from (family for family, _ in families)

    def _containers(self) -> Iterator[Metric]:
        report = self._snapshot.containers
        engine = GaugeMetricFamily(
            "hydra_container_engine_up", "1 when the worker can read its container engine"
        )
        state = GaugeMetricFamily(
            "hydra_container_state",
            "1 for the state each container is in, 0 for the others",
            labels=["container", "state"],
        )
        health = GaugeMetricFamily(
            "hydra_container_health",
            "1 for each container's health check result (none: it has no check), 0 for the others",
            labels=["container", "health"],
        )
        restarts = CounterMetricFamily(
            "hydra_container_restarts", "Restarts the engine counted", labels=["container"]
        )
        protected = GaugeMetricFamily(
            "hydra_container_protected",
            "1 when Hydra never stops or restarts the container",
            labels=["container"],
        )
        cpu = GaugeMetricFamily(
            "hydra_container_cpu_percent", "CPU use, percent of one core", labels=["container"]
        )
        memory = GaugeMetricFamily(
            "hydra_container_memory_used_bytes", "Memory used", labels=["container"]
        )
        if report is not None:
            engine.add_metric([], 1 if report.engine_available else 0)
            for container in report.containers:
                name = container.name
                for known in dict.fromkeys((*CONTAINER_STATES, container.state)):
                    state.add_metric([name, known], 1 if known == container.state else 0)
                for known in dict.fromkeys((*CONTAINER_HEALTH, container.health)):
                    health.add_metric([name, known], 1 if known == container.health else 0)
                restarts.add_metric([name], container.restart_count)
                protected.add_metric([name], 1 if container.protected else 0)
                if container.cpu_percent is not None:
                    cpu.add_metric([name], container.cpu_percent)
                if container.memory_used_bytes is not None:
                    memory.add_metric([name], container.memory_used_bytes)
        yield from (engine, state, health, restarts, protected, cpu, memory)

    def _tasks(self) -> Iterator[Metric]:
        tasks = GaugeMetricFamily(
            "hydra_tasks",
            "Tasks queued, waiting or running now; succeeded, failed or cancelled since midnight",
            labels=["state"],
        )
        paused = GaugeMetricFamily("hydra_scheduler_paused", "1 while autonomous work is paused")
        if self._snapshot.tasks is not None:
            for name in TASK_STATES:
                tasks.add_metric([name], self._snapshot.tasks.get(name, 0))
        if self._snapshot.scheduler_paused is not None:
            paused.add_metric([], 1 if self._snapshot.scheduler_paused else 0)
        yield from (tasks, paused)

    def _models(self) -> Iterator[Metric]:
        labels = ["model", "backend", "node"]
        loaded = GaugeMetricFamily(
            "hydra_model_loaded", "1 for a model loaded now, 0 for one known but not", labels=labels
        )
        vram = GaugeMetricFamily(
            "hydra_model_vram_bytes", "VRAM a loaded model takes", labels=labels
        )
        total = GaugeMetricFamily(
            "hydra_models_vram_total_bytes", "VRAM of the GPU the arbiter keeps room on"
        )
        free = GaugeMetricFamily(
            "hydra_models_vram_free_bytes", "VRAM the arbiter counts as free on its GPU"
        )
        status = self._snapshot.models
        if status is not None:
            for model in status.models:
                key = [model.id, model.backend, model.node]
                loaded.add_metric(key, 1 if model.loaded else 0)
                if model.loaded and model.vram_bytes is not None:
                    vram.add_metric(key, model.vram_bytes)
            if status.vram_total_bytes is not None:
                total.add_metric([], status.vram_total_bytes)
            if status.vram_free_bytes is not None:
                free.add_metric([], status.vram_free_bytes)
        yield from (loaded, vram, total, free)

    def _cluster(self) -> Iterator[Metric]:
        cluster = self._snapshot.cluster
        up = GaugeMetricFamily(
            "hydra_cluster_node_up",
            "1 for a node that answers, 0 for one that does not",
            labels=["node"],
        )
        latency = GaugeMetricFamily(
            "hydra_cluster_node_latency_seconds",
            "Round trip between two nodes, as last measured",
            labels=["source", "target"],
        )
        for node in cluster.nodes:
            up.add_metric([node.node], 1 if node.up else 0)
        for link in cluster.latencies:
            latency.add_metric([link.source, link.target], link.seconds)
        yield from (up, latency)


_WORKER = ["worker_id", "name", "version"]

# nvidia_gpu_exporter's name, its help, and the GpuInfo field with the factor to its unit.
_GPU: tuple[tuple[str, str, tuple[str, float]], ...] = (
    ("nvidia_smi_temperature_gpu", "GPU temperature, °C", ("temperature_c", 1)),
    ("nvidia_smi_utilization_gpu_ratio", "GPU utilisation, 0-1", ("utilization_percent", 0.01)),
    (
        "nvidia_smi_utilization_memory_ratio",
        "Memory controller utilisation, 0-1",
        ("memory_utilization_percent", 0.01),
    ),
    ("nvidia_smi_memory_total_bytes", "VRAM in all", ("memory_total_bytes", 1)),
    ("nvidia_smi_memory_used_bytes", "VRAM used", ("memory_used_bytes", 1)),
    ("nvidia_smi_memory_free_bytes", "VRAM free", ("memory_free_bytes", 1)),
    ("nvidia_smi_power_draw_watts", "Power draw", ("power_draw_w", 1)),
    ("nvidia_smi_enforced_power_limit_watts", "Power limit in force", ("power_limit_w", 1)),
    ("nvidia_smi_power_default_limit_watts", "Default power limit", ("power_limit_default_w", 1)),
    ("nvidia_smi_power_min_limit_watts", "Lowest settable power limit", ("power_limit_min_w", 1)),
    ("nvidia_smi_power_max_limit_watts", "Highest settable power limit", ("power_limit_max_w", 1)),
    ("nvidia_smi_fan_speed_ratio", "Fan speed, 0-1", ("fan_percent", 0.01)),
)

# Counter name (without _total), help, DiskIo field.
_DISK: tuple[tuple[str, str, str], ...] = (
    ("hydra_host_disk_reads_completed", "Reads completed since boot", "reads"),
    ("hydra_host_disk_read_bytes", "Bytes read since boot", "read_bytes"),
    ("hydra_host_disk_writes_completed", "Writes completed since boot", "writes"),
    ("hydra_host_disk_written_bytes", "Bytes written since boot", "written_bytes"),
    ("hydra_host_disk_io_time_seconds", "Seconds spent doing I/O since boot", "io_time_s"),
)
