"""The task queue: gate decisions, priorities, retries with backoff, limits, cancel and retry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from hydra_core.events import EventBus
from hydra_core.gpu import NvmlProbe
from hydra_core.models import Actor
from hydra_core.scheduler import (
    MaintenanceHandler,
    PayloadError,
    PermanentTaskError,
    QueueError,
    Scheduler,
    TaskContext,
    TaskHandler,
    TaskQuery,
    TaskStore,
    gate_reason,
)
from hydra_core.scheduler.models import EVENT_TASK, SchedulerSettings, Task
from hydra_core.scheduler.scheduler import QueueFullError
from tests.fake_nvml import GIB, FakeNvml, make_gpu

USER = Actor(type="user", id="u1", name="Ada")


class Recorder(TaskHandler):
    """Runs instantly, remembers the order it ran in; fails as told."""

    kind: ClassVar[str] = "record"
    max_attempts: ClassVar[int] = 3

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.failures: dict[str, list[Exception]] = {}
        self.gate: asyncio.Event | None = None

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(payload.get("name"), str):
            raise PayloadError("name must be text")
        return payload

    async def run(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        if self.gate is not None:
            await self.gate.wait()
        await context.report_progress(50, "halfway")
        self.ran.append(payload["name"])
        failures = self.failures.get(payload["name"])
        if failures:
            raise failures.pop(0)
        return {"name": payload["name"], "attempt": context.attempt}


class GpuWork(Recorder):
    """The same, but needs a GPU with 8 GB free."""

    kind: ClassVar[str] = "gpu_work"
    needs_gpu: ClassVar[bool] = True
    vram_gb: ClassVar[float] = 8.0


@pytest.fixture
def nvml() -> FakeNvml:
    return FakeNvml([make_gpu(0, gpu_util=10, memory_used=4 * GIB)])


@pytest.fixture
async def scheduler(nvml: FakeNvml, tmp_path: Path) -> AsyncIterator[Scheduler]:
    probe = NvmlProbe(nvml)
    await probe.async_start()
    bus = EventBus()
    recorder, gpu_work = Recorder(), GpuWork()
    scheduler = Scheduler(
        TaskStore(tmp_path / "tasks.db"),
        handlers=[recorder, gpu_work],
        probe=probe,
        bus=bus,
        data_dir=tmp_path,
        settings=SchedulerSettings(max_concurrent=1),
        backoff_base_s=0.05,
    )
    scheduler.recorder = recorder  # type: ignore[attr-defined]
    scheduler.gpu_work = gpu_work  # type: ignore[attr-defined]
    scheduler.bus = bus  # type: ignore[attr-defined]
    await scheduler.async_start()
    yield scheduler
    await scheduler.async_stop()
    await probe.async_close()


async def _settle(
    scheduler: Scheduler, *ids: int, states: tuple[str, ...] = ("succeeded",)
) -> None:
    async with asyncio.timeout(5):
        while True:
            tasks = [await scheduler.async_get(task_id) for task_id in ids]
            if all(task.state in states for task in tasks):
                return
            await asyncio.sleep(0.01)


async def test_priority_first_then_first_in_first_out(scheduler: Scheduler) -> None:
    await scheduler.async_update_settings(paused=True)
    ids = [
        (await scheduler.async_enqueue("record", {"name": name}, actor=USER, priority=p)).id
        for name, p in (("low", 10), ("a", 50), ("b", 50), ("urgent", 90), ("c", 50))
    ]
    await scheduler.async_update_settings(paused=False)
    await _settle(scheduler, *ids)
    assert scheduler.recorder.ran == ["urgent", "a", "b", "c", "low"]


async def test_at_most_n_at_once(scheduler: Scheduler) -> None:
    scheduler.recorder.gate = asyncio.Event()
    await scheduler.async_update_settings(max_concurrent=2)
    ids = [
        (await scheduler.async_enqueue("record", {"name": str(n)}, actor=USER)).id for n in range(5)
    ]
    await asyncio.sleep(0.2)
    states = [(await scheduler.async_get(task_id)).state for task_id in ids]
    assert states.count("running") == 2
    assert (await scheduler.async_counts())["queued"] == 3
    scheduler.recorder.gate.set()
    await _settle(scheduler, *ids)


def test_gate_decisions() -> None:
    settings = SchedulerSettings(max_gpu_utilization=50, min_free_vram_gb=4)
    nvml = FakeNvml([make_gpu(0, gpu_util=80), make_gpu(1, gpu_util=20, memory_used=22 * GIB)])
    probe = NvmlProbe(nvml)
    probe.start()
    report = probe.read()
    reason = gate_reason(settings, report, GpuWork())
    assert reason == (
        "waiting for resources: GPU 0 at 80 % (limit 50 %); GPU 1 has 2.0 GB free (needs 8.0 GB)"
    )
    assert gate_reason(settings, report, Recorder()) is None  # needs no GPU
    nvml.gpus[0].gpu_util = 50  # at the limit is allowed
    assert gate_reason(settings, probe.read(), GpuWork()) is None
    nvml.gpus.clear()
    assert gate_reason(settings, probe.read(), GpuWork()).startswith("no GPU available")


async def test_gpu_task_waits_with_reason_while_others_run(
    scheduler: Scheduler, nvml: FakeNvml
) -> None:
    nvml.gpus[0].gpu_util = 95
    gpu_task = await scheduler.async_enqueue(
        "gpu_work", {"name": "render"}, actor=USER, priority=90
    )
    cpu_task = await scheduler.async_enqueue("record", {"name": "notes"}, actor=USER)
    await _settle(scheduler, cpu_task.id)
    waiting = await scheduler.async_get(gpu_task.id)
    assert waiting.state == "waiting"
    assert "GPU 0 at 95 % (limit 50 %)" in waiting.waiting_reason
    nvml.gpus[0].gpu_util = 5
    await scheduler.async_dispatch()
    await _settle(scheduler, gpu_task.id)
    assert (await scheduler.async_get(gpu_task.id)).waiting_reason is None


async def test_retries_with_backoff_then_fails(scheduler: Scheduler) -> None:
    scheduler.recorder.failures["flaky"] = [RuntimeError("one"), RuntimeError("two")]
    scheduler.recorder.failures["broken"] = [RuntimeError(str(n)) for n in range(5)]
    flaky = await scheduler.async_enqueue("record", {"name": "flaky"}, actor=USER)
    broken = await scheduler.async_enqueue("record", {"name": "broken"}, actor=USER)
    await _settle(scheduler, flaky.id, broken.id, states=("succeeded", "failed"))
    flaky, broken = await scheduler.async_get(flaky.id), await scheduler.async_get(broken.id)
    assert (flaky.state, flaky.attempts, flaky.result) == (
        "succeeded",
        3,
        {"name": "flaky", "attempt": 3},
    )
    assert (broken.state, broken.attempts) == ("failed", 3)
    assert broken.error == "RuntimeError: 2"


async def test_backoff_holds_a_retry_back(scheduler: Scheduler) -> None:
    scheduler._backoff_base_s = 30
    scheduler.recorder.failures["slow"] = [RuntimeError("once")]
    task = await scheduler.async_enqueue("record", {"name": "slow"}, actor=USER)
    await _settle(scheduler, task.id, states=("queued",))
    await asyncio.sleep(0.1)
    held = await scheduler.async_get(task.id)
    assert held.state == "queued"
    assert held.attempts == 1
    assert held.next_attempt_at - scheduler._clock() > 10
    assert await scheduler.async_dispatch() == []


async def test_permanent_error_is_not_retried(scheduler: Scheduler) -> None:
    scheduler.recorder.failures["bad"] = [PermanentTaskError("input file is missing")]
    task = await scheduler.async_enqueue("record", {"name": "bad"}, actor=USER)
    await _settle(scheduler, task.id, states=("failed",))
    failed = await scheduler.async_get(task.id)
    assert (failed.attempts, failed.error) == (1, "input file is missing")


@pytest.mark.parametrize(
    ("kind", "payload", "priority", "code"),
    [
        ("research", {"topic": "x"}, 50, "unknown_kind"),
        ("record", {"name": 5}, 50, "invalid_payload"),
        ("record", ["not", "an", "object"], 50, "invalid_payload"),
        ("record", {"name": "x"}, -1, "invalid_priority"),
        ("record", {"name": "x"}, 101, "invalid_priority"),
        ("record", {"name": "x"}, True, "invalid_priority"),
        ("maintenance", {"retention_days": 0}, 50, "invalid_payload"),
        ("maintenance", {"bogus": 1}, 50, "invalid_payload"),
    ],
)
async def test_bad_requests_leave_the_queue_untouched(
    scheduler: Scheduler, kind: str, payload: Any, priority: Any, code: str, tmp_path: Path
) -> None:
    scheduler._handlers["maintenance"] = MaintenanceHandler(tmp_path, tmp_path / "out")
    with pytest.raises(QueueError) as caught:
        await scheduler.async_enqueue(kind, payload, actor=USER, priority=priority)
    assert caught.value.code == code
    assert await scheduler.async_list(TaskQuery()) == []


async def test_cancel_and_retry(scheduler: Scheduler) -> None:
    await scheduler.async_update_settings(paused=True)
    task = await scheduler.async_enqueue("record", {"name": "later"}, actor=USER)
    cancelled = await scheduler.async_cancel(task.id)
    assert cancelled.state == "cancelled"
    with pytest.raises(QueueError) as caught:
        await scheduler.async_cancel(task.id)
    assert (caught.value.code, caught.value.status) == ("task_finished", 409)
    retried = await scheduler.async_retry(task.id)
    assert (retried.state, retried.attempts) == ("queued", 0)
    with pytest.raises(QueueError) as caught:
        await scheduler.async_retry(task.id)
    assert caught.value.code == "task_not_retryable"
    with pytest.raises(QueueError) as caught:
        await scheduler.async_get(999)
    assert (caught.value.code, caught.value.status) == ("task_not_found", 404)


async def test_cancel_a_running_task(scheduler: Scheduler) -> None:
    scheduler.recorder.gate = asyncio.Event()
    task = await scheduler.async_enqueue("record", {"name": "long"}, actor=USER)
    await _settle(scheduler, task.id, states=("running",))
    cancelled = await scheduler.async_cancel(task.id)
    assert cancelled.state == "cancelled"
    assert scheduler.recorder.ran == []


class SlowToStart(TaskStore):
    """A store whose claim of a task to start it has committed but not yet returned to the
    queue until ``started`` is set: the moment a cancel can land between the two."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.claimed = asyncio.Event()
        self.started = asyncio.Event()
        # Whether a read is held with the claim, and answered right after it.
        self.hold_reads = False

    async def async_claim(self, task_id: int, **changes: Any) -> Task | None:
        task = await super().async_claim(task_id, **changes)
        if changes.get("state") == "running":
            self.claimed.set()
            await self.started.wait()
        return task

    async def async_get(self, task_id: int) -> Task | None:
        task = await super().async_get(task_id)
        if self.hold_reads:
            await self.started.wait()
        return task


