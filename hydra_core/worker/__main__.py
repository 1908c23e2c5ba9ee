"""Command-line entry point: ``python -m hydra_core.worker`` or ``hydra-worker``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
import logging
from pathlib import Path
import signal
import sys

from aiohttp import web

from .. import __version__
from ..audit import AuditLog
from ..containers import ContainerService, EngineClient, ProtectionPolicy, resolve_docker_host
from ..containers.engine import DEFAULT_DOCKER_HOST
from ..events import EventBus
from ..gpu import GpuProbe, create_probe
from ..gpu.history import GpuHistory
from ..gpu.power import SETTINGS_FILE as POWER_SETTINGS_FILE, PowerManager
from ..models import EVENT_VOICE, HealingSettings, PowerSettings, VoiceSettings, WorkerInfo
from ..quality.service import QualityOptions, QualityService
from ..quality.task import QualityScoringHandler
from ..scheduler import MaintenanceHandler, Scheduler, TaskHandler, TaskStore
from ..voice.service import SETTINGS_FILE as VOICE_SETTINGS_FILE, VoiceOptions, VoiceService
from .app import create_app
from .config import (
    TOKEN_FILE,
    ConfigError,
    WorkerConfig,
    ensure_token,
    ensure_worker_id,
    load_config,
)

_LOGGER = logging.getLogger("hydra_core.worker")
AUDIT_FILE = "audit.db"
TASKS_FILE = "tasks.db"
METRICS_FILE = "metrics.db"


async def serve(config: WorkerConfig, stop: asyncio.Event) -> None:
    """Run the worker until ``stop`` is set."""
    token = ensure_token(config)
    info = WorkerInfo(
        worker_id=ensure_worker_id(config.data_dir), name=config.name, version=__version__
    )
    probe = create_probe(config.gpu_backend, simulated_count=config.simulated_gpus)
    bus = EventBus()
    audit = AuditLog(config.data_dir / AUDIT_FILE)
    containers = _container_service(config, audit, bus)
    quality = _quality(config, bus)
    app = create_app(
        info=info,
        token=token,
        probe=probe,
        audit=audit,
        bus=bus,
        containers=containers,
        scheduler=_scheduler(config, probe, bus, quality),
        voice=_voice(config, bus),
        history=_history(config, probe),
        power=_power(config, probe, bus),
        quality=quality,
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    _LOGGER.info(
        "Hydra worker %s (%s) %s listening on %s; GPU backend %s",
        info.name,
        info.worker_id,
        __version__,
        site.name,
        config.gpu_backend,
    )
    if not config.token:
        _LOGGER.info("Token kept in %s", config.data_dir / TOKEN_FILE)
    try:
        await stop.wait()
    finally:
        _LOGGER.info("Stopping")
        await runner.cleanup()


def _container_service(
    config: WorkerConfig, audit: AuditLog, bus: EventBus
) -> ContainerService | None:
    """The container service, unless there is no engine to follow."""
    if (config.docker_host or "").lower() == "none":
        return None
    docker_host = resolve_docker_host(config.docker_host)
    local_socket = Path(DEFAULT_DOCKER_HOST.removeprefix("unix://"))
    if not config.docker_host and docker_host == DEFAULT_DOCKER_HOST and not local_socket.exists():
        _LOGGER.info("No container engine found; container monitoring is off")
        return None
    _LOGGER.info("Following the container engine at %s", docker_host)
    return ContainerService(
        EngineClient(docker_host),
        policy=ProtectionPolicy.from_patterns(config.protected_containers),
        audit=audit,
        bus=bus,
        data_dir=config.data_dir,
        healing=HealingSettings(
            enabled=config.self_healing,
            unhealthy_checks=config.heal_after_checks,
            max_restarts_per_hour=config.heal_max_restarts,
        ),
        interval_s=config.container_interval,
    )


def _scheduler(
    config: WorkerConfig, probe: GpuProbe, bus: EventBus, quality: QualityService | None
) -> Scheduler:
    """The task queue, with the handlers this worker offers."""
    outputs_dir = config.outputs_dir or config.data_dir / "outputs"
    handlers: list[TaskHandler] = [
        MaintenanceHandler(
            data_dir=config.data_dir,
            outputs_dir=outputs_dir,
            extra_paths=tuple(Path(path) for path in config.maintenance_paths),
            retention_days=config.retention_days,
        )
    ]
    if quality is not None:
        # Scoring on the CPU, or on a worker that does not look at its GPUs, waits for none.
        on_gpu = config.quality_device != "cpu" and config.gpu_backend != "none"
        handlers.append(QualityScoringHandler(quality, outputs_dir, needs_gpu=on_gpu))
    return Scheduler(
        TaskStore(config.data_dir / TASKS_FILE),
        handlers=handlers,
        probe=probe,
        bus=bus,
        data_dir=config.data_dir,
    )


def _history(config: WorkerConfig, probe: GpuProbe) -> GpuHistory | None:
    """The GPU samples behind the night report, unless GPUs are not looked at."""
    if config.gpu_backend == "none":
        return None
    return GpuHistory(config.data_dir / METRICS_FILE, probe, interval_s=config.metrics_interval)


def _power(config: WorkerConfig, probe: GpuProbe, bus: EventBus) -> PowerManager | None:
    """The GPU power profiles, unless GPUs are not looked at."""
    if config.gpu_backend == "none":
        return None
    return PowerManager(
        probe,
        path=config.data_dir / POWER_SETTINGS_FILE,
        settings=PowerSettings(
            eco_percent=config.power_eco_percent, balanced_percent=config.power_balanced_percent
        ),
        bus=bus,
        interval_s=config.power_interval,
    )


def _quality(config: WorkerConfig, bus: EventBus) -> QualityService | None:
    """CLIP scoring, the character registry and the review loop, unless switched off."""
    if not config.quality:
        return None
    options = QualityOptions(
        data_dir=config.data_dir,
        models_dir=config.models_dir or config.data_dir / "models",
        model=config.quality_model,
        pretrained=config.quality_pretrained,
        device=config.quality_device,
        offline=config.quality_offline,
        config_dir=config.quality_config_dir,
        idle_unload_s=config.quality_idle_unload,
        default_threshold=config.quality_threshold,
    )
    return QualityService(options, bus=bus)


def _voice(config: WorkerConfig, bus: EventBus) -> VoiceService | None:
    """The Wyoming voice services, unless switched off."""
    if not config.voice:
        return None
    defaults = VoiceSettings(
        wake_threshold=config.wake_threshold,
        wake_trigger_level=config.wake_trigger_level,
        stt_model=config.stt_model,
        tts_voice=config.tts_voice,
        tts_speed=config.tts_speed,
    )
    options = VoiceOptions(
        host=config.host,
        port=config.voice_port,
        models_dir=config.models_dir or config.data_dir / "models",
        wake_models_dir=config.wake_models_dir or config.data_dir / "wake_words",
        settings_path=config.data_dir / VOICE_SETTINGS_FILE,
        offline=config.voice_offline,
        idle_unload_s=config.model_idle_unload,
        wake_refractory_s=config.wake_refractory,
        stt_language=config.stt_language,
        stt_device=config.stt_device,
        stt_compute_type=config.stt_compute_type,
        stt_beam_size=config.stt_beam_size,
        stt_vad=config.stt_vad,
        tts_language=config.tts_language,
        defaults=defaults,
        announce_name=config.name if config.voice_zeroconf else None,
    )
    return VoiceService(
        options, on_change=lambda status: bus.publish(EVENT_VOICE, status.as_dict())
    )


async def _main(config: WorkerConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await serve(config, stop)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options, then serve until SIGINT or SIGTERM."""
    try:
        config = load_config(argv)
    except ConfigError as err:
        print(f"hydra-worker: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    _LOGGER.debug("Options: %s", config.redacted())
    try:
        asyncio.run(_main(config))
    except OSError as err:
        _LOGGER.error("Cannot serve on %s:%s: %s", config.host, config.port, err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
