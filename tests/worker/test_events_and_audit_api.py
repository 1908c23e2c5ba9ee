"""The event stream and the audit routes of a worker without a container engine."""

from __future__ import annotations

import asyncio

import aiohttp
import aiohttp.web
import pytest

from hydra_core.audit import AuditLog
from hydra_core.client import HydraApiError, HydraAuthError, HydraClient, HydraConnectionError
from hydra_core.containers.client import ContainersClient
from hydra_core.events import MAX_LISTENERS, EventBus
from hydra_core.gpu import NoGpuProbe
from hydra_core.models import EVENT_HELLO, Actor
from hydra_core.worker.app import create_app
from tests.worker_identity import INFO, TOKEN

from .conftest import ServeWorker

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def bus_and_url(serve_worker: ServeWorker) -> tuple[EventBus, str]:
    bus = EventBus()
    url = await serve_worker(info=INFO, token=TOKEN, audit=AuditLog(None), bus=bus)
    return bus, url


async def test_event_stream_says_hello_then_streams(
    http: aiohttp.ClientSession, bus_and_url: tuple[EventBus, str]
) -> None:
    bus, url = bus_and_url
    client = HydraClient(http, url, TOKEN)
    events = client.async_events()
    hello = await asyncio.wait_for(anext(events), 2)
    assert (hello.type, hello.data["worker_id"]) == (EVENT_HELLO, INFO.worker_id)
    bus.publish("container", {"name": "web", "state": "exited"})
    event = await asyncio.wait_for(anext(events), 2)
    assert (event.type, event.data) == ("container", {"name": "web", "state": "exited"})
    await events.aclose()


async def test_event_stream_needs_the_token(
    http: aiohttp.ClientSession, bus_and_url: tuple[EventBus, str]
) -> None:
    _bus, url = bus_and_url
    with pytest.raises(HydraAuthError):
        await anext(HydraClient(http, url, "wrong-token-wrong-token").async_events())


async def test_event_listeners_are_capped(
    http: aiohttp.ClientSession, bus_and_url: tuple[EventBus, str]
) -> None:
    """Past MAX_LISTENERS open streams a new one is refused with the API's JSON answer; once
    one closes, another may open. The worker's own parts that follow the bus (metrics,
    forecasts) take none of those streams."""
    bus, url = bus_and_url
    own = [bus.subscribe(internal=True) for _ in range(3)]
    sockets = [
        await http.ws_connect(f"{url}/api/v1/events", headers=AUTH) for _ in range(MAX_LISTENERS)
    ]
    for socket in sockets:
        assert (await socket.receive_json(timeout=2))["type"] == EVENT_HELLO
    async with http.get(f"{url}/api/v1/events", headers=AUTH) as refused:
        assert refused.status == 503
        assert (await refused.json())["code"] == "too_many_listeners"
    with pytest.raises(HydraConnectionError):
        await anext(HydraClient(http, url, TOKEN).async_events())

    # A part that follows the bus still joins, and hears what the streams hear.
    late = bus.subscribe(internal=True)
    bus.publish("container", {"name": "web", "state": "exited"})
    for follower in (*own, late):
        assert (await follower.next(2)).data["name"] == "web"
        follower.close()

    await sockets.pop().close()
    events = HydraClient(http, url, TOKEN).async_events()
    assert (await asyncio.wait_for(anext(events), 2)).type == EVENT_HELLO
    await events.aclose()
    for socket in sockets:
        await socket.close()


async def test_container_routes_say_monitoring_is_off(
    http: aiohttp.ClientSession, bus_and_url: tuple[EventBus, str]
) -> None:
    _bus, url = bus_and_url
    client = HydraClient(http, url, TOKEN)
    with pytest.raises(HydraApiError) as caught:
        await ContainersClient(client).async_containers()
    assert (caught.value.status, caught.value.code) == (404, "containers_disabled")
    with pytest.raises(HydraApiError) as caught:
        await ContainersClient(client).async_container_action("web", "restart", Actor(type="user"))
    assert caught.value.code == "containers_disabled"


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=abc",
        "limit=5000",
        "actor=robot",
        "result=maybe",
        "action=delete",
        "since=yesterday",
        "bogus=1",
    ],
)
async def test_audit_rejects_bad_queries(
    http: aiohttp.ClientSession, bus_and_url: tuple[EventBus, str], query: str
) -> None:
    _bus, url = bus_and_url
    async with http.get(f"{url}/api/v1/audit?{query}", headers=AUTH) as response:
        body = await response.json()
    assert response.status == 400
    assert body["code"] == "invalid_query"


async def test_audit_empty_log(
    http: aiohttp.ClientSession, bus_and_url: tuple[EventBus, str]
) -> None:
    _bus, url = bus_and_url
    assert await HydraClient(http, url, TOKEN).async_audit(limit=10) == []


async def test_stopping_the_worker_ends_open_event_streams_at_once(
    loopback_sockets: None,
) -> None:
    """A connected Home Assistant does not hold the worker's shutdown up."""
    app = create_app(info=INFO, token=TOKEN, probe=NoGpuProbe())
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    await aiohttp.web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    async with aiohttp.ClientSession() as http:
        events = HydraClient(http, url, TOKEN).async_events()
        await anext(events)
        following = asyncio.create_task(anext(events))
        await asyncio.sleep(0.05)
        started = asyncio.get_running_loop().time()
        await runner.cleanup()
        assert asyncio.get_running_loop().time() - started < 2
        with pytest.raises(HydraConnectionError, match="closed the event stream"):
            await following