async def test_a_cancel_while_the_queue_starts_the_task_wins(
    nvml: FakeNvml, tmp_path: Path
) -> None:
    """Cancelled as the queue was starting it (its claim committed, its handler not yet
    begun): the task ends cancelled and its handler never runs, instead of running on while
    the queue lists it cancelled, then succeeded (a cancelled chapter's image kept going)."""
    probe = NvmlProbe(nvml)
    await probe.async_start()
    store, recorder = SlowToStart(tmp_path / "tasks.db"), Recorder()
    scheduler = Scheduler(
        store, handlers=[recorder], probe=probe, bus=EventBus(), data_dir=tmp_path
    )
    await scheduler.async_start()
    try:
        task = await scheduler.async_enqueue("record", {"name": "unwanted"}, actor=USER)
        async with asyncio.timeout(5):
            await store.claimed.wait()
        cancelling = asyncio.create_task(scheduler.async_cancel(task.id))
        await asyncio.sleep(0.2)
        store.started.set()
        async with asyncio.timeout(5):
            cancelled = await cancelling
        await asyncio.sleep(0.2)
        assert cancelled.state == "cancelled"
        assert (await scheduler.async_get(task.id)).state == "cancelled"
        assert recorder.ran == []
    finally:
        store.started.set()
        await scheduler.async_stop()
        await probe.async_close()


