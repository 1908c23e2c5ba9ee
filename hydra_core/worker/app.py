"""The worker's control API: an aiohttp application under ``/api/v1``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
import time

from aiohttp import web

from ..audit import AuditLog
from ..containers import ContainerService
from ..events import EventBus
from ..gpu import GpuProbe
from ..gpu.history import GpuHistory
from ..gpu.power import PowerManager
from ..host import read_host_info
from ..models import GpuInfo, WorkerInfo, WorkerStatus
from ..quality.service import QualityService
from ..scheduler import Scheduler
from ..voice.service import VoiceService
from . import containers_api, power_api, quality_api, report_api, tasks_api, voice_api
from .auth import token_middleware
from .containers_api import AUDIT_KEY, BUS_KEY, CONTAINERS_KEY
from .errors import ApiError, error_middleware
from .power_api import POWER_KEY
from .quality_api import QUALITY_KEY
from .report_api import HISTORY_KEY
from .requests import check_query
from .state import STATE_KEY, WorkerState
from .tasks_api import SCHEDULER_KEY
from .voice_api import VOICE_KEY

API_PREFIX = "/api/v1"


def create_app(
    *,
    info: WorkerInfo,
    token: str,
    probe: GpuProbe,
    audit: AuditLog | None = None,
    bus: EventBus | None = None,
    containers: ContainerService | None = None,
    scheduler: Scheduler | None = None,
    voice: VoiceService | None = None,
    history: GpuHistory | None = None,
    power: PowerManager | None = None,
    quality: QualityService | None = None,
) -> web.Application:
    """Build the application; what it is given starts with it and closes with it.

    ``containers`` is None when the worker has no container engine to follow; its routes then
    answer 404 ``containers_disabled``. ``history`` samples ``probe`` for ``/report``; without
    it the report has no GPUs. Without ``quality`` the scoring, character and asset routes
    answer 404 ``quality_disabled``.
    """
    app = web.Application(middlewares=[error_middleware, token_middleware(token)])
    app[STATE_KEY] = WorkerState(info=info, probe=probe, started_at=time.time())
    app[AUDIT_KEY] = audit or AuditLog(None)
    app[BUS_KEY] = bus or EventBus()
    if containers is not None:
        app[CONTAINERS_KEY] = containers
    if scheduler is not None:
        app[SCHEDULER_KEY] = scheduler
    if voice is not None:
        app[VOICE_KEY] = voice
    if history is not None:
        app[HISTORY_KEY] = history
    if power is not None:
        app[POWER_KEY] = power
    if quality is not None:
        app[QUALITY_KEY] = quality
    app.router.add_get(f"{API_PREFIX}/health", handle_health)
    app.router.add_get(f"{API_PREFIX}/status", handle_status)
    app.router.add_get(f"{API_PREFIX}/gpus", handle_gpus)
    containers_api.add_routes(app, API_PREFIX)
    tasks_api.add_routes(app, API_PREFIX)
    voice_api.add_routes(app, API_PREFIX)
    report_api.add_routes(app, API_PREFIX)
    power_api.add_routes(app, API_PREFIX)
    quality_api.add_routes(app, API_PREFIX)
    app.cleanup_ctx.append(_lifetime)
    app.on_shutdown.append(_end_event_streams)
    return app


async def _end_event_streams(app: web.Application) -> None:
    """Let open /events connections finish now instead of holding the shutdown up."""
    app[BUS_KEY].close_all()


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    """Start the probe, the audit log and the containers; close whatever started, in reverse."""
    async with contextlib.AsyncExitStack() as stack:
        probe = app[STATE_KEY].probe
        await probe.async_start()
        stack.push_async_callback(probe.async_close)
        if (power := app.get(POWER_KEY)) is not None:
            await power.async_start()
            stack.push_async_callback(power.async_stop)
        if (history := app.get(HISTORY_KEY)) is not None:
            await history.async_start()
            stack.push_async_callback(history.async_stop)
        audit = app[AUDIT_KEY]
        await audit.async_open()
        stack.push_async_callback(audit.async_close)
        if (containers := app.get(CONTAINERS_KEY)) is not None:
            await containers.async_start()
            stack.push_async_callback(containers.async_stop)
        # Before the scheduler, which may run scoring tasks at once, and closed after it.
        if (quality := app.get(QUALITY_KEY)) is not None:
            await quality.async_start()
            stack.push_async_callback(quality.async_stop)
        if (scheduler := app.get(SCHEDULER_KEY)) is not None:
            await scheduler.async_start()
            stack.push_async_callback(scheduler.async_stop)
        if (voice := app.get(VOICE_KEY)) is not None:
            await voice.async_start()
            stack.push_async_callback(voice.async_stop)
        yield


async def build_status(state: WorkerState) -> WorkerStatus:
    """Read the host and every GPU into one status."""
    gpu_report = await state.probe.async_read()
    host = await asyncio.get_running_loop().run_in_executor(None, read_host_info)
    return WorkerStatus(worker=state.info, started_at=state.started_at, host=host, gpu=gpu_report)


async def handle_health(request: web.Request) -> web.Response:
    """Liveness and identity; the only route that needs no token."""
    check_query(request, {})
    return web.json_response({"status": "ok", **request.app[STATE_KEY].info.as_dict()})


async def handle_status(request: web.Request) -> web.Response:
    """The worker, its host and every GPU."""
    check_query(request, {})
    status = await build_status(request.app[STATE_KEY])
    return web.json_response(status.as_dict())


async def handle_gpus(request: web.Request) -> web.Response:
    """Every GPU, or the ones named by ``?index=`` (repeatable)."""
    check_query(request, {"index": "a GPU index, repeatable"})
    wanted = {_parse_index(value) for value in request.query.getall("index", [])}
    report = await request.app[STATE_KEY].probe.async_read()
    gpus: list[GpuInfo] = [gpu for gpu in report.gpus if not wanted or gpu.index in wanted]
    missing = wanted - {gpu.index for gpu in gpus}
    if missing:
        raise ApiError(
            404, "gpu_not_found", f"No GPU with index {', '.join(map(str, sorted(missing)))}"
        )
    body = report.as_dict()
    body["gpus"] = [gpu.as_dict() for gpu in gpus]
    return web.json_response(body)


def _parse_index(value: str) -> int:
    if not value.isdecimal():
        raise ApiError(400, "invalid_query", f"index must be a non-negative integer, not {value!r}")
    return int(value)


__all__ = ["API_PREFIX", "STATE_KEY", "ApiError", "WorkerState", "build_status", "create_app"]
