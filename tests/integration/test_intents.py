"""Hydra's commands in Assist: the default agent hears English sentences and answers from a real
worker on loopback (and from its real scheduler and container engine)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar
from unittest.mock import patch

from homeassistant.components import conversation
from homeassistant.const import CONF_TOKEN, CONF_URL, STATE_OFF, STATE_ON
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import intent
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from homeassistant.util.unit_system import METRIC_SYSTEM, US_CUSTOMARY_SYSTEM
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.hydra.const import DOMAIN, EVENT_RESEARCH_FINISHED
from custom_components.hydra.intent import INTENT_QUEUE_RESEARCH
from hydra_core.models import Actor, WorkerInfo
from hydra_core.scheduler import TaskHandler, TaskQuery
from hydra_core.scheduler.models import Task
from tests.fake_nvml import FakeNvml, make_gpu
from tests.podman import PodmanEngine

from .conftest import (
    ControlledHandler,
    LoopbackWorker,
    RoutineWorker,
    TaskWorker,
    entry_for,
    setup_entry,
    wait_for_state,
    wait_until,
)

AUTONOMOUS = "switch.gpubox_autonomous_work"
# PID 1 that passes SIGTERM on, so the container stops at once when the test ends.
QUICK = {"init": True}


@pytest.fixture(autouse=True)
async def assist(hass: HomeAssistant) -> None:
    """Home Assistant with its default conversation agent (which loads the intents)."""
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "conversation", {})


async def _ask(hass: HomeAssistant, text: str) -> str:
    """What the user hears back from the default agent."""
    result = await conversation.async_converse(hass, text, None, Context(), language="en")
    return result.response.speech["plain"]["speech"]


class RenderHandler(ControlledHandler):
    """A kind that needs a GPU (as rendering does), so it waits while the GPUs are busy."""

    kind: ClassVar[str] = "render"
    needs_gpu: ClassVar[bool] = True


@dataclass
class GpuTaskWorker(TaskWorker):
    """The task worker that also runs ``render`` tasks, which need a GPU."""

    def handlers(self) -> list[TaskHandler]:
        """The task worker's kinds and render."""
        return [*super().handlers(), RenderHandler()]


@pytest.fixture
async def gpu_worker(nvml: FakeNvml, tmp_path: Path) -> AsyncIterator[GpuTaskWorker]:
    """A running worker whose queue has a kind that needs a GPU."""
    async with GpuTaskWorker(nvml, data_dir=tmp_path) as loopback:
        yield loopback


@pytest.fixture
def gpu_entry(gpu_worker: GpuTaskWorker) -> MockConfigEntry:
    """The entry for the worker with the GPU kind."""
    return entry_for(gpu_worker)


async def _enqueue(worker: TaskWorker, kind: str, **payload: Any) -> int:
    """Queue a task on the worker directly, as another client would."""
    assert worker.scheduler is not None
    task = await worker.scheduler.async_enqueue(kind, payload, actor=Actor(type="api"))
    return task.id


async def _worker_tasks(worker: TaskWorker) -> list[Task]:
    assert worker.scheduler is not None
    return await worker.scheduler.async_list(TaskQuery())


async def test_gpu_temperature_in_the_users_units(
    hass: HomeAssistant, nvml: FakeNvml, init_integration: MockConfigEntry
) -> None:
    """Every GPU with its temperature, in °F for a US-customary Home Assistant, and live."""
    hass.config.units = US_CUSTOMARY_SYSTEM
    # 61 °C and 48 °C.
    assert await _ask(hass, "What's the GPU temperature?") == (
        "RTX 4090 is at 142 °F and A100-SXM4-80GB is at 118 °F."
    )

    nvml.gpus[0].temperature = 83
    await init_integration.runtime_data.status.async_refresh()
    assert await _ask(hass, "how hot are the GPUs") == (
        "RTX 4090 is at 181 °F and A100-SXM4-80GB is at 118 °F."
    )

    hass.config.units = METRIC_SYSTEM
    assert await _ask(hass, "how hot are the GPUs") == (
        "RTX 4090 is at 83 °C and A100-SXM4-80GB is at 48 °C."
    )


async def test_no_gpu(
    hass: HomeAssistant, nvml: FakeNvml, init_integration: MockConfigEntry
) -> None:
    """A worker that sees no GPU says so."""
    nvml.gpus.clear()
    await init_integration.runtime_data.status.async_refresh()
    assert await _ask(hass, "how hot are the GPUs") == "The worker reports no GPU."