async def test_a_cancel_just_after_the_queue_started_the_task_ends_it(
    nvml: FakeNvml, tmp_path: Path
) -> None:
    """Cancelled right after the queue began the task, before its handler's first step (the
    cancel read the task as the queue's claim returned): the task ends cancelled, and the
    queue takes new work. Before, the cancel hit the handler's asyncio task before it ran a
    line, so nothing recorded the end: the task stayed running for good (a cancelled
    chapter's image, in the creative pipeline's test)."""
    probe = NvmlProbe(nvml)
    await probe.async_start()
    store, recorder = SlowToStart(tmp_path / "tasks.db"), Recorder()
    scheduler = Scheduler(
        store,
        handlers=[recorder],
        probe=probe,
        bus=EventBus(),
        data_dir=tmp_path,
        settings=SchedulerSettings(max_concurrent=1),
    )
    await scheduler.async_start()
    try:
        task = await scheduler.async_enqueue("record", {"name": "unwanted"}, actor=USER)
        async with asyncio.timeout(5):
            await store.claimed.wait()
        store.hold_reads = True
        cancelling = asyncio.create_task(scheduler.async_cancel(task.id))
        await asyncio.sleep(0.2)
        store.started.set()
        async with asyncio.timeout(5):
            cancelled = await cancelling
        store.hold_reads = False
        assert cancelled.state == "cancelled"
        assert recorder.ran == []
        # The queue's one slot is free again: the next task runs.
        after = await scheduler.async_enqueue("record", {"name": "next"}, actor=USER)
        await _settle(scheduler, after.id)
        assert (await scheduler.async_get(task.id)).state == "cancelled"
        assert recorder.ran == ["next"]
    finally:
        store.started.set()
        await scheduler.async_stop()
        await probe.async_close()


