"""Container monitoring, actions, self-healing and the audit log against a real engine.

The engine is podman serving the Docker API (tests/podman.py); the worker application runs on
loopback and is reached through the typed client, as Home Assistant reaches it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
import contextlib
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
import sqlite3
import ssl
import subprocess
import time

import aiohttp
from aiohttp import web
import pytest

from hydra_core.audit import AuditLog
from hydra_core.client import HydraApiError, HydraClient
from hydra_core.containers import ContainerService, EngineClient, ProtectionPolicy
from hydra_core.containers.client import ContainersClient
from hydra_core.containers.models import (
    EVENT_CONTAINER,
    EVENT_HEAL_EXHAUSTED,
    ContainerInfo,
    HealingSettings,
)
from hydra_core.containers.part import ContainersPart
from hydra_core.events import EventBus
from hydra_core.models import EVENT_AUDIT, Actor, WorkerEvent, WorkerInfo
from tests.podman import DOCKER_API, TOGGLE_HEALTH_CMD, PodmanEngine, allow_unix_connect

from .conftest import LOOPBACK, ServeWorker, run_healthy_sick_and_exited

# Sockets enabled before the engine's socket is let through (see start_worker).
pytestmark = pytest.mark.usefixtures("loopback_sockets")

TOKEN = "containers-test-token-012345"
USER = Actor(type="user", id="u-1", name="Ada")


@dataclass
class Worker:
    """A worker with a container service, reached over HTTP, plus its innards for checks."""

    client: HydraClient
    service: ContainerService
    bus: EventBus
    url: str
    audit: AuditLog


StartWorker = Callable[..., Awaitable[Worker]]


@pytest.fixture
async def start_worker(
    loopback_sockets: None, podman: PodmanEngine, serve_worker: ServeWorker, tmp_path: Path
) -> AsyncIterator[StartWorker]:
    """Start a worker following the test engine; options as keyword arguments.

    Test containers run with an init process (``init=True``) so SIGTERM stops them at once, as
    real services do, instead of after the engine's 10 s grace period.

    The order of the fixtures matters under Home Assistant's test plugin: sockets enabled
    first, then the engine's socket let through, then the servers, so the servers (and the
    worker's engine connections) are gone before the engine's socket is guarded again.
    """
    sessions: list[aiohttp.ClientSession] = []

    async def start(
        *,
        protected: tuple[str, ...] = ("db-*",),
        healing: HealingSettings | None = None,
        docker_host: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Worker:
        bus = EventBus()
        audit = AuditLog(tmp_path / "audit.db")
        engine = (
            EngineClient(docker_host or podman.docker_host)
            if environ is None
            else EngineClient(docker_host or podman.docker_host, environ)
        )
        service = ContainerService(
            engine,
            policy=ProtectionPolicy.from_patterns(protected),
            audit=audit,
            bus=bus,
            data_dir=tmp_path,
            healing=healing or HealingSettings(unhealthy_checks=2, max_restarts_per_hour=2),
            interval_s=3600,  # cycles are driven by the tests
            heal_backoff_s=0,
        )
        info = WorkerInfo(worker_id="w-containers", name="box", version="0.1.0")
        url = await serve_worker(
            info=info, token=TOKEN, audit=audit, bus=bus, parts=[ContainersPart(service)]
        )
        session = aiohttp.ClientSession()
        sessions.append(session)
        return Worker(HydraClient(session, url, TOKEN), service, bus, url, audit)

    yield start
    for session in sessions:
        await session.close()


@dataclass
class EngineProxy:
    """podman's Docker API alone on loopback TCP, as a Docker engine serves it.

    Paths of libpod's own API answer 404 as Docker answers a path it does not know; every
    path asked is kept, so a test counts what reached the engine.
    """

    url: str
    asked: list[str] = field(default_factory=list)

    def count(self, path: str) -> int:
        """How many requests asked for ``path``."""
        return self.asked.count(path)


StartProxy = Callable[..., Awaitable[EngineProxy]]


@pytest.fixture
async def engine_proxy(loopback_sockets: None, podman: PodmanEngine) -> AsyncIterator[StartProxy]:
    """Serve the test engine's Docker API on 127.0.0.1, over TLS with ``tls``."""
    runners: list[web.AppRunner] = []
    upstream = aiohttp.ClientSession(
        connector=aiohttp.UnixConnector(path=podman.socket_path),
        timeout=aiohttp.ClientTimeout(total=None),
    )

    async def start(tls: ssl.SSLContext | None = None) -> EngineProxy:
        proxy = EngineProxy(url="")

        async def forward(request: web.Request) -> web.StreamResponse:
            proxy.asked.append(request.path)
            if not request.path.startswith(f"{DOCKER_API}/"):
                return web.json_response({"message": "page not found"}, status=404)
            async with upstream.request(
                request.method, f"http://engine{request.path_qs}", data=await request.read()
            ) as reply:
                response = web.StreamResponse(status=reply.status)
                response.content_type = reply.content_type
                await response.prepare(request)
                async for chunk in reply.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response

        app = web.Application()
        app.router.add_route("*", "/{path:.*}", forward)
        # A client that hangs up ends its request here too (the event stream never ends).
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1, handler_cancellation=True)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, LOOPBACK, 0, ssl_context=tls)
        await site.start()
        port = runner.addresses[0][1]
        proxy.url = f"{'https' if tls else 'tcp'}://{LOOPBACK}:{port}"
        return proxy

    yield start
    await upstream.close()
    for runner in runners:
        await runner.cleanup()


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that signs itself (its own CA), and its key."""
    folder.mkdir()
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", f"/CN={LOOPBACK}", "-addext", f"subjectAltName=IP:{LOOPBACK}",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def _container(worker: Worker, name: str) -> ContainerInfo:
    return (await ContainersClient(worker.client).async_containers()).by_name()[name]


async def _until(check: Callable[[], bool], within: float = 2) -> None:
    """Wait until the worker has seen what the engine did (its event stream is asynchronous)."""
    async with asyncio.timeout(within):
        while not check():
            await asyncio.sleep(0.02)


async def _wait_for_event(
    subscription: AsyncIterator[WorkerEvent], check: Callable[[WorkerEvent], bool], within: float
) -> tuple[WorkerEvent, float]:
    started = time.monotonic()
    async with asyncio.timeout(within):
        async for event in subscription:
            if check(event):
                return event, time.monotonic() - started
    raise AssertionError("the event stream ended")


async def test_every_container_with_state_health_and_protection(
    podman: PodmanEngine, start_worker: StartWorker
) -> None:
    run_healthy_sick_and_exited(podman)
    podman.run("db-main", init=True)
    podman.run("vault", labels={"hydra.protected": "true"}, init=True)
    worker = await start_worker(healing=HealingSettings(enabled=False))

    report = await ContainersClient(worker.client).async_containers()
    assert report.engine_available
    assert report.engine_version.startswith("Podman")
    containers = report.by_name()
    assert {name: (c.state, c.health) for name, c in containers.items()} == {
        "web": ("running", "healthy"),
        "sick": ("running", "unhealthy"),
        "job": ("exited", "none"),
        "db-main": ("running", "none"),
        "vault": ("running", "none"),
    }
    assert containers["job"].exit_code == 3
    assert containers["job"].problem
    assert containers["sick"].problem
    assert not containers["web"].problem
    assert {name for name, c in containers.items() if c.protected} == {"db-main", "vault"}
    assert containers["web"].image.endswith("hydra-test-busybox:latest")


async def test_cpu_needs_two_samples_then_is_measured(
    podman: PodmanEngine, start_worker: StartWorker
) -> None:
    """CPU % from two samples of podman's batch stats."""
    podman.run("busy", command=("sh", "-c", "while true; do :; done"))
    worker = await start_worker()
    first = await _container(worker, "busy")
    assert first.cpu_percent is None  # one sample cannot give a rate
    assert first.memory_used_bytes is not None
    await asyncio.sleep(0.5)
    await worker.service.async_refresh()
    busy = await _container(worker, "busy")
    assert busy.cpu_percent is not None
    assert busy.cpu_percent > 20  # a spinning shell keeps a core busy


