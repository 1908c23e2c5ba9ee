"""The arbiter with the task queue and with Hydra's own models: a queued task that declares its
models gets them by evicting an idle LLM instead of waiting forever, holds them leased while it
runs, and a voice request (real Whisper tiny.en) outranks background loads waiting their turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
import time
from typing import Any, ClassVar

import aiohttp
import pytest

from hydra_core.arbiter.comfyui import ComfyUIBackend
from hydra_core.arbiter.inprocess import InProcessBackend, InProcessModel
from hydra_core.arbiter.models import PRIORITY_INTERACTIVE
from hydra_core.client import HydraApiError
from hydra_core.events import EventBus
from hydra_core.models import Actor
from hydra_core.scheduler.handlers import TaskContext, TaskHandler
from hydra_core.scheduler.models import SchedulerSettings
from hydra_core.scheduler.scheduler import Scheduler, gate_reason
from hydra_core.scheduler.store import TaskStore
from hydra_core.voice.stt import SttEngine
from tests.comfyui_standin import ComfyUIStandIn
from tests.voice.weights import voice_weights, whisper_models_dir

from .conftest import MakeRig, Rig

__all__ = ["voice_weights", "whisper_models_dir"]

USER = Actor(type="user", id="u1", name="Ada")


class CoderTask(TaskHandler):
    """Needs the llama.cpp coder model (12 GB); remembers what it saw while it ran."""

    kind: ClassVar[str] = "code_review"
    needs_gpu = True
    vram_gb: ClassVar[float] = 12.0
    models = ("llamacpp/coder",)

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.seen: list[Any] = []

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    async def run(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        loaded = await self.rig.models.async_loaded()
        self.seen.extend(loaded.models)
        return {}


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[list[Scheduler]]:
    schedulers: list[Scheduler] = []
    yield schedulers
    for scheduler in schedulers:
        await scheduler.async_stop()


async def _settled(scheduler: Scheduler, task_id: int, states: tuple[str, ...]) -> str:
    async with asyncio.timeout(10):
        while (task := await scheduler.async_get(task_id)).state not in states:
            await asyncio.sleep(0.02)
    return task.state


async def test_the_gate_admits_a_task_by_evicting_an_idle_llm(
    make_rig: MakeRig, tmp_path: Path, queue: list[Scheduler]
) -> None:
    rig = await make_rig(
        ollama={"chat": 16.0}, llamacpp={"coder": 12.0}, models_sizes=("llamacpp/coder=12",)
    )
    await rig.models.async_load("chat", actor=USER, lease=("chapter 1", 600))
    handler = CoderTask(rig)
    scheduler = Scheduler(
        TaskStore(tmp_path / "tasks.db"),
        handlers=[handler],
        probe=rig.probe,
        bus=EventBus(),
        data_dir=tmp_path,
        settings=SchedulerSettings(max_concurrent=1, poll_interval_s=3600),
    )
    scheduler.models_gate = rig.arbiter
    queue.append(scheduler)
    # Without the arbiter the gate waits for 12 GB to come free by itself: forever.
    report = await rig.probe.async_read()
    assert gate_reason(scheduler.settings, report, handler) is not None
    await scheduler.async_start()

    task = await scheduler.async_enqueue("code_review", {}, actor=USER)
    await _settled(scheduler, task.id, ("waiting",))
    waiting = await scheduler.async_get(task.id)
    assert waiting.waiting_reason is not None
    assert "ollama/chat (leased)" in waiting.waiting_reason

    rig.arbiter.release("chapter 1")  # the chapter ended: chat is idle now
    await scheduler.async_dispatch()
    assert await _settled(scheduler, task.id, ("succeeded", "failed")) == "succeeded"

    running = {model.id: model for model in handler.seen}
    assert "ollama/chat" not in running  # evicted for the task
    lease = running["llamacpp/coder"].lease
    assert lease is not None
    assert lease.holder == f"task {task.id}"
    # The lease ended with the task; the model stays loaded for the next one.
    after = {model.id: model for model in (await rig.models.async_loaded()).models}
    assert after["llamacpp/coder"].lease is None
    assert rig.ollama.ooms == rig.llamacpp.ooms == 0


async def test_hydras_own_whisper_joins_the_arbiter(
    make_rig: MakeRig, whisper_models_dir: Path
) -> None:
    stt = SttEngine(whisper_models_dir, model="tiny.en", device="cpu", offline=True)
    own = InProcessBackend(
        [
            InProcessModel(
                name="whisper",
                lazy=lambda: stt.lazy,
                estimated_vram_bytes=0,
                priority=PRIORITY_INTERACTIVE,
            )
        ]
    )
    rig = await make_rig(extra_backends=[own])  # the part hooks Whisper's loader as it starts
    try:
        listed = {model.id: model for model in (await rig.models.async_available()).models}
        assert not listed["hydra/whisper"].loaded
        assert listed["hydra/whisper"].priority == PRIORITY_INTERACTIVE

        loaded = await rig.models.async_load("hydra/whisper", actor=USER)
        assert loaded.model.loaded
        assert stt.lazy.loaded

        unloaded = await rig.models.async_unload("hydra/whisper", actor=USER)
        assert unloaded.unloaded == ("hydra/whisper",)
        assert not stt.lazy.loaded

        # A voice request loads Whisper by itself: the loader asks the arbiter for room first.
        await stt.load()
        assert [m.id for m in (await rig.models.async_loaded()).models] == ["hydra/whisper"]
    finally:
        await stt.close()


async def test_a_voice_request_outranks_background_loads_waiting_their_turn(
    make_rig: MakeRig, whisper_models_dir: Path
) -> None:
    stt = SttEngine(whisper_models_dir, model="tiny.en", device="cpu", offline=True)
    own = InProcessBackend(
        [
            InProcessModel(
                name="whisper",
                lazy=lambda: stt.lazy,
                estimated_vram_bytes=0,
                priority=PRIORITY_INTERACTIVE,
            )
        ]
    )
    rig = await make_rig(
        ollama={"chat": 4.0},
        llamacpp={"coder": 8.0},
        llamacpp_kwargs={"load_delay": 0.6},
        extra_backends=[own],
    )
    done: dict[str, float] = {}

    async def make_room(model_id: str, priority: int) -> None:
        await rig.arbiter.async_make_room(model_id, priority)
        done["voice"] = time.monotonic()  # the room is made: Whisper loads now

    own.hook(make_room)

    async def timed(name: str, work: Any) -> None:
        await work
        done.setdefault(name, time.monotonic())

    try:
        # A background load is under way; another background load queues behind it, then a
        # voice request needs Whisper.
        first = asyncio.create_task(timed("coder", rig.models.async_load("coder", actor=USER)))
        await asyncio.sleep(0.2)
        second = asyncio.create_task(timed("chat", rig.models.async_load("chat", actor=USER)))
        await asyncio.sleep(0.1)
        voice = asyncio.create_task(timed("voice", stt.load()))
        await asyncio.gather(first, second, voice)
    finally:
        await stt.close()

    # Whisper got its turn before the background load that queued earlier (the load under way
    # finished first: a turn is not taken away).
    assert done["voice"] < done["chat"]


class ChapterLike(TaskHandler):
    """A coordinator that needs ComfyUI, as a chapter does; runs until told to finish."""

    kind: ClassVar[str] = "chapter_like"
    coordinator = True
    models = ("comfyui",)

    def __init__(self) -> None:
        self.running = asyncio.Event()
        self.finish = asyncio.Event()

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    async def run(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        self.running.set()
        await self.finish.wait()
        return {}


async def test_a_task_needing_comfyui_waits_for_the_first_look_at_the_servers(
    make_rig: MakeRig, tmp_path: Path, queue: list[Scheduler], http: aiohttp.ClientSession
) -> None:
    """Right after a start, ComfyUI is slow to answer: a chapter must not begin before the
    arbiter knows ComfyUI's checkpoint, or it would hold no lease and a 16 GB model could be
    loaded into the room its images need."""
    async with ComfyUIStandIn() as comfyui:
        comfyui.stats_held = asyncio.Event()
        rig = await make_rig(
            ollama={"big": 16.0},
            extra_backends=[ComfyUIBackend("comfyui", comfyui.url, lambda: http)],
            comfyui_vram_gb=10.0,
        )
        handler = ChapterLike()
        scheduler = Scheduler(
            TaskStore(tmp_path / "tasks.db"),
            handlers=[handler],
            probe=rig.probe,
            bus=EventBus(),
            data_dir=tmp_path,
            settings=SchedulerSettings(max_concurrent=1, poll_interval_s=3600),
        )
        scheduler.models_gate = rig.arbiter
        queue.append(scheduler)
        await scheduler.async_start()
        task = await scheduler.async_enqueue("chapter_like", {}, actor=USER)
        await asyncio.sleep(0.5)
        began_before_the_look = handler.running.is_set()
        comfyui.stats_held.set()
        async with asyncio.timeout(10):
            await handler.running.wait()
        with pytest.raises(HydraApiError) as refused:
            await rig.models.async_load("big", actor=USER)
        handler.finish.set()
        assert await _settled(scheduler, task.id, ("succeeded",)) == "succeeded"

    assert not began_before_the_look
    assert refused.value.status == 409


async def test_a_chapter_leases_comfyuis_checkpoint_while_it_runs(
    make_rig: MakeRig, tmp_path: Path, queue: list[Scheduler], http: aiohttp.ClientSession
) -> None:
    async with ComfyUIStandIn() as comfyui:
        rig = await make_rig(
            ollama={"big": 16.0},
            extra_backends=[ComfyUIBackend("comfyui", comfyui.url, lambda: http)],
            comfyui_vram_gb=10.0,
        )
        handler = ChapterLike()
        scheduler = Scheduler(
            TaskStore(tmp_path / "tasks.db"),
            handlers=[handler],
            probe=rig.probe,
            bus=EventBus(),
            data_dir=tmp_path,
            settings=SchedulerSettings(max_concurrent=1, poll_interval_s=3600),
        )
        scheduler.models_gate = rig.arbiter
        queue.append(scheduler)
        await scheduler.async_start()
        task = await scheduler.async_enqueue("chapter_like", {}, actor=USER)
        async with asyncio.timeout(5):
            await handler.running.wait()

        # 10 GB are promised to ComfyUI's checkpoint: 16 GB no longer fit, and the lease holds.
        with pytest.raises(HydraApiError) as refused:
            await rig.models.async_load("big", actor=USER)
        plan = await rig.models.async_can_load("big")

        handler.finish.set()
        assert await _settled(scheduler, task.id, ("succeeded",)) == "succeeded"
        result = await rig.models.async_load("big", actor=USER)

    assert refused.value.status == 409
    assert [(b.id, b.holder) for b in plan.blocked_by] == [
        ("comfyui/checkpoint", f"task {task.id}")
    ]
    assert [eviction.id for eviction in result.evicted] == ["comfyui/checkpoint"]
    assert comfyui.freed == [{"unload_models": True, "free_memory": True}]
