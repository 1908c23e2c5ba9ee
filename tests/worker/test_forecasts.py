"""Disk use, forecasts and the prune through the worker's API, against a real engine.

The engine is podman serving the Docker API (tests/podman.py); the images to prune are imported
locally. The one that refuses a prune is the same engine behind a loopback proxy that answers
image removals as Docker does when it will not remove an image.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
import ctypes
from dataclasses import dataclass
import gzip
import os
from pathlib import Path
import subprocess
import time

import aiohttp
from aiohttp import web
import pytest

from hydra_core.audit import AuditLog, AuditQuery
from hydra_core.client import HydraApiError, HydraClient
from hydra_core.containers import EngineClient, ProtectionPolicy
from hydra_core.events import EventBus
from hydra_core.forecasts.client import ForecastsClient
from hydra_core.forecasts.models import EVENT_FORECASTS, KIND_CONTAINER_TROUBLE
from hydra_core.forecasts.part import ForecastsPart
from hydra_core.forecasts.prune import Pruner
from hydra_core.forecasts.service import ForecastService
from hydra_core.forecasts.store import ForecastStore
from hydra_core.gpu import NoGpuProbe
from hydra_core.models import Actor
from tests.podman import DOCKER_API, PodmanEngine

from .conftest import LOOPBACK, ServeWorker

pytestmark = pytest.mark.usefixtures("loopback_sockets")

TOKEN = "forecasts-test-token-0123456"
USER = Actor(type="user", id="u-1", name="Ada")
DAY_S = 86400.0
_CLONE_NEWNS = 0x00020000


@dataclass
class Worker:
    """A worker with the forecasts part, reached over HTTP, and its audit log."""

    client: HydraClient
    forecasts: ForecastsClient
    service: ForecastService
    audit: AuditLog
    bus: EventBus


StartWorker = Callable[..., Awaitable[Worker]]


@pytest.fixture
async def start_worker(
    podman: PodmanEngine, serve_worker: ServeWorker, tmp_path: Path
) -> AsyncIterator[StartWorker]:
    """Start a worker whose forecasts part watches ``paths`` and prunes through the engine
    (``docker_host``: another address of it); ``db-*`` is protected."""
    sessions: list[aiohttp.ClientSession] = []
    engines: list[EngineClient] = []

    async def start(
        *, paths: list[Path], data_dir: Path | None = None, docker_host: str | None = None
    ) -> Worker:
        bus = EventBus()
        audit = AuditLog(tmp_path / "audit.db")
        engine = EngineClient(docker_host or podman.docker_host)
        engines.append(engine)
        service = ForecastService(
            ForecastStore(tmp_path / "forecasts.db"),
            paths=paths,
            bus=bus,
            probe=NoGpuProbe(),
            engine=engine,
            interval_s=3600,  # samples are taken by the tests
        )
        pruner = Pruner(
            data_dir=data_dir or tmp_path / "data",
            audit=audit,
            engine=engine,
            policy=ProtectionPolicy.from_patterns(["db-*"]),
        )
        url = await serve_worker(
            token=TOKEN, audit=audit, bus=bus, parts=[ForecastsPart(service, pruner)]
        )
        session = aiohttp.ClientSession()
        sessions.append(session)
        client = HydraClient(session, url, TOKEN)
        return Worker(client, ForecastsClient(client), service, audit, bus)

    yield start
    for session in sessions:
        await session.close()
    for engine in engines:
        await engine.close()


def _import_image(podman: PodmanEngine, name: str) -> None:
    """An image of its own (a label makes its id differ from the others')."""
    assert podman.root is not None
    podman.podman(
        "import", "--quiet", "--change", f"LABEL hydra.test={name}", "--message", name,
        str(podman.root / "rootfs.tar"), name,
    )  # fmt: skip


def _tags(podman: PodmanEngine) -> set[str]:
    images = podman.api("GET", f"{DOCKER_API}/images/json")
    return {tag for image in images for tag in image.get("RepoTags") or ()}


@pytest.fixture
def images(podman: PodmanEngine) -> Iterator[Callable[[], set[str]]]:
    """Two unused images, one used by a running container and the test image used by a
    protected one; what is left is removed after the test (the test image stays)."""
    for name in ("localhost/old-a:1", "localhost/old-b:1", "localhost/busy:1"):
        _import_image(podman, name)
    podman.run("db-main", init=True)  # protected, on the session's test image
    podman.run("app", init=True, image="localhost/busy:1")
    yield lambda: _tags(podman)
    podman.remove_all()
    for name in ("localhost/old-a:1", "localhost/old-b:1", "localhost/busy:1"):
        podman.request("DELETE", f"{DOCKER_API}/images/{name}")


async def test_prune_dry_run_then_removes_only_unused_images_each_audited(
    start_worker: StartWorker, podman: PodmanEngine, images: Callable[[], set[str]], tmp_path: Path
) -> None:
    worker = await start_worker(paths=[tmp_path])
    dry = await worker.forecasts.async_prune(actor=USER)
    assert dry.dry_run
    would = {item.name for item in dry.items if item.result == "would_remove"}
    assert would == {"localhost/old-a:1", "localhost/old-b:1"}
    assert dry.protected == ("db-main",)
    assert dry.kept_in_use == 2
    assert dry.freed_bytes > 0
    assert {"localhost/old-a:1", "localhost/old-b:1"} <= images()  # nothing removed
    assert await worker.audit.async_query(AuditQuery(action="remove_image")) == []

    done = await worker.forecasts.async_prune(actor=USER, dry_run=False)
    assert {item.name for item in done.items if item.result == "ok"} == would
    left = images()
    assert podman.image in left  # the protected container's image stays
    assert "localhost/busy:1" in left  # and the running container's
    assert not left & would
    entries = await worker.audit.async_query(AuditQuery(action="remove_image"))
    assert {(entry.container, entry.result, entry.actor.name) for entry in entries} == {
        ("image:localhost/old-a:1", "ok", "Ada"),
        ("image:localhost/old-b:1", "ok", "Ada"),
    }


async def test_prune_stays_within_its_byte_budget(
    start_worker: StartWorker, images: Callable[[], set[str]], tmp_path: Path
) -> None:
    worker = await start_worker(paths=[tmp_path])
    dry = await worker.forecasts.async_prune(actor=USER)
    one = max(item.bytes for item in dry.items if item.kind == "image")
    done = await worker.forecasts.async_prune(actor=USER, dry_run=False, budget_bytes=one)
    results = sorted(item.result for item in done.items if item.kind == "image")
    assert results == ["kept", "ok"]
    assert done.freed_bytes <= one
    assert len({"localhost/old-a:1", "localhost/old-b:1"} & images()) == 1


@pytest.fixture
async def refusing_engine(podman: PodmanEngine) -> AsyncIterator[str]:
    """The engine on loopback TCP, refusing every image removal as Docker does (409)."""
    upstream = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=podman.socket_path))

    async def forward(request: web.Request) -> web.Response:
        if request.method == "DELETE" and "/images/" in request.path:
            return web.json_response(
                {"message": "conflict: unable to delete image (must be forced)"}, status=409
            )
        async with upstream.request(request.method, f"http://engine{request.path_qs}") as reply:
            return web.Response(
                status=reply.status, body=await reply.read(), content_type=reply.content_type
            )

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, 0)
    await site.start()
    yield f"tcp://{LOOPBACK}:{runner.addresses[0][1]}"
    await runner.cleanup()
    await upstream.close()