async def test_cpu_from_the_docker_api_on_an_engine_without_batch_stats(
    podman: PodmanEngine, engine_proxy: StartProxy, start_worker: StartWorker
) -> None:
    """An engine with the Docker API only (as Docker is): the batch call is tried once, then
    each running container's stats come from the Docker API's stats endpoint, every cycle."""
    busy_id = podman.run("busy", command=("sh", "-c", "while true; do :; done"))
    proxy = await engine_proxy()
    worker = await start_worker(docker_host=proxy.url)
    first = await _container(worker, "busy")
    assert first.cpu_percent is None
    assert first.memory_used_bytes is not None
    await asyncio.sleep(0.5)
    await worker.service.async_refresh()
    busy = await _container(worker, "busy")
    assert busy.cpu_percent is not None
    assert busy.cpu_percent > 20
    assert 0 < busy.memory_used_bytes < busy.memory_limit_bytes
    assert proxy.count("/v4.0.0/libpod/containers/stats") == 1
    assert proxy.count(f"{DOCKER_API}/containers/{busy_id}/stats") == 2


async def test_changes_are_pushed_within_two_seconds(
    podman: PodmanEngine, start_worker: StartWorker
) -> None:
    podman.run("web", health_cmd=TOGGLE_HEALTH_CMD, init=True)
    podman.make_healthy("web")
    worker = await start_worker(healing=HealingSettings(enabled=False))
    events = worker.client.async_events()
    await anext(events)  # hello

    await asyncio.to_thread(podman.make_unhealthy, "web")
    event, _ = await _wait_for_event(
        events,
        lambda e: e.type == EVENT_CONTAINER and e.data["health"] == "unhealthy",
        within=2,
    )
    assert event.data["name"] == "web"

    await asyncio.to_thread(podman.kill, "web")
    event, elapsed = await _wait_for_event(
        events,
        lambda e: e.type == EVENT_CONTAINER and e.data["state"] == "exited",
        within=2,
    )
    assert event.data["exit_code"] == 137
    assert elapsed < 2
    await events.aclose()