async def test_two_workers(
    hass: HomeAssistant, worker: LoopbackWorker, init_integration: MockConfigEntry
) -> None:
    """Several workers: each answers behind its name."""
    other = LoopbackWorker(
        FakeNvml([make_gpu(0, name="NVIDIA GeForce RTX 3090", temperature=55)]),
        info=WorkerInfo(
            worker_id="0a1b2c3d4e5f60718293a4b5c6d7e8f9", name="attic", version="0.1.0"
        ),
    )
    await other.start()
    try:
        entry = MockConfigEntry(
            domain=DOMAIN,
            title="attic",
            unique_id=other.info.worker_id,
            data={CONF_URL: other.url, CONF_TOKEN: other.token},
        )
        await setup_entry(hass, entry)
        assert await _ask(hass, "what is the temperature of the GPUs") == (
            "gpubox: RTX 4090 is at 61 °C and A100-SXM4-80GB is at 48 °C. "
            "attic: RTX 3090 is at 55 °C."
        )
        assert await _ask(hass, "how busy are the GPUs") == (
            "gpubox: RTX 4090 at 37 % with 6.0 of 24.0 GiB VRAM in use, A100-SXM4-80GB at 37 % "
            "with 20.0 of 80.0 GiB VRAM in use. "
            "attic: RTX 3090 at 37 % with 6.0 of 24.0 GiB VRAM in use."
        )
    finally:
        await other.stop()


