"""The night report: what a worker did since a given time, read as Home Assistant reads it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import math
from pathlib import Path
import time
from typing import Any, ClassVar

import aiohttp
import pytest

from hydra_core.audit import AuditLog
from hydra_core.client import HydraClient
from hydra_core.containers import ContainerService, EngineClient, ProtectionPolicy
from hydra_core.containers.client import ContainersClient
from hydra_core.containers.models import HealingSettings
from hydra_core.containers.part import ContainersPart
from hydra_core.events import EventBus
from hydra_core.gpu import NvmlProbe
from hydra_core.gpu.history import GpuHistory
from hydra_core.gpu.part import GpuPart
from hydra_core.models import Actor
from hydra_core.scheduler import (
    PermanentTaskError,
    Scheduler,
    TaskContext,
    TaskHandler,
    TaskStore,
)
from hydra_core.scheduler.client import TasksClient
from hydra_core.scheduler.models import Task
from hydra_core.scheduler.part import TasksPart
from tests.fake_nvml import FakeNvml, make_gpu
from tests.podman import PodmanEngine
from tests.worker_identity import INFO, TOKEN, USER

from .conftest import ServeWorker, run_healthy_sick_and_exited

HEALER = Actor(type="self_heal")


class Chore(TaskHandler):
    """Finishes at once; fails for good when the payload says so."""

    kind: ClassVar[str] = "chore"
    max_attempts: ClassVar[int] = 1

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    async def run(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        if payload.get("fail"):
            raise PermanentTaskError("the disk is full")
        return {"name": payload["name"]}


@dataclass
class Worker:
    """A worker with a queue, GPU samples and an audit log; its innards for the test's steps."""

    client: HydraClient
    url: str
    audit: AuditLog
    history: GpuHistory


@pytest.fixture
async def worker(serve_worker: ServeWorker, http: aiohttp.ClientSession, tmp_path: Path) -> Worker:
    bus = EventBus()
    probe = NvmlProbe(FakeNvml([make_gpu(0), make_gpu(1, name="NVIDIA RTX A6000")]))
    scheduler = Scheduler(
        TaskStore(tmp_path / "tasks.db"), handlers=[Chore()], probe=probe, bus=bus, data_dir=None
    )
    audit = AuditLog(None)
    history = GpuHistory(None, probe, interval_s=3600)  # one sample at start; the test takes more
    url = await serve_worker(
        info=INFO,
        token=TOKEN,
        probe=probe,
        audit=audit,
        bus=bus,
        parts=[GpuPart(history), TasksPart(scheduler)],
    )
    async with asyncio.timeout(5):
        while not await history.async_summary(0, time.time()):
            await asyncio.sleep(0.01)
    return Worker(HydraClient(http, url, TOKEN), url, audit, history)


async def _run(client: HydraClient, name: str, *, fail: bool = False) -> Task:
    task = await TasksClient(client).async_queue_task(
        "chore", {"name": name, "fail": fail}, actor=USER
    )
    async with asyncio.timeout(5):
        while not (task := await TasksClient(client).async_task(task.id)).finished:
            await asyncio.sleep(0.01)
    return task


async def test_the_report_holds_what_happened_in_the_span(worker: Worker) -> None:
    client = worker.client
    await _run(client, "evening")
    await worker.audit.async_record(
        actor=HEALER, container="db", action="restart", result="ok", reason="unhealthy"
    )
    since = time.time()
    succeeded = await _run(client, "backup")
    failed = await _run(client, "upscale", fail=True)
    healed = await worker.audit.async_record(
        actor=HEALER, container="web", action="restart", result="ok", reason="unhealthy"
    )
    refused = await worker.audit.async_record(
        actor=USER, container="vault", action="stop", result="refused", reason="protected"
    )
    await worker.history.async_sample()
    await asyncio.sleep(0.05)
    await worker.history.async_sample()
    await TasksClient(client).async_update_scheduler(paused=True)
    waiting = await TasksClient(client).async_queue_task("chore", {"name": "later"}, actor=USER)

    report = await TasksClient(client).async_report(since)

    assert report.since == pytest.approx(since, abs=1e-6)
    assert since < report.until <= time.time()
    assert [(task.id, task.state) for task in report.tasks] == [
        (succeeded.id, "succeeded"),
        (failed.id, "failed"),
    ]
    assert report.tasks[1].error == "the disk is full"
    assert report.waiting == 1
    assert [entry.id for entry in report.healing] == [healed.id, refused.id]
    assert (report.healing[0].container, report.healing[0].actor) == ("web", HEALER)
    assert [(gpu.index, gpu.name, gpu.samples) for gpu in report.gpus] == [
        (0, "NVIDIA GeForce RTX 4090", 2),
        (1, "NVIDIA RTX A6000", 2),
    ]
    gpu = report.gpus[0]
    assert (gpu.peak_temperature_c, gpu.mean_utilization_percent) == (61, 37)
    assert 0 < gpu.energy_wh < 187.5 * 5 / 3600  # 187.5 W for the moments between samples
    assert (report.unhealthy, report.containers_available) == ((), False)

    # Nothing has happened since; the queued task still waits.
    later = await TasksClient(client).async_report(time.time())
    assert (later.tasks, later.gpus, later.healing) == ((), (), ())
    assert later.waiting == 1
    await TasksClient(client).async_cancel_task(waiting.id)
    assert (await TasksClient(client).async_report(since)).waiting == 0