async def test_self_healing_restarts_unhealthy_within_budget(
    podman: PodmanEngine, start_worker: StartWorker
) -> None:
    podman.run("sick", health_cmd="false", init=True)
    podman.healthcheck("sick")
    worker = await start_worker()
    subscription = worker.bus.subscribe()
    first_id = (await _container(worker, "sick")).id
    started_at = (await _container(worker, "sick")).started_at

    # Seen unhealthy once at start-up; the second consecutive check restarts it.
    await worker.service.async_refresh()
    restarted = await _container(worker, "sick")
    assert restarted.id == first_id
    assert restarted.started_at != started_at
    entries = await worker.client.async_audit(container="sick")
    assert [(e.actor.type, e.action, e.result) for e in entries] == [("self_heal", "restart", "ok")]
    assert entries[0].reason == "unhealthy for 2 consecutive checks"

    # Still failing after each restart: the budget (2 an hour) runs out, Hydra says so once.
    for _ in range(6):
        await asyncio.to_thread(podman.healthcheck, "sick")
        await _until(lambda: worker.service.get("sick").health == "unhealthy")
        await worker.service.async_refresh()
    entries = await worker.client.async_audit(container="sick")
    assert [(e.action, e.result) for e in reversed(entries)] == [
        ("restart", "ok"),
        ("restart", "ok"),
        ("restart", "refused"),
    ]
    assert "budget" in entries[0].reason
    exhausted, _ = await _wait_for_event(
        subscription, lambda e: e.type == EVENT_HEAL_EXHAUSTED, within=1
    )
    assert exhausted.data == {"container": "sick", "restarts": 2, "window_s": 3600.0}
    subscription.close()


