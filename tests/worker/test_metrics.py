"""``/api/v1/metrics`` scraped from a real worker, as Prometheus scrapes it, and read back with
prometheus_client's own parser; and the Grafana board's queries against what a worker exports."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
import json
from pathlib import Path
import re
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
import pytest

from hydra_core.audit import AuditLog
from hydra_core.cluster.models import ClusterNode, ClusterReport
from hydra_core.cluster.node import RayNode
from hydra_core.cluster.options import ClusterOptions
from hydra_core.cluster.part import ClusterPart
from hydra_core.containers import ContainerService, EngineClient, ProtectionPolicy
from hydra_core.containers.models import HealingSettings
from hydra_core.containers.part import ContainersPart
from hydra_core.events import EventBus
from hydra_core.gpu import NvmlProbe, SimulatedProbe
from hydra_core.metrics.part import MetricsPart
from hydra_core.models import Actor
from hydra_core.scheduler import MaintenanceHandler, Scheduler, TaskStore
from hydra_core.scheduler.part import TasksPart
from hydra_core.timings import StageTimings
from hydra_core.voice.part import VoicePart
from hydra_core.worker.__main__ import build_parts
from hydra_core.worker.config import ConfigError, load_config
from hydra_core.worker.part import BuildContext, Part
from tests.cluster.standin import StandInPlacer
from tests.fake_nvml import FakeNvml, make_gpu
from tests.podman import PodmanEngine

from .conftest import WORKER, ServeWorker

TOKEN = "metrics-test-worker-token-0123"
METRICS_TOKEN = "metrics-only-token-for-prometheus"
BOARD = Path(__file__).parents[2] / "docs" / "grafana" / "hydra.json"
USER = Actor(type="user", id="u1", name="Ada")


async def scrape(
    http: aiohttp.ClientSession, url: str, token: str = TOKEN
) -> dict[str, list[Sample]]:
    """Every sample of a scrape by family name (a family without samples maps to [])."""
    async with http.get(
        f"{url}/api/v1/metrics", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "text/plain"
        text = await response.text()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def value(samples: Iterable[Sample], named: str | None = None, /, **labels: str) -> float:
    """The one sample whose labels include ``labels`` (and named ``named``, if given)."""
    found = [
        sample.value
        for sample in samples
        if labels.items() <= sample.labels.items() and named in (None, sample.name)
    ]
    assert len(found) == 1, (labels, found)
    return found[0]


async def test_gpus_read_at_scrape_time(
    serve_worker: ServeWorker, http: aiohttp.ClientSession
) -> None:
    nvml = FakeNvml([make_gpu(0, temperature=71), make_gpu(1, fan=80)])
    url = await serve_worker(
        token=TOKEN, probe=NvmlProbe(nvml), parts=[MetricsPart(bus=EventBus())]
    )
    metrics = await scrape(http, url)
    first, second = make_gpu(0).uuid, make_gpu(1).uuid
    assert value(metrics["nvidia_smi_temperature_gpu"], uuid=first) == 71
    assert value(metrics["nvidia_smi_temperature_gpu"], uuid=second) == 61
    assert value(metrics["nvidia_smi_fan_speed_ratio"], uuid=second) == pytest.approx(0.8)
    assert value(metrics["nvidia_smi_utilization_gpu_ratio"], uuid=first) == pytest.approx(0.37)
    assert value(metrics["nvidia_smi_memory_used_bytes"], uuid=first) == 6 * 1024**3
    assert value(metrics["nvidia_smi_memory_total_bytes"], uuid=first) == 24 * 1024**3
    assert value(metrics["nvidia_smi_power_draw_watts"], uuid=first) == 187.5
    assert value(metrics["nvidia_smi_enforced_power_limit_watts"], uuid=first) == 450
    info = metrics["nvidia_smi_gpu_info"]
    assert value(info, uuid=first, name="NVIDIA GeForce RTX 4090", index="0") == 1
    assert info[0].labels["driver_version"] == "570.86.15"

    # Read again at the next scrape, not kept from the first.
    nvml.gpus[0].temperature = 84
    metrics = await scrape(http, url)
    assert value(metrics["nvidia_smi_temperature_gpu"], uuid=first) == 84

    assert value(metrics["hydra_gpu_available"]) == 1
    assert value(metrics["hydra_worker_info"], name=WORKER.name, worker_id=WORKER.worker_id) == 1
    # A worker without a cluster part is a cluster of one, its families present but empty.
    assert value(metrics["hydra_cluster_node_up"], node=WORKER.name) == 1
    assert metrics["hydra_cluster_node_latency_seconds"] == []
    assert metrics["hydra_tasks"] == []
    assert metrics["hydra_container_state"] == []


async def test_a_finished_task_is_counted_in_the_histogram(
    serve_worker: ServeWorker, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    bus = EventBus()
    probe = SimulatedProbe(1, drift=False)
    scheduler = Scheduler(
        TaskStore(tmp_path / "tasks.db"),
        handlers=[MaintenanceHandler(tmp_path, tmp_path / "outputs")],
        probe=probe,
        bus=bus,
        data_dir=tmp_path,
    )
    url = await serve_worker(
        token=TOKEN, probe=probe, bus=bus, parts=[TasksPart(scheduler), MetricsPart(bus=bus)]
    )
    task = await scheduler.async_enqueue("maintenance", {"dry_run": True}, actor=USER)
    async with asyncio.timeout(5):
        while (await scheduler.async_get(task.id)).state != "succeeded":
            await asyncio.sleep(0.02)
    async with asyncio.timeout(5):
        while not (metrics := await scrape(http, url))["hydra_task_duration_seconds"]:
            await asyncio.sleep(0.02)
    durations = metrics["hydra_task_duration_seconds"]
    labels = {"kind": "maintenance", "state": "succeeded"}
    assert value(durations, "hydra_task_duration_seconds_count", **labels) == 1
    assert value(durations, "hydra_task_duration_seconds_bucket", le="+Inf", **labels) == 1
    assert value(metrics["hydra_tasks"], state="succeeded") == 1
    assert value(metrics["hydra_tasks"], state="queued") == 0
    assert value(metrics["hydra_scheduler_paused"]) == 0


async def test_stage_latencies_and_cluster_nodes(
    serve_worker: ServeWorker, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    timings = StageTimings()
    probe = SimulatedProbe(0)
    bus = EventBus()
    options = ClusterOptions(cluster="head", cluster_address="127.0.0.1:6379")
    head = ClusterNode(node_id="h1", name="head", address="127.0.0.1", head=True, latency_ms=2.5)
    report = ClusterReport(
        mode="head",
        address=options.cluster_address,
        nodes=(
            head,
            # Ray runs on gpu-2, its Hydra worker does not answer: down, its latency unknown.
            ClusterNode(node_id="g2", name="gpu-2", address="127.0.0.2", worker_up=False),
            ClusterNode(node_id="g3", name="gpu-3", address="127.0.0.3", latency_ms=4.0),
        ),
    )
    cluster = ClusterPart(
        options,
        node=RayNode(
            options,
            name="head",
            probe=probe,
            data_dir=tmp_path,
            api_url="http://127.0.0.1:1/api/v1",
            token=TOKEN,
        ),
        scheduler=Scheduler(
            TaskStore(tmp_path / "tasks.db"), handlers=[], probe=probe, bus=bus, data_dir=tmp_path
        ),
        placer=StandInPlacer(report, bus),  # type: ignore[arg-type]
        name="head",
    )
    url = await serve_worker(
        token=TOKEN,
        parts=[cluster, MetricsPart(bus=EventBus(), timed={"voice": timings})],
    )
    timings.record("stt", 0.42)
    timings.record("stt", 0.08)
    timings.record("tts_first_audio", 0.31)
    metrics = await scrape(http, url)
    stages = metrics["hydra_stage_duration_seconds"]
    stt = {"part": "voice", "stage": "stt"}
    assert value(stages, "hydra_stage_duration_seconds_count", **stt) == 2
    assert value(stages, "hydra_stage_duration_seconds_sum", **stt) == pytest.approx(0.5)
    assert value(stages, "hydra_stage_duration_seconds_bucket", le="0.1", **stt) == 1
    first_audio = {"part": "voice", "stage": "tts_first_audio"}
    assert value(stages, "hydra_stage_duration_seconds_count", **first_audio) == 1
    assert value(metrics["hydra_cluster_node_up"], node="gpu-2") == 0
    assert value(metrics["hydra_cluster_node_up"], node="gpu-3") == 1
    assert value(metrics["hydra_cluster_node_up"], node="head") == 1
    latency = metrics["hydra_cluster_node_latency_seconds"]
    assert {(sample.labels["target"], sample.value) for sample in latency} == {
        ("head", 0.0025),
        ("gpu-3", 0.004),
    }
    assert value(latency, source="head", target="gpu-3") == 0.004


async def test_container_states(
    loopback_sockets: None,
    podman: PodmanEngine,
    serve_worker: ServeWorker,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    podman.run("web", health_cmd="true", init=True)
    podman.healthcheck("web")
    podman.run("db-main", init=True)
    podman.run("job", exit_code=3)
    bus, audit = EventBus(), AuditLog(tmp_path / "audit.db")
    service = ContainerService(
        EngineClient(podman.docker_host),
        policy=ProtectionPolicy.from_patterns(("db-*",)),
        audit=audit,
        bus=bus,
        data_dir=tmp_path,
        healing=HealingSettings(enabled=False),
        interval_s=3600,
    )
    url = await serve_worker(
        token=TOKEN, audit=audit, bus=bus, parts=[ContainersPart(service), MetricsPart(bus=bus)]
    )
    metrics = await scrape(http, url)
    assert value(metrics["hydra_container_engine_up"]) == 1
    state = metrics["hydra_container_state"]
    assert value(state, container="web", state="running") == 1
    assert value(state, container="web", state="exited") == 0
    assert value(state, container="job", state="exited") == 1
    assert value(metrics["hydra_container_health"], container="web", health="healthy") == 1
    assert value(metrics["hydra_container_health"], container="job", health="none") == 1
    assert value(metrics["hydra_container_protected"], container="db-main") == 1
    assert value(metrics["hydra_container_protected"], container="web") == 0
    assert value(metrics["hydra_container_restarts"], container="web") == 0


async def test_tokens_and_switching_off(
    serve_worker: ServeWorker, http: aiohttp.ClientSession
) -> None:
    url = await serve_worker(token=TOKEN, parts=[MetricsPart(bus=EventBus(), token=METRICS_TOKEN)])
    async with http.get(f"{url}/api/v1/metrics") as response:
        assert response.status == 401
        assert (await response.json())["code"] == "unauthorized"
    async with http.get(
        f"{url}/api/v1/metrics", headers={"Authorization": "Bearer not-the-token-at-all"}
    ) as response:
        assert response.status == 401
    # Prometheus's token reads the metrics, and nothing else; the worker's reads both.
    assert "hydra_worker_info" in await scrape(http, url, METRICS_TOKEN)
    assert "hydra_worker_info" in await scrape(http, url, TOKEN)
    async with http.get(
        f"{url}/api/v1/status", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    ) as response:
        assert response.status == 401

    off = await serve_worker(token=TOKEN)
    async with http.get(
        f"{off}/api/v1/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as response:
        assert response.status == 404
        assert (await response.json())["code"] == "metrics_disabled"


def test_options_build_the_part(tmp_path: Path) -> None:
    def built(*argv: str) -> list[Part]:
        config = load_config(
            ["--data-dir", str(tmp_path), "--gpu-backend", "none", "--voice-port", "0", *argv], {}
        )
        return build_parts(
            BuildContext(
                config=config, probe=SimulatedProbe(0), bus=EventBus(), audit=AuditLog(None)
            ),
            [VoicePart, MetricsPart],
        )

    voice, metrics = built("--metrics-token", METRICS_TOKEN)
    assert isinstance(voice, VoicePart)
    assert isinstance(metrics, MetricsPart)
    assert metrics.route_tokens() == {"/metrics": METRICS_TOKEN}
    # The voice part's stages reach the metrics part's histogram.
    voice.service.timings.record("stt", 0.2)
    assert (
        metrics.registry.get_sample_value(
            "hydra_stage_duration_seconds_count", {"part": "voice", "stage": "stt"}
        )
        == 1
    )

    assert [part.name for part in built("--metrics", "false")] == ["voice"]
    with pytest.raises(ConfigError, match="metrics token must be at least 16"):
        built("--metrics-token", "short")


# The Grafana board -------------------------------------------------------------------------

_PROMQL_WORDS = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# What PromQL itself names: functions, aggregations, keywords, label names inside selectors.
_PROMQL_KEYWORDS = {
    "avg", "by", "count", "delta", "histogram_quantile", "increase", "irate", "le", "max",
    "min", "on", "rate", "sum", "without", "ignoring", "group_left", "topk", "avg_over_time",
    "max_over_time", "clamp_min", "deriv",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: words outside ``{...}``, ``[...]`` and
    strings that are not PromQL's own and not followed by ``(``."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\$\w+", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left)\s*\([^)]*\)", "", expr)
    names = set()
    for match in _PROMQL_WORDS.finditer(expr):
        word = match.group()
        following = expr[match.end() :].lstrip()[:1]
        if word in _PROMQL_KEYWORDS or following == "(" or word.isdigit():
            continue
        names.add(word)
    return names


def board_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside rows included."""
    panels = []
    for panel in board["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


async def test_every_board_query_names_an_exported_metric(
    serve_worker: ServeWorker, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    board = json.loads(BOARD.read_text())
    assert board["title"] == "Hydra"
    assert board["schemaVersion"] >= 36
    datasource_input = {item["name"] for item in board["__inputs"] if item["type"] == "datasource"}
    assert datasource_input == {"DS_PROMETHEUS"}
    panels = [panel for panel in board_panels(board) if panel["type"] != "row"]
    ids = [panel["id"] for panel in board_panels(board)]
    assert len(ids) == len(set(ids))
    for panel in board_panels(board):
        grid = panel["gridPos"]
        assert set(grid) == {"h", "w", "x", "y"}, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]

    bus = EventBus()
    probe = NvmlProbe(FakeNvml([make_gpu(0)]))
    scheduler = Scheduler(
        TaskStore(tmp_path / "tasks.db"), handlers=[], probe=probe, bus=bus, data_dir=tmp_path
    )
    url = await serve_worker(
        token=TOKEN,
        probe=probe,
        bus=bus,
        parts=[TasksPart(scheduler), MetricsPart(bus=bus)],
    )
    async with http.get(
        f"{url}/api/v1/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as response:
        families = list(text_string_to_metric_families(await response.text()))
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    exported = {family.name for family in families} | {
        family.name + suffix for family in families for suffix in suffixes.get(family.type, ())
    }

    queried: set[str] = set()
    titles = " ".join(panel["title"] for panel in panels)
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, (panel["title"], target["expr"])
            assert names <= exported, (panel["title"], names - exported)
            queried |= names
    # The seed's panels: temperatures in °C and °F, VRAM, latency histograms, disk I/O,
    # latency between nodes; and the queue and containers.
    for title in ("°C", "°F", "VRAM", "latency", "Disk", "between nodes", "Queue", "Containers"):
        assert title in titles, title
    for name in (
        "nvidia_smi_temperature_gpu",
        "nvidia_smi_memory_used_bytes",
        "hydra_model_vram_bytes",
        "hydra_stage_duration_seconds_bucket",
        "hydra_task_duration_seconds_bucket",
        "hydra_host_disk_read_bytes_total",
        "hydra_cluster_node_latency_seconds",
        "hydra_container_state",
        "hydra_tasks",
    ):
        assert name in queried, name