async def test_events_tell_the_story(scheduler: Scheduler) -> None:
    subscription = scheduler.bus.subscribe()
    task = await scheduler.async_enqueue("record", {"name": "told"}, actor=USER)
    await _settle(scheduler, task.id)
    events = []
    while (event := await subscription.next(1)) is not None:
        assert event.type == EVENT_TASK
        events.append(event.data["event"])
        if event.data["event"] == "succeeded":
            break
    assert events == ["queued", "started", "progress", "succeeded"]
    subscription.close()


async def test_settings_validated_and_kept(scheduler: Scheduler, tmp_path: Path) -> None:
    for bad in (
        {"max_concurrent": 0},
        {"max_gpu_utilization": 150},
        {"paused": "yes"},
        {"bogus": 1},
        {"max_concurrent": 1.5},
    ):
        with pytest.raises(QueueError):
            await scheduler.async_update_settings(**bad)
    await scheduler.async_update_settings(max_gpu_utilization=70, paused=True)
    assert (tmp_path / "scheduler.json").exists()
    again = Scheduler(
        TaskStore(tmp_path / "other.db"),
        handlers=[],
        probe=NvmlProbe(FakeNvml()),
        bus=EventBus(),
        data_dir=tmp_path,
    )
    await again.async_start()
    assert (again.settings.max_gpu_utilization, again.settings.paused) == (70, True)
    await again.async_stop()


async def test_maintenance_reports_and_removes_old_outputs(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    old, new = outputs / "old.png", outputs / "new.png"
    old.write_bytes(b"x" * 100)
    new.write_bytes(b"y" * 10)
    import os  # noqa: PLC0415
    import time  # noqa: PLC0415

    two_months = time.time() - 60 * 86400
    os.utime(old, (two_months, two_months))
    handler = MaintenanceHandler(tmp_path, outputs)
    progress: list[float] = []

    async def report(percent: float, _message: str | None) -> None:
        progress.append(percent)

    context = TaskContext(1, 1, report, lambda: False, lambda: None)
    result = await handler.run(handler.validate({"retention_days": 30}), context)
    assert (result["removed_files"], result["freed_bytes"]) == (1, 100)
    assert not old.exists()
    assert new.exists()
    assert result["disk"][str(tmp_path)]["bytes"] >= 10
    assert progress[-1] == 100


async def test_a_full_queue_refuses_more_until_tasks_finish(nvml: FakeNvml, tmp_path: Path) -> None:
    """Past its bound of unfinished tasks the queue says so and keeps what it has; once some
    finish there is room again."""
    probe = NvmlProbe(nvml)
    recorder = Recorder()
    recorder.gate = asyncio.Event()
    scheduler = Scheduler(
        TaskStore(tmp_path / "tasks.db"),
        handlers=[recorder],
        probe=probe,
        bus=EventBus(),
        data_dir=tmp_path,
        settings=SchedulerSettings(max_concurrent=1),
        max_unfinished=3,
        stop_timeout_s=0.5,
    )
    await probe.async_start()
    await scheduler.async_start()
    try:
        ids = [
            (await scheduler.async_enqueue("record", {"name": str(n)}, actor=USER)).id
            for n in range(3)
        ]
        with pytest.raises(QueueFullError, match="3 unfinished tasks") as caught:
            await scheduler.async_enqueue("record", {"name": "one too many"}, actor=USER)
        assert (caught.value.code, caught.value.status) == ("queue_full", 503)
        assert len(await scheduler.async_list(TaskQuery())) == 3

        recorder.gate.set()
        await _settle(scheduler, *ids)
        room = await scheduler.async_enqueue("record", {"name": "room again"}, actor=USER)
        await _settle(scheduler, room.id)
        assert recorder.ran == ["0", "1", "2", "room again"]
    finally:
        await scheduler.async_stop()
        await probe.async_close()


async def test_a_stop_right_after_queueing_does_not_hang(nvml: FakeNvml, tmp_path: Path) -> None:
    """A task queued just before the worker stops: the stop still ends at once (Python 3.11's
    wait_for used to swallow the stop's cancellation as the queue woke up)."""
    probe = NvmlProbe(nvml)
    await probe.async_start()
    try:
        for attempt in range(5):
            recorder = Recorder()
            scheduler = Scheduler(
                TaskStore(tmp_path / f"tasks-{attempt}.db"),
                handlers=[recorder],
                probe=probe,
                bus=EventBus(),
                data_dir=None,
            )
            await scheduler.async_start()
            await asyncio.sleep(0.05)  # the queue is idle, waiting for work
            await scheduler.async_enqueue("record", {"name": "last"}, actor=USER)
            async with asyncio.timeout(5):
                await scheduler.async_stop()
    finally:
        await probe.async_close()