async def test_crashed_container_is_restarted_but_not_one_stopped_on_purpose(
    podman: PodmanEngine, start_worker: StartWorker
) -> None:
    podman.run("job", exit_code=3)
    podman.run("svc", init=True)
    worker = await start_worker()
    await asyncio.to_thread(podman.stop, "svc", timeout=10)
    await _until(lambda: worker.service.get("svc").state == "exited")
    await worker.service.async_refresh()

    entries = await worker.client.async_audit(actor_type="self_heal")
    # The job crashes again after each restart, until the budget (2) is spent; svc was stopped.
    assert {(e.container, e.reason) for e in entries if e.result == "ok"} == {
        ("job", "exited with code 3")
    }
    assert (await _container(worker, "svc")).state == "exited"


async def test_protected_is_never_touched(podman: PodmanEngine, start_worker: StartWorker) -> None:
    podman.run("db-main", health_cmd="false", init=True)
    podman.healthcheck("db-main")
    worker = await start_worker()
    before = await _container(worker, "db-main")
    for _ in range(4):
        await worker.service.async_refresh()

    with pytest.raises(HydraApiError) as caught:
        await ContainersClient(worker.client).async_container_action(
            "db-main", "restart", USER, "try it"
        )
    assert (caught.value.status, caught.value.code) == (403, "container_protected")
    assert "protected" in caught.value.message
    with pytest.raises(HydraApiError) as caught:
        await ContainersClient(worker.client).async_container_action("db-main", "stop", USER)
    assert caught.value.code == "container_protected"

    after = podman.inspect("db-main")
    assert after["State"]["StartedAt"] == before.started_at
    assert after["State"]["Status"] == "running"

    # Stopped by its owner, it stays stopped: Hydra does not start it either.
    await asyncio.to_thread(podman.stop, "db-main", timeout=10)
    with pytest.raises(HydraApiError) as caught:
        await ContainersClient(worker.client).async_container_action("db-main", "start", USER)
    assert caught.value.code == "container_protected"
    assert podman.inspect("db-main")["State"]["Status"] == "exited"

    entries = await worker.client.async_audit(container="db-main")
    assert [(e.actor.type, e.action, e.result) for e in reversed(entries)] == [
        ("self_heal", "restart", "refused"),  # once per episode, not every check
        ("user", "restart", "refused"),
        ("user", "stop", "refused"),
        ("user", "start", "refused"),
    ]
    assert entries[2].actor == USER
    assert entries[2].reason == "try it"


def _fill(audit: AuditLog) -> None:
    """The disk is full for the audit log: no pages beyond the ones it has, and those used up
    (SQLite's own limit, on the log's own connection, so its writes fail as on a full disk)."""
    db = audit._open()
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")
    with contextlib.suppress(sqlite3.OperationalError):
        while True:
            db.execute(
                "INSERT INTO audit (time, actor_type, container, action, result)"
                " VALUES (0, 'test', 'filler', 'fill', 'ok')"
            )


async def test_no_action_when_the_audit_log_cannot_be_written(
    podman: PodmanEngine, start_worker: StartWorker
) -> None:
    podman.run("web", init=True)
    worker = await start_worker()
    await worker.service.async_refresh()
    started = podman.inspect("web")["State"]["StartedAt"]
    await worker.audit._run(partial(_fill, worker.audit))

    with pytest.raises(HydraApiError) as caught:
        await ContainersClient(worker.client).async_container_action("web", "stop", USER)

    assert (caught.value.status, caught.value.code) == (503, "audit_unavailable")
    assert "does not act unaudited" in caught.value.message
    state = podman.inspect("web")["State"]
    assert (state["Status"], state["StartedAt"]) == ("running", started)