async def test_an_engine_that_refuses_a_prune_is_a_clear_error_and_nothing_is_lost(
    start_worker: StartWorker,
    refusing_engine: str,
    images: Callable[[], set[str]],
    tmp_path: Path,
) -> None:
    worker = await start_worker(paths=[tmp_path], docker_host=refusing_engine)
    before = images()
    with pytest.raises(HydraApiError) as caught:
        await worker.forecasts.async_prune(actor=USER, dry_run=False)
    assert caught.value.code == "prune_refused"
    assert "refused to remove the image localhost/old-" in caught.value.message
    assert images() == before
    entries = await worker.audit.async_query(AuditQuery(action="remove_image"))
    assert [entry.result for entry in entries] == ["failed"]


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder mounted read-only (in a mount namespace of the test process's own)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    (folder / "kept.bin").write_bytes(b"k" * 1000)
    old = folder / ".state.json.abcd.tmp"
    old.write_bytes(b"t" * 500)
    then = time.time() - 2 * DAY_S
    os.utime(old, (then, then))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNS) != 0:
        pytest.fail(f"cannot make a mount namespace: {os.strerror(ctypes.get_errno())}")
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    subprocess.run(["mount", "--bind", "-o", "ro", str(folder), str(folder)], check=True)
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


async def test_disk_of_existing_missing_and_read_only_folders(
    start_worker: StartWorker, read_only_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "file.bin").write_bytes(b"x" * 4096)
    missing = tmp_path / "not-there"
    worker = await start_worker(paths=[data, missing, read_only_dir])
    status = await worker.client.async_status()
    assert status.parts["forecasts"].capabilities == ("disk", "forecasts", "prune", "engine")
    await worker.service.async_sample()
    disk = await worker.forecasts.async_disk()
    by_path = {item.path: item for item in disk.paths}
    assert by_path[str(data)].bytes == 4096
    assert by_path[str(data)].disk_free is not None
    assert by_path[str(data)].samples == 1
    assert by_path[str(data)].days_until_full is None  # one sample says nothing of growth
    assert not by_path[str(missing)].exists
    assert by_path[str(missing)].error == "no such folder"
    assert by_path[str(read_only_dir)].bytes == 1500
    assert by_path[str(read_only_dir)].error is None
    assert disk.engine is not None
    assert disk.engine.available
    assert disk.engine.images >= 1


