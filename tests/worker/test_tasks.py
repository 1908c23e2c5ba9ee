"""The task queue through the worker's API, and what a crash does to it."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
import signal
import subprocess
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
from .test_cli import START_TIMEOUT_S
from .worker_processes import TOKEN, WorkerProcesses

USER = Actor(type="user", id="u1", name="Ada")


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
    # Beyond SQLite's integers (found by the API fuzz test as a 500): no such task can exist.
    for call in ("async_task", "async_cancel_task", "async_retry_task"):
        with pytest.raises(HydraApiError) as caught:
            await getattr(TasksClient(client), call)(2**63)
        assert (caught.value.status, caught.value.code) == (404, "task_not_found"), call
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


async def _until_state(tasks: TasksClient, task_ids: list[int], state: str) -> None:
    async with asyncio.timeout(15):
        while {(await tasks.async_task(i)).state for i in task_ids} != {state}:
            await asyncio.sleep(0.05)


async def test_sigkill_mid_task_runs_it_again_exactly_once(
    worker_processes: WorkerProcesses,
) -> None:
    """kill -9 while a task runs: after a restart it runs once more, and every task behind it
    once, as the handler's own log shows."""
    _process, port, _log = worker_processes.start()
    async with worker_processes.tasks(port) as tasks:
        await tasks.async_update_scheduler(max_concurrent=1)
        first = await tasks.async_queue_task("gate", {}, actor=USER, priority=90)
        behind = [(await tasks.async_queue_task("gate", {}, actor=USER)).id for _ in range(3)]
        await worker_processes.started(first.id, 1)
        # Paused (a setting the worker keeps), so the restarted worker shows what it recovered.
        await tasks.async_update_scheduler(paused=True)
    port = worker_processes.kill9_and_restart()
    async with worker_processes.tasks(port) as tasks:
        recovered = await tasks.async_task(first.id)
        assert (recovered.state, recovered.attempts) == ("queued", 1)
        assert {(await tasks.async_task(i)).state for i in behind} == {"queued"}
        worker_processes.release(first.id, *behind)
        await tasks.async_update_scheduler(paused=False)
        await _until_state(tasks, [first.id, *behind], "succeeded")
        listed = await tasks.async_tasks()
    # Nothing lost, nothing run twice: the killed attempt, then one whole run.
    assert sorted(task.id for task in listed) == sorted([first.id, *behind])
    assert worker_processes.runs(first.id) == [("start", 1), ("start", 2), ("done", 2)]
    for task_id in behind:
        assert worker_processes.runs(task_id) == [("start", 1), ("done", 1)]


async def test_sigkill_on_the_last_attempt_fails_the_task(
    worker_processes: WorkerProcesses,
) -> None:
    """A task killed on its last attempt fails, saying why, and never runs again."""
    _process, port, _log = worker_processes.start()
    async with worker_processes.tasks(port) as tasks:
        last = await tasks.async_queue_task("gate", {}, actor=USER, max_attempts=1)
        await worker_processes.started(last.id, 1)
    port = worker_processes.kill9_and_restart()
    async with worker_processes.tasks(port) as tasks:
        failed = await tasks.async_task(last.id)
        assert failed.state == "failed"
        assert failed.error == "Interrupted by a worker restart on its last attempt"
        # A task queued after it runs, so the dispatcher had its chance to run the failed one.
        after = await tasks.async_queue_task("gate", {}, actor=USER)
        worker_processes.release(last.id, after.id)
        await _until_state(tasks, [after.id], "succeeded")
        assert (await tasks.async_task(last.id)).state == "failed"
    assert worker_processes.runs(last.id) == [("start", 1)]


async def test_graceful_stop_puts_a_running_task_back_uncounted(
    worker_processes: WorkerProcesses,
) -> None:
    """SIGTERM: a task that cannot finish goes back to the queue, its attempt not counted."""
    process, port, _log = worker_processes.start()
    async with worker_processes.tasks(port) as tasks:
        gate = await tasks.async_queue_task("gate", {}, actor=USER)
        await worker_processes.started(gate.id, 1)
        await tasks.async_update_scheduler(paused=True)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0

    _process, port, _log = worker_processes.start()
    async with worker_processes.tasks(port) as tasks:
        back = await tasks.async_task(gate.id)
        assert (back.state, back.attempts, back.progress) == ("queued", 0, 0)
    assert worker_processes.runs(gate.id) == [("start", 1)]


async def test_a_second_worker_on_the_same_data_dir_exits_and_changes_nothing(
    worker_processes: WorkerProcesses,
) -> None:
    """Started by mistake on a live worker's data dir, a worker refuses to start: the live
    worker's running task is neither put back in the queue nor run twice."""
    live, port, _log = worker_processes.start()
    async with worker_processes.tasks(port) as tasks:
        gate = await tasks.async_queue_task("gate", {}, actor=USER)
        await worker_processes.started(gate.id, 1)
        files = sorted(path.name for path in worker_processes.data_dir.iterdir())

        second, _port, second_log = worker_processes.launch()
        with contextlib.suppress(subprocess.TimeoutExpired):
            second.wait(timeout=START_TIMEOUT_S)
        # Had it started, it would have put the task back and run it by now.
        assert (await tasks.async_task(gate.id)).state == "running"
        assert worker_processes.runs(gate.id) == [("start", 1)]
        assert sorted(path.name for path in worker_processes.data_dir.iterdir()) == files
        worker_processes.release(gate.id)
        await _until_state(tasks, [gate.id], "succeeded")
        assert (await tasks.async_task(gate.id)).attempts == 1

    assert worker_processes.runs(gate.id) == [("start", 1), ("done", 1)]
    assert second.returncode == 3
    output = second_log.read_text()
    assert (
        f"{worker_processes.data_dir} is in use by another Hydra worker (pid {live.pid})" in output
    )
    assert "Traceback" not in output
    assert live.poll() is None