async def test_actions_are_carried_out_and_audited(
    podman: PodmanEngine, start_worker: StartWorker
) -> None:
    podman.run("web", init=True)
    worker = await start_worker()
    subscription = worker.bus.subscribe()

    entry = await ContainersClient(worker.client).async_container_action(
        "web", "stop", USER, "maintenance"
    )
    assert (entry.result, entry.actor, entry.reason) == ("ok", USER, "maintenance")
    assert podman.inspect("web")["State"]["Status"] in ("exited", "stopped")
    audit_event, _ = await _wait_for_event(subscription, lambda e: e.type == EVENT_AUDIT, within=1)
    assert audit_event.data["id"] == entry.id

    # Stopped on purpose: self-healing leaves it alone.
    await worker.service.async_refresh()
    assert (await _container(worker, "web")).state == "exited"
    await ContainersClient(worker.client).async_container_action(
        "web", "start", Actor(type="automation", id="a1")
    )
    await ContainersClient(worker.client).async_container_action("web", "restart", USER)
    assert (await _container(worker, "web")).state == "running"
    actions = [(e.action, e.result) for e in await worker.client.async_audit(container="web")]
    assert actions == [("restart", "ok"), ("start", "ok"), ("stop", "ok")]
    subscription.close()


async def test_bad_requests_are_clear_and_audited_where_attempted(
    podman: PodmanEngine, start_worker: StartWorker
) -> None:
    podman.run("web", init=True)
    worker = await start_worker()
    with pytest.raises(HydraApiError) as caught:
        await ContainersClient(worker.client).async_container_action("ghost", "restart", USER)
    assert (caught.value.status, caught.value.code) == (404, "container_not_found")
    assert [(e.container, e.result) for e in await worker.client.async_audit()] == [
        ("ghost", "failed")
    ]

    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as http:
        for path, body, code in (
            ("containers/web/explode", None, "invalid_action"),
            ("containers/web/restart", "{not json", "invalid_body"),
            ("containers/web/restart", "[1, 2]", "invalid_body"),
            ("containers/web/restart", '{"actor": {"type": "self_heal"}}', "invalid_body"),
            ("containers/web/restart", '{"actor": "me"}', "invalid_body"),
            ("containers/web/restart", '{"reason": 5}', "invalid_body"),
        ):
            async with http.post(f"{worker.url}/api/v1/{path}", data=body, headers=auth) as reply:
                answer = await reply.json()
            assert (reply.status, answer["code"]) == (400, code), path
        async with http.put(
            f"{worker.url}/api/v1/healing", data='{"enabled": "yes"}', headers=auth
        ) as reply:
            assert reply.status == 400
    # Nothing malformed reached the engine or the log.
    assert podman.inspect("web")["State"]["Status"] == "running"
    assert len(await worker.client.async_audit()) == 1


async def test_recreated_container_keeps_its_name(
    podman: PodmanEngine, start_worker: StartWorker
) -> None:
    old_id = podman.run("web", init=True)
    worker = await start_worker()
    subscription = worker.bus.subscribe()
    new_id = await asyncio.to_thread(podman.recreate, "web")
    event, _ = await _wait_for_event(
        subscription,
        lambda e: e.type == EVENT_CONTAINER and e.data["id"] == new_id,
        within=2,
    )
    assert event.data["name"] == "web"
    assert new_id != old_id
    assert (await _container(worker, "web")).id == new_id
    subscription.close()