async def test_prune_of_a_read_only_folder_fails_that_file_audited_and_goes_on(
    start_worker: StartWorker, read_only_dir: Path, tmp_path: Path
) -> None:
    worker = await start_worker(paths=[tmp_path], data_dir=read_only_dir)
    report = await worker.forecasts.async_prune(actor=USER, dry_run=False, images="dangling")
    temp = [item for item in report.items if item.kind == "temp_file"]
    assert [(item.name, item.result) for item in temp] == [(".state.json.abcd.tmp", "failed")]
    assert "Read-only file system" in (temp[0].detail or "")
    assert (read_only_dir / ".state.json.abcd.tmp").exists()
    entries = await worker.audit.async_query(AuditQuery(action="remove_temp"))
    assert [entry.result for entry in entries] == ["failed"]


async def test_old_temp_files_go_and_old_audit_entries_are_archived(
    start_worker: StartWorker, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    old = data / "models" / "voice.onnx.part"
    old.write_bytes(b"p" * 300)
    then = time.time() - 2 * DAY_S
    os.utime(old, (then, then))
    fresh = data / ".token.1234.tmp"  # being written right now
    fresh.write_bytes(b"f")
    worker = await start_worker(paths=[data])
    await worker.audit.async_record(
        actor=USER, container="web", action="restart", result="ok", reason="old"
    )
    await worker.audit._run(  # an entry from a hundred days ago
        lambda: worker.audit._open().execute("UPDATE audit SET time = time - 100 * 86400")
    )
    report = await worker.forecasts.async_prune(actor=USER, dry_run=False, images="dangling")
    assert not old.exists()
    assert fresh.exists()
    archived = [item for item in report.items if item.kind == "audit_archive"]
    assert [item.result for item in archived] == ["ok"]
    archive = data / archived[0].name
    assert archive.exists()
    assert b'"reason": "old"' in gzip.decompress(archive.read_bytes())
    left = await worker.audit.async_query(AuditQuery(container="web"))
    assert left == []
    actions = {entry.action for entry in await worker.audit.async_query(AuditQuery())}
    assert {"remove_temp", "archive_audit"} <= actions


async def test_container_failing_more_often_each_day_is_forecast_from_its_events(
    start_worker: StartWorker, tmp_path: Path
) -> None:
    worker = await start_worker(paths=[tmp_path])
    clock = [time.time() - 8 * DAY_S]
    worker.service._clock = lambda: clock[0]
    listener = worker.bus.subscribe()
    await worker.service._on_event("container", {"name": "web", "id": "1", "state": "running"})
    restarts = 0
    for day in range(8):  # 1, 3, 5, ... 15 restarts a day
        for _ in range(2 * day + 1):
            restarts += 1
            clock[0] += DAY_S / (2 * day + 2)
            await worker.service._on_event(
                "container",
                {"name": "web", "id": "1", "state": "running", "restart_count": restarts},
            )
        clock[0] = time.time() - (7 - day) * DAY_S
    report = await worker.forecasts.async_forecasts()
    assert [(item.kind, item.subject) for item in report.forecasts] == [
        (KIND_CONTAINER_TROUBLE, "web")
    ]
    event = await listener.next(1)
    assert event is not None
    assert event.type == EVENT_FORECASTS
    listener.close()


async def test_trouble_is_counted_from_the_worker_events(
    start_worker: StartWorker, tmp_path: Path
) -> None:
    worker = await start_worker(paths=[tmp_path])
    running = {"name": "web", "id": "1", "state": "running", "health": "healthy"}
    worker.bus.publish("container", running)
    worker.bus.publish("container", {**running, "restart_count": 1})
    worker.bus.publish("container", {**running, "health": "unhealthy", "restart_count": 1})
    worker.bus.publish(
        "audit",
        {"actor": {"type": "self_heal"}, "container": "web", "action": "restart", "result": "ok"},
    )
    worker.bus.publish("container", {"name": "web", "id": "1", "state": "exited", "exit_code": 1})
    async with asyncio.timeout(5):
        while len((await worker.service.store.async_events(0)).get("web", (0, []))[1]) < 4:
            await asyncio.sleep(0.02)
    since, events = (await worker.service.store.async_events(0))["web"]
    assert since <= events[0]
    assert len(events) == 4  # a restart, an unhealthy turn, a self-healing restart, a death