async def test_no_worker_loaded(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    """With Hydra's entry unloaded, every command says that no worker is connected."""
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    for sentence in (
        "what's the GPU temperature",
        "how busy is the cluster",
        "queue research on fusion",
        "pause autonomous work",
        "start the overnight pipeline",
        "what failed overnight",
    ):
        assert await _ask(hass, sentence) == "No Hydra worker is connected.", sentence


async def test_no_task_queue(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    """A worker without a task queue: the queue commands say so."""
    for sentence in (
        "queue research on fusion",
        "resume autonomous work",
        "what failed last night",
    ):
        assert await _ask(hass, sentence) == "No Hydra worker runs a task queue.", sentence


async def test_cluster_busy_with_tasks(
    hass: HomeAssistant, gpu_worker: GpuTaskWorker, gpu_entry: MockConfigEntry
) -> None:
    """GPU load and VRAM per GPU, and the queue's counts as the worker has them now."""
    await setup_entry(hass, gpu_entry)
    await _ask(hass, "pause autonomous work")
    await _enqueue(gpu_worker, "render")
    await _enqueue(gpu_worker, "render")
    assert await _ask(hass, "How busy is the cluster?") == (
        "RTX 4090 at 37 % with 6.0 of 24.0 GiB VRAM in use, A100-SXM4-80GB at 37 % with 20.0 of "
        "80.0 GiB VRAM in use; 0 tasks running, 2 queued (autonomous work is paused)."
    )


async def test_cluster_busy_with_containers(
    hass: HomeAssistant, podman: PodmanEngine, containers_entry: MockConfigEntry
) -> None:
    """Running containers and those with problems, from the engine the worker follows."""
    podman.run("web", **QUICK)
    podman.run("crash", exit_code=3)
    await setup_entry(hass, containers_entry, "web")
    await wait_for_state(hass, "sensor.crash_state", "exited")
    assert await _ask(hass, "how busy is the cluster") == (
        "RTX 4090 at 37 % with 6.0 of 24.0 GiB VRAM in use, A100-SXM4-80GB at 37 % with 20.0 of "
        "80.0 GiB VRAM in use; 1 container running, 1 container with problems."
    )


async def test_queue_research(hass: HomeAssistant, routine_worker: RoutineWorker) -> None:
    """The topic is free text; the worker's own research runs on it and Home Assistant hears
    of its finding. Whisper's ways of writing a spoken "queue" are understood too."""
    entry = entry_for(routine_worker)
    await setup_entry(hass, entry)
    finished = async_capture_events(hass, EVENT_RESEARCH_FINISHED)
    assert await _ask(hass, "Queue research on solid-state batteries.") == (
        "Queued research on solid-state batteries (task 1)."
    )
    (task,) = await _worker_tasks(routine_worker)
    assert (task.id, task.kind, task.payload) == (
        1,
        "research",
        {"topic": "solid-state batteries", "depth": 1},
    )
    assert task.actor.type == "automation"
    await wait_until(lambda: len(finished) == 1, within=30)
    assert finished[0].data["topic"] == "solid-state batteries"
    assert finished[0].data["task_id"] == 1

    assert await _ask(hass, "Cue research on tides.") == "Queued research on tides (task 2)."
    assert await _ask(hass, "Q-Research on tides.") == "Queued research on tides (task 3)."


async def test_queue_research_refused(
    hass: HomeAssistant, task_worker: TaskWorker, tasks_entry: MockConfigEntry
) -> None:
    """A worker without a research handler: the refusal is spoken, nothing is queued."""
    await setup_entry(hass, tasks_entry)
    assert await _ask(hass, "queue research about fusion power") == (
        "I could not queue research on fusion power: The Hydra worker does not accept that kind "
        "of task: Unknown task kind 'research'; this worker accepts: maintenance, test"
    )
    assert await _worker_tasks(task_worker) == []


async def test_queue_research_slot_is_validated(
    hass: HomeAssistant, routine_worker: RoutineWorker
) -> None:
    """The intent itself (as an LLM or a custom sentence calls it) refuses a blank topic."""
    await setup_entry(hass, entry_for(routine_worker))
    with pytest.raises(intent.InvalidSlotInfo):
        await intent.async_handle(hass, "test", INTENT_QUEUE_RESEARCH, {"topic": {"value": " "}})
    response = await intent.async_handle(
        hass, "test", INTENT_QUEUE_RESEARCH, {"topic": {"value": "tides"}}
    )
    assert response.speech["plain"]["speech"] == "Queued research on tides (task 1)."
    assert [task.payload for task in await _worker_tasks(routine_worker)] == [
        {"topic": "tides", "depth": 1}
    ]


async def test_pause_and_resume(
    hass: HomeAssistant, task_worker: TaskWorker, tasks_entry: MockConfigEntry
) -> None:
    """The scheduler on the worker pauses and resumes; the switch follows; the answer says so."""
    await setup_entry(hass, tasks_entry)
    assert task_worker.scheduler is not None
    assert await _ask(hass, "pause autonomous work") == "Autonomous work is paused."
    assert task_worker.scheduler.settings.paused
    await wait_for_state(hass, AUTONOMOUS, STATE_OFF)

    assert await _ask(hass, "resume autonomous work") == (
        "Autonomous work is running; nothing is queued."
    )
    assert not task_worker.scheduler.settings.paused
    await wait_for_state(hass, AUTONOMOUS, STATE_ON)

    assert await _ask(hass, "stop the autonomous work") == "Autonomous work is paused."
    assert task_worker.scheduler.settings.paused
    assert await _ask(hass, "start autonomous work") == (
        "Autonomous work is running; nothing is queued."
    )
    assert not task_worker.scheduler.settings.paused


async def test_start_overnight_pipeline(
    hass: HomeAssistant, gpu_worker: GpuTaskWorker, gpu_entry: MockConfigEntry
) -> None:
    """Autonomous work goes on; the answer counts what waits for the GPUs."""
    await setup_entry(hass, gpu_entry)
    scheduler = gpu_worker.scheduler
    assert scheduler is not None
    assert await _ask(hass, "start the overnight pipeline") == (
        "The overnight pipeline is on: nothing is queued."
    )

    # Paused, and the GPUs (37 % busy) too busy for rendering once it resumes.
    await scheduler.async_update_settings(paused=True, max_gpu_utilization=10)
    await _enqueue(gpu_worker, "render")
    await _enqueue(gpu_worker, "render")
    assert await _ask(hass, "kick off the overnight pipeline") == (
        "The overnight pipeline is on: 2 tasks are queued and will run when the GPUs have room."
    )
    assert not scheduler.settings.paused
    await wait_for_state(hass, AUTONOMOUS, STATE_ON)


async def test_overnight_failures(
    hass: HomeAssistant, task_worker: TaskWorker, tasks_entry: MockConfigEntry
) -> None:
    """Failed tasks since 18:00 yesterday, with kind, id and error; none said plainly."""
    await setup_entry(hass, tasks_entry)
    assert await _ask(hass, "what failed overnight") == "Nothing failed overnight."

    await _enqueue(task_worker, "test", outcome="succeed")
    failed = await _enqueue(task_worker, "test", outcome="fail")
    tasks = tasks_entry.runtime_data.parts["tasks"]
    await wait_until(lambda: failed in tasks.tasks and tasks.tasks[failed].state == "failed")
    assert await _ask(hass, "What failed overnight?") == (
        f"1 task failed overnight: test task {failed} (the test asked this task to fail)."
    )

    # Two days on, that failure is no longer last night's.
    later = dt_util.now() + timedelta(days=2)
    with patch("homeassistant.util.dt.now", return_value=later):
        assert await _ask(hass, "did anything fail last night") == "Nothing failed overnight."
