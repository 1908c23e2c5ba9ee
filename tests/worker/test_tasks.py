"""The task queue through the worker's API, and what a crash does to it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
import signal
import subprocess
import sys
from typing import Any

import aiohttp
import pytest

from hydra_core.client import HydraApiError, HydraClient
from hydra_core.events import EventBus
from hydra_core.gpu import NoGpuProbe
from hydra_core.models import Actor
from hydra_core.scheduler import MaintenanceHandler, Scheduler, TaskStore
from hydra_core.scheduler.client import TasksClient
from hydra_core.scheduler.part import TasksPart

from .conftest import ServeWorker
from .test_cli import free_port, wait_for_health, worker_env

TOKEN = "tasks-test-token-0123456789"
USER = Actor(type="user", id="u1", name="Ada")
TASK_WORKER = Path(__file__).with_name("task_worker.py")


@pytest.fixture
async def client(
    serve_worker: ServeWorker, http: aiohttp.ClientSession, tmp_path: Path
) -> HydraClient:
    bus = EventBus()
    probe = NoGpuProbe()
    scheduler = Scheduler(
        TaskStore(tmp_path / "tasks.db"),
        handlers=[MaintenanceHandler(tmp_path, tmp_path / "outputs")],
        probe=probe,
        bus=bus,
        data_dir=tmp_path,
    )
    url = await serve_worker(token=TOKEN, probe=probe, bus=bus, parts=[TasksPart(scheduler)])
    return HydraClient(http, url, TOKEN)


async def test_queue_run_and_read_back(client: HydraClient) -> None:
    task = await TasksClient(client).async_queue_task(
        "maintenance", {"dry_run": True}, actor=USER, priority=70
    )
    assert (task.kind, task.priority, task.actor) == ("maintenance", 70, USER)
    async with asyncio.timeout(5):
        while (task := await TasksClient(client).async_task(task.id)).state != "succeeded":
            await asyncio.sleep(0.02)
    assert task.result["dry_run"] is True
    assert task.progress == 100
    assert [t.id for t in await TasksClient(client).async_tasks(state="succeeded")] == [task.id]
    state = await TasksClient(client).async_scheduler()
    assert state.kinds == ("maintenance",)
    assert state.counts["succeeded"] == 1
    assert state.settings.max_concurrent == 3


async def test_bad_input_is_clear_and_changes_nothing(client: HydraClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"kind": "research", "payload": {}}, "unknown_kind"),
        ({"kind": "maintenance", "payload": {"retention_days": -1}}, "invalid_payload"),
        ({"kind": "maintenance", "payload": {}, "priority": -5}, "invalid_priority"),
    ]
    for request, code in cases:
        with pytest.raises(HydraApiError) as caught:
            await TasksClient(client).async_queue_task(
                request["kind"], request["payload"], actor=USER, priority=request.get("priority")
            )
        assert (caught.value.status, caught.value.code) == (400, code)
    with pytest.raises(HydraApiError) as caught:
        await TasksClient(client).async_update_scheduler(max_concurrent=0)
    assert caught.value.code == "invalid_setting"
    with pytest.raises(HydraApiError) as caught:
        await TasksClient(client).async_task(12345)
    assert caught.value.code == "task_not_found"
    assert await TasksClient(client).async_tasks() == []

    done = await TasksClient(client).async_queue_task("maintenance", {}, actor=USER)
    async with asyncio.timeout(5):
        while (await TasksClient(client).async_task(done.id)).state != "succeeded":
            await asyncio.sleep(0.02)
    with pytest.raises(HydraApiError) as caught:
        await TasksClient(client).async_cancel_task(done.id)
    assert (caught.value.status, caught.value.code) == (409, "task_finished")
    assert (await TasksClient(client).async_task(done.id)).state == "succeeded"


async def test_pause_holds_work_and_resume_runs_it(client: HydraClient) -> None:
    state = await TasksClient(client).async_update_scheduler(paused=True)
    assert state.settings.paused
    task = await TasksClient(client).async_queue_task("maintenance", {}, actor=USER)
    await asyncio.sleep(0.2)
    assert (await TasksClient(client).async_task(task.id)).state == "queued"
    await TasksClient(client).async_update_scheduler(paused=False)
    async with asyncio.timeout(5):
        while (await TasksClient(client).async_task(task.id)).state != "succeeded":
            await asyncio.sleep(0.02)


@pytest.fixture
def crash_worker(tmp_path: Path) -> Iterator[Any]:
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        log = tmp_path / f"worker-{len(processes)}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, str(TASK_WORKER), str(port), str(tmp_path / "data"), TOKEN],
                env=worker_env(),
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        processes.append(process)
        wait_for_health(process, port, log)
        return process, port

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=5)


@pytest.mark.usefixtures("loopback_sockets")
async def test_sigkill_mid_task_loses_and_duplicates_nothing(crash_worker: Any) -> None:
    """kill -9 while a task runs: after a restart it is queued again, its attempt counted."""
    process, port = crash_worker()
    async with aiohttp.ClientSession() as http:
        client = HydraClient(http, f"http://127.0.0.1:{port}", TOKEN)
        await TasksClient(client).async_update_scheduler(max_concurrent=1)
        slow = await TasksClient(client).async_queue_task(
            "slow", {"seconds": 30}, actor=USER, priority=90
        )
        behind = [
            (await TasksClient(client).async_queue_task("slow", {"seconds": 0.1}, actor=USER)).id
            for _ in range(3)
        ]
        async with asyncio.timeout(5):
            while (await TasksClient(client).async_task(slow.id)).progress == 0:
                await asyncio.sleep(0.05)
        # Paused (a setting the worker keeps), so the restarted worker shows what it recovered.
        await TasksClient(client).async_update_scheduler(paused=True)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=5)

    _process, port = crash_worker()
    async with aiohttp.ClientSession() as http:
        client = HydraClient(http, f"http://127.0.0.1:{port}", TOKEN)
        recovered = await TasksClient(client).async_task(slow.id)
        assert (recovered.state, recovered.attempts) == ("queued", 1)
        assert {(await TasksClient(client).async_task(i)).state for i in behind} == {"queued"}
        await TasksClient(client).async_cancel_task(slow.id)
        await TasksClient(client).async_update_scheduler(paused=False)
        async with asyncio.timeout(10):
            while {(await TasksClient(client).async_task(i)).state for i in behind} != {
                "succeeded"
            }:
                await asyncio.sleep(0.05)
        tasks = await TasksClient(client).async_tasks()
        # Nothing lost, nothing run twice.
        assert sorted(task.id for task in tasks) == sorted([slow.id, *behind])
        assert all(task.attempts == 1 for task in tasks)


@pytest.mark.usefixtures("loopback_sockets")
async def test_graceful_stop_puts_a_running_task_back_uncounted(crash_worker: Any) -> None:
    """SIGTERM: a task that cannot finish within the stop timeout goes back to the queue."""
    process, port = crash_worker()
    async with aiohttp.ClientSession() as http:
        client = HydraClient(http, f"http://127.0.0.1:{port}", TOKEN)
        slow = await TasksClient(client).async_queue_task("slow", {"seconds": 30}, actor=USER)
        async with asyncio.timeout(5):
            while (await TasksClient(client).async_task(slow.id)).progress == 0:
                await asyncio.sleep(0.05)
        await TasksClient(client).async_update_scheduler(paused=True)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0

    _process, port = crash_worker()
    async with aiohttp.ClientSession() as http:
        client = HydraClient(http, f"http://127.0.0.1:{port}", TOKEN)
        back = await TasksClient(client).async_task(slow.id)
        assert (back.state, back.attempts, back.progress) == ("queued", 0, 0)