async def test_audit_and_healing_switch_survive_a_worker_restart(
    podman: PodmanEngine, start_worker: StartWorker, tmp_path: Path
) -> None:
    podman.run("web", init=True)
    worker = await start_worker()
    await ContainersClient(worker.client).async_container_action("web", "restart", USER)
    settings = await ContainersClient(worker.client).async_set_healing(enabled=False)
    assert not settings.enabled
    await worker.service.async_stop()

    again = await start_worker()
    assert not (await ContainersClient(again.client).async_containers()).healing.enabled
    entries = await again.client.async_audit()
    assert [(e.container, e.action, e.actor.name) for e in entries] == [("web", "restart", "Ada")]


async def test_engine_gone_and_back(podman: PodmanEngine, start_worker: StartWorker) -> None:
    """With its engine stopped the worker says so, keeps serving, and recovers by itself."""
    engine = PodmanEngine()
    await asyncio.to_thread(engine.start)
    try:
        with allow_unix_connect(engine.socket_path):
            await asyncio.to_thread(engine.run, "web", init=True)
            worker = await start_worker(docker_host=engine.docker_host)
            assert (await ContainersClient(worker.client).async_containers()).engine_available
            await asyncio.to_thread(engine.stop_service)
            await worker.service.async_refresh()
            report = await ContainersClient(worker.client).async_containers()
            assert not report.engine_available
            assert "Cannot reach the container engine" in report.engine_error
            with pytest.raises(HydraApiError) as caught:
                await ContainersClient(worker.client).async_container_action("web", "restart", USER)
            assert (caught.value.status, caught.value.code) == (503, "engine_unavailable")

            await asyncio.to_thread(engine.start_service)
            await worker.service.async_refresh()
            report = await ContainersClient(worker.client).async_containers()
            assert report.engine_available
            assert report.by_name()["web"].state == "running"
            # Stopped while this engine's socket is still let through.
            await worker.service.async_stop()
    finally:
        await asyncio.to_thread(engine.shutdown)


async def test_a_renamed_container_leaves_no_stale_name(
    podman: PodmanEngine, start_worker: StartWorker
) -> None:
    """Renamed into a protected name: the old name is gone, and nothing acts through it."""
    podman.run("web", init=True)
    worker = await start_worker()
    started_at = (await _container(worker, "web")).started_at
    await asyncio.to_thread(podman.rename, "web", "db-web")
    await _until(lambda: worker.service.get("db-web") is not None)

    containers = (await ContainersClient(worker.client).async_containers()).by_name()
    assert list(containers) == ["db-web"]
    assert containers["db-web"].protected
    for action in ("stop", "restart"):
        with pytest.raises(HydraApiError) as caught:
            await ContainersClient(worker.client).async_container_action("web", action, USER)
        assert (caught.value.status, caught.value.code) == (404, "container_not_found")
    state = podman.inspect("db-web")["State"]
    assert (state["Status"], state["StartedAt"]) == ("running", started_at)


async def test_compose_recreate_of_a_protected_container(
    podman: PodmanEngine, start_worker: StartWorker
) -> None:
    """Compose's recreate (new container as ``<id12>_db-main``, old one removed, new renamed):
    no name of it, temporary or final, can stop the protected database."""
    old_id = podman.run("db-main", init=True)
    worker = await start_worker()
    temporary = f"{old_id[:12]}_db-main"
    new_id = await asyncio.to_thread(podman.compose_recreate, "db-main")
    await _until(lambda: getattr(worker.service.get("db-main"), "id", None) == new_id)

    for name in (temporary, "db-main"):
        with pytest.raises(HydraApiError) as caught:
            await ContainersClient(worker.client).async_container_action(name, "stop", USER)
        assert caught.value.code in ("container_not_found", "container_protected")
    assert podman.inspect("db-main")["State"]["Status"] == "running"
    containers = (await ContainersClient(worker.client).async_containers()).by_name()
    assert list(containers) == ["db-main"]
    assert containers["db-main"].protected


