"""Fixtures for tests that talk to a real worker over loopback TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
import pytest

from hydra_core.audit import AuditLog
from hydra_core.events import EventBus
from hydra_core.gpu import GpuProbe, NoGpuProbe
from hydra_core.models import WorkerInfo
from hydra_core.worker.app import create_app
from hydra_core.worker.part import Part
from tests.podman import PodmanEngine

if TYPE_CHECKING:
    from .worker_processes import WorkerProcesses

LOOPBACK = "127.0.0.1"

ServeApp = Callable[[web.Application], Awaitable[str]]

# The worker the tests serve unless they care who it is.
WORKER = WorkerInfo(worker_id="w", name="w", version="0")


# serve_worker's: create_app's keywords, with info, probe and the rest optional.
ServeWorker = Callable[..., Awaitable[str]]


@pytest.fixture
async def serve_app(loopback_sockets: None) -> AsyncIterator[ServeApp]:
    """Serve aiohttp applications on 127.0.0.1, each on a free port; returns the base URL.

    Every application is cleaned up afterwards (which also closes the worker's GPU probe).
    """
    runners: list[web.AppRunner] = []

    async def serve(app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, LOOPBACK, 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        assert host == LOOPBACK
        assert port != 0
        return f"http://{LOOPBACK}:{port}"

    yield serve
    for runner in reversed(runners):
        await runner.cleanup()


@pytest.fixture
async def http(serve_app: ServeApp) -> AsyncIterator[aiohttp.ClientSession]:
    """A real client session (closed before the servers stop)."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def serve_worker(serve_app: ServeApp) -> ServeWorker:
    """Serve workers as create_app builds them; without a probe, one without GPUs."""

    async def serve(
        *,
        token: str,
        info: WorkerInfo = WORKER,
        probe: GpuProbe | None = None,
        audit: AuditLog | None = None,
        bus: EventBus | None = None,
        parts: Iterable[Part] = (),
    ) -> str:
        return await serve_app(
            create_app(
                info=info,
                token=token,
                probe=NoGpuProbe() if probe is None else probe,
                audit=audit,
                bus=bus,
                parts=parts,
            )
        )

    return serve


def run_healthy_sick_and_exited(podman: PodmanEngine) -> None:
    """Containers in three conditions: "web" healthy, "sick" unhealthy, "job" exited with 3."""
    podman.run("web", health_cmd="true", init=True)
    podman.healthcheck("web")
    podman.run("sick", health_cmd="false", init=True)
    podman.healthcheck("sick")
    podman.run("job", exit_code=3)


@pytest.fixture
def worker_processes(tmp_path: Path, loopback_sockets: None) -> Iterator[WorkerProcesses]:
    """Real worker processes on tmp_path/data; any still running at the end are killed."""
    from .worker_processes import WorkerProcesses  # noqa: PLC0415 - it imports this module

    workers = WorkerProcesses(tmp_path)
    yield workers
    for process in workers.processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=5)