async def test_the_whole_past_is_one_span(worker: Worker) -> None:
    await _run(worker.client, "first")
    report = await TasksClient(worker.client).async_report(0)
    assert [task.payload["name"] for task in report.tasks] == ["first"]
    assert [gpu.samples for gpu in report.gpus] == [1, 1]  # the sample taken at start


@pytest.fixture
async def bare_url(serve_worker: ServeWorker) -> str:
    """A worker with no queue, no GPU samples and no container engine."""
    return await serve_worker(info=INFO, token=TOKEN)


async def test_a_worker_without_queue_gpus_or_containers_still_reports(
    http: aiohttp.ClientSession, bare_url: str
) -> None:
    report = await TasksClient(HydraClient(http, bare_url, TOKEN)).async_report(
        time.time() - 12 * 3600
    )
    assert (report.tasks, report.waiting, report.gpus) == ((), 0, ())
    assert (report.healing, report.unhealthy, report.containers_available) == ((), (), False)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("", "since is required"),
        ("?since=", "since must be a number"),
        ("?since=yesterday", "since must be a number, not 'yesterday'"),
        ("?since=nan", "since must be a finite number"),
        ("?since=inf", "since must be a finite number"),
        ("?since=-1", "since must be between 0"),
        ("?since=FUTURE", "since must not be in the future"),
        ("?since=1&until=2", "Unknown query parameter(s): until"),
    ],
)
async def test_a_bad_since_is_a_clear_400(
    http: aiohttp.ClientSession, bare_url: str, query: str, says: str
) -> None:
    query = query.replace("FUTURE", str(math.ceil(time.time()) + 3600))
    async with http.get(
        f"{bare_url}/api/v1/report{query}", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as response:
        body = await response.json()
    assert response.status == 400
    assert body["code"] == "invalid_query"
    assert says in body["message"]


async def test_the_report_needs_the_token(http: aiohttp.ClientSession, bare_url: str) -> None:
    async with http.get(f"{bare_url}/api/v1/report?since=0") as response:
        assert response.status == 401


async def test_containers_in_trouble_and_their_audit(
    loopback_sockets: None,
    podman: PodmanEngine,
    serve_worker: ServeWorker,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    """Against the real engine: what is broken now, and what was done about it overnight."""
    run_healthy_sick_and_exited(podman)
    bus = EventBus()
    audit = AuditLog(tmp_path / "audit.db")
    service = ContainerService(
        EngineClient(podman.docker_host),
        policy=ProtectionPolicy.from_patterns(()),
        audit=audit,
        bus=bus,
        data_dir=tmp_path,
        healing=HealingSettings(enabled=False),
        interval_s=3600,
    )
    url = await serve_worker(
        info=INFO, token=TOKEN, audit=audit, bus=bus, parts=[ContainersPart(service)]
    )
    client = HydraClient(http, url, TOKEN)
    since = time.time()
    restart = await ContainersClient(client).async_container_action(
        "web", "restart", USER, "night check"
    )

    report = await TasksClient(client).async_report(since)

    assert report.containers_available
    assert report.unhealthy == ("job", "sick")
    assert [entry.id for entry in report.healing] == [restart.id]
    assert (report.healing[0].container, report.healing[0].action) == ("web", "restart")
    assert report.tasks == ()