async def test_compose_temporary_name_is_protected_too(
    podman: PodmanEngine, start_worker: StartWorker
) -> None:
    """While Compose recreates a protected service, its new container is protected already."""
    old_id = podman.run("db-main", init=True)
    worker = await start_worker()
    temporary = f"{old_id[:12]}_db-main"
    await asyncio.to_thread(podman.run, temporary, init=True)
    await _until(lambda: worker.service.get(temporary) is not None)
    assert worker.service.get(temporary).protected
    with pytest.raises(HydraApiError) as caught:
        await ContainersClient(worker.client).async_container_action(temporary, "stop", USER)
    assert caught.value.code == "container_protected"
    assert podman.inspect(temporary)["State"]["Status"] == "running"


async def test_protection_label_added_then_removed(
    podman: PodmanEngine, start_worker: StartWorker
) -> None:
    """The label is read from the container as it is now: added, every action is refused
    (start included); removed, actions work again."""
    podman.run("vault", init=True)
    worker = await start_worker()
    api = ContainersClient(worker.client)
    await api.async_container_action("vault", "stop", USER)
    assert podman.inspect("vault")["State"]["Status"] == "exited"

    protected_id = await asyncio.to_thread(
        podman.compose_recreate, "vault", labels={"hydra.protected": "true"}
    )
    await asyncio.to_thread(podman.stop, "vault", timeout=10)
    for action in ("start", "restart", "stop"):
        with pytest.raises(HydraApiError) as caught:
            await api.async_container_action("vault", action, USER)
        assert (caught.value.status, caught.value.code) == (403, "container_protected")
        assert "never starts, stops or restarts" in caught.value.message
    assert podman.inspect("vault")["Id"] == protected_id
    assert podman.inspect("vault")["State"]["Status"] == "exited"

    await asyncio.to_thread(podman.compose_recreate, "vault", labels={})
    await api.async_container_action("vault", "restart", USER)
    assert podman.inspect("vault")["State"]["Status"] == "running"
    entries = await worker.client.async_audit(container="vault")
    assert [(e.action, e.result) for e in reversed(entries)] == [
        ("stop", "ok"),
        ("start", "refused"),
        ("restart", "refused"),
        ("stop", "refused"),
        ("restart", "ok"),
    ]


async def test_https_engine_is_verified(
    podman: PodmanEngine, engine_proxy: StartProxy, start_worker: StartWorker, tmp_path: Path
) -> None:
    """An engine whose certificate nobody vouches for is refused with a clear error; its CA in
    DOCKER_CERT_PATH (as the Docker CLI reads it) makes it trusted."""
    cert, key = _self_signed_certificate(tmp_path / "engine")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    podman.run("web", init=True)
    proxy = await engine_proxy(tls=tls)
    tcp = proxy.url.replace("https://", "tcp://")
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.pem").write_bytes(cert.read_bytes())

    for docker_host, environ in (
        (proxy.url, {}),
        (tcp, {"DOCKER_TLS_VERIFY": "1"}),
        (tcp, {"DOCKER_TLS_VERIFY": "0"}),  # set is set, as the Docker CLI reads it
    ):
        worker = await start_worker(docker_host=docker_host, environ=environ)
        report = await ContainersClient(worker.client).async_containers()
        assert not report.engine_available, (docker_host, environ)
        assert "certificate" in report.engine_error
        assert "DOCKER_CERT_PATH" in report.engine_error
        assert report.containers == ()
        with pytest.raises(HydraApiError) as caught:
            await ContainersClient(worker.client).async_container_action("web", "stop", USER)
        assert caught.value.code == "engine_unavailable"
        await worker.service.async_stop()
    assert proxy.asked == []  # no request got past the handshake

    for docker_host, environ in (
        (proxy.url, {"DOCKER_CERT_PATH": str(certs)}),
        (tcp, {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(certs)}),
    ):
        worker = await start_worker(docker_host=docker_host, environ=environ)
        report = await ContainersClient(worker.client).async_containers()
        assert report.engine_available, report.engine_error
        assert report.by_name()["web"].state == "running"
        await worker.service.async_stop()
