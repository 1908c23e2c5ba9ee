"""The worker's control API served for real on 127.0.0.1, and the typed client against it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import dataclasses
import logging
import os
import re
import socket
from typing import Any

import aiohttp
from aiohttp import web
import pynvml
import pytest

from hydra_core.client import (
    HydraApiError,
    HydraAuthError,
    HydraClient,
    HydraConnectionError,
)
from hydra_core.gpu import NvmlProbe
from hydra_core.gpu.models import GpuInfo
from hydra_core.models import API_VERSION, WorkerStatus
from hydra_core.power.client import PowerClient
from hydra_core.voice.client import VoiceClient
from hydra_core.wire import dump
from hydra_core.worker.app import create_app
from tests.fake_nvml import GIB, FakeNvml, make_gpu
from tests.worker_identity import INFO, TOKEN

from .conftest import LOOPBACK, ServeApp, ServeWorker

GPU_FIELDS = {field.name for field in dataclasses.fields(GpuInfo)}


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class FlakyNvml(FakeNvml):
    """Fails with an unexpected (non-NVML) error on demand."""

    fail_next = False

    def nvmlDeviceGetCount(self) -> int:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("driver exploded at 0xdeadbeef")
        return super().nvmlDeviceGetCount()


@pytest.fixture
def fake() -> FlakyNvml:
    return FlakyNvml([make_gpu(0), make_gpu(1, name="NVIDIA RTX A6000", fan=80)])


@pytest.fixture
async def worker(serve_worker: ServeWorker, fake: FlakyNvml) -> str:
    """The real worker app over the fake NVML; returns its base URL."""
    return await serve_worker(info=INFO, token=TOKEN, probe=NvmlProbe(fake))


async def get(
    http: aiohttp.ClientSession, url: str, *, headers: dict[str, str] | None = None
) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with http.get(url, headers=headers) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json(), response


def assert_error(status: int, body: Any, expected_status: int, code: str) -> None:
    assert (status, body.get("code")) == (expected_status, code), body
    assert set(body) == {"code", "message"}
    assert isinstance(body["message"], str)
    assert body["message"]


# --- health and authentication -------------------------------------------------------------


async def test_health_needs_no_token(http: aiohttp.ClientSession, worker: str) -> None:
    status, body, _ = await get(http, f"{worker}/api/v1/health")

    assert status == 200
    assert body == {
        "status": "ok",
        "worker_id": "0f1e2d3c4b5a",
        "name": "gpu-box",
        "version": "0.1.0",
        "api_version": API_VERSION,
    }


async def test_status_without_token_is_401(http: aiohttp.ClientSession, worker: str) -> None:
    status, body, _ = await get(http, f"{worker}/api/v1/status")

    assert_error(status, body, 401, "unauthorized")
    assert "Bearer" in body["message"]


async def test_status_with_wrong_token_is_401(http: aiohttp.ClientSession, worker: str) -> None:
    status, body, _ = await get(
        http, f"{worker}/api/v1/status", headers=auth("not-the-token-0123456789")
    )

    assert_error(status, body, 401, "invalid_token")
    assert TOKEN not in body["message"]


@pytest.mark.parametrize(
    "authorization",
    [
        f"Basic {TOKEN}",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        TOKEN,
        f"Token {TOKEN}",
    ],
)
async def test_other_schemes_are_401(
    http: aiohttp.ClientSession, worker: str, authorization: str
) -> None:
    status, body, _ = await get(
        http, f"{worker}/api/v1/status", headers={"Authorization": authorization}
    )

    assert_error(status, body, 401, "unauthorized")


async def test_every_route_but_health_needs_the_token(
    http: aiohttp.ClientSession, worker: str
) -> None:
    for path in ("/api/v1/gpus", "/api/v1/gpus?index=0", "/api/v1/nope", "/"):
        status, body, _ = await get(http, f"{worker}{path}")
        assert_error(status, body, 401, "unauthorized")


# --- status ----------------------------------------------------------------------------------


async def test_status_with_token(http: aiohttp.ClientSession, worker: str) -> None:
    status, body, _ = await get(http, f"{worker}/api/v1/status", headers=auth())

    assert status == 200
    assert set(body) == {"worker", "started_at", "host", "gpu", "parts", "set_aside"}
    assert body["set_aside"] == []
    assert body["parts"] == {}  # a worker built with no parts runs none
    assert body["worker"] == dump(INFO)
    assert isinstance(body["started_at"], float)
    host = body["host"]
    assert host["hostname"] == socket.gethostname()
    assert host["cpu_count"] == (os.cpu_count() or 1)
    assert {"os", "kernel", "python", "memory_total_bytes", "load_average"} <= set(host)
    gpu = body["gpu"]
    assert gpu["backend"] == "nvml"
    assert gpu["available"] is True
    assert gpu["reason"] is None
    assert gpu["driver_version"] == "570.86.15"
    assert [item["index"] for item in gpu["gpus"]] == [0, 1]
    for item in gpu["gpus"]:
        assert set(item) == GPU_FIELDS
    first, second = gpu["gpus"]
    assert first == {
        "index": 0,
        "uuid": "GPU-00000000-1111-2222-3333-444455556666",
        "name": "NVIDIA GeForce RTX 4090",
        "utilization_percent": 37.0,
        "memory_utilization_percent": 12.0,
        "memory_total_bytes": 24 * GIB,
        "memory_used_bytes": 6 * GIB,
        "memory_free_bytes": 18 * GIB,
        "temperature_c": 61.0,
        "power_draw_w": 187.5,
        "power_limit_w": 450.0,
        "power_limit_min_w": 150.0,
        "power_limit_max_w": 600.0,
        "power_limit_default_w": 450.0,
        "fan_percent": 45.0,
        "slowdown_temperature_c": 87.0,
    }
    assert (second["name"], second["fan_percent"]) == ("NVIDIA RTX A6000", 80.0)
    assert second["uuid"] == "GPU-00000001-1111-2222-3333-444455556666"


async def test_many_requests_init_nvml_once(
    http: aiohttp.ClientSession, worker: str, fake: FlakyNvml
) -> None:
    for _ in range(5):
        status, _body, _ = await get(http, f"{worker}/api/v1/status", headers=auth())
        assert status == 200

    assert fake.init_calls == 1


async def test_status_follows_the_gpus(
    http: aiohttp.ClientSession, worker: str, fake: FlakyNvml
) -> None:
    fake.gpus[0].temperature = 83
    fake.gpus[1].lost = True

    _, body, _ = await get(http, f"{worker}/api/v1/status", headers=auth())

    assert [(gpu["index"], gpu["temperature_c"]) for gpu in body["gpu"]["gpus"]] == [(0, 83.0)]


async def test_probe_closed_with_the_app() -> None:
    fake = FakeNvml([make_gpu(0)])
    app = create_app(info=INFO, token=TOKEN, probe=NvmlProbe(fake))
    runner = web.AppRunner(app)
    await runner.setup()
    assert fake.initialised is True

    await runner.cleanup()

    assert fake.initialised is False
    assert fake.init_calls == 1


# --- errors ----------------------------------------------------------------------------------


async def test_unknown_route_is_404_json(http: aiohttp.ClientSession, worker: str) -> None:
    status, body, _ = await get(http, f"{worker}/api/v1/nope", headers=auth())

    assert_error(status, body, 404, "not_found")
    assert "/api/v1/nope" in body["message"]


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda client: PowerClient(client).async_power(), "power_disabled"),
        (lambda client: VoiceClient(client).async_voice(), "voice_disabled"),
    ],
    ids=["power", "voice"],
)
async def test_a_worker_without_a_part_answers_404(
    serve_worker: ServeWorker,
    http: aiohttp.ClientSession,
    call: Callable[[HydraClient], Awaitable[object]],
    code: str,
) -> None:
    """Power management and voice are off by default: their routes say so."""
    url = await serve_worker(token=TOKEN)

    with pytest.raises(HydraApiError) as refused:
        await call(HydraClient(http, url, TOKEN))

    assert (refused.value.status, refused.value.code) == (404, code)


async def test_wrong_method_is_405_json(http: aiohttp.ClientSession, worker: str) -> None:
    async with http.post(f"{worker}/api/v1/status", headers=auth(), json={}) as response:
        assert response.content_type == "application/json"
        body = await response.json()

    assert_error(response.status, body, 405, "method_not_allowed")
    assert "POST /api/v1/status" in body["message"]


async def test_wrong_method_says_which_methods_are_allowed(
    http: aiohttp.ClientSession, worker: str
) -> None:
    async with http.post(f"{worker}/api/v1/status", headers=auth()) as response:
        assert response.status == 405
        assert "GET" in response.headers.get("Allow", "")


@pytest.mark.parametrize(
    ("path", "mentions"),
    [
        ("/api/v1/gpus?index=abc", "abc"),
        ("/api/v1/gpus?index=-1", "-1"),
        ("/api/v1/gpus?index=", "index"),
        ("/api/v1/gpus?idx=0", "idx"),
        ("/api/v1/status?bogus=1", "bogus"),
        ("/api/v1/health?verbose=1", "verbose"),
    ],
)
async def test_malformed_query_is_400(
    http: aiohttp.ClientSession, worker: str, path: str, mentions: str
) -> None:
    status, body, _ = await get(http, f"{worker}{path}", headers=auth())

    assert_error(status, body, 400, "invalid_query")
    assert mentions in body["message"]


async def test_index_that_only_looks_like_a_digit_is_400(
    http: aiohttp.ClientSession, worker: str
) -> None:
    status, body, _ = await get(http, f"{worker}/api/v1/gpus?index=%C2%B2", headers=auth())

    assert_error(status, body, 400, "invalid_query")


async def test_unknown_gpu_index_is_404(http: aiohttp.ClientSession, worker: str) -> None:
    status, body, _ = await get(http, f"{worker}/api/v1/gpus?index=7", headers=auth())

    assert_error(status, body, 404, "gpu_not_found")
    assert "7" in body["message"]


async def test_gpus_filtered_by_index(http: aiohttp.ClientSession, worker: str) -> None:
    status, body, _ = await get(http, f"{worker}/api/v1/gpus?index=1", headers=auth())

    assert status == 200
    assert body["available"] is True
    assert [gpu["index"] for gpu in body["gpus"]] == [1]
    assert body["gpus"][0]["name"] == "NVIDIA RTX A6000"
    assert set(body["gpus"][0]) == GPU_FIELDS


async def test_gpus_all_and_repeated_index(http: aiohttp.ClientSession, worker: str) -> None:
    _, every, _ = await get(http, f"{worker}/api/v1/gpus", headers=auth())
    _, both, _ = await get(http, f"{worker}/api/v1/gpus?index=1&index=0", headers=auth())
    status, partly, _ = await get(http, f"{worker}/api/v1/gpus?index=0&index=9", headers=auth())

    assert [gpu["index"] for gpu in every["gpus"]] == [0, 1]
    assert [gpu["index"] for gpu in both["gpus"]] == [0, 1]
    assert_error(status, partly, 404, "gpu_not_found")
    assert "9" in partly["message"]


async def test_worker_without_gpu(http: aiohttp.ClientSession, serve_worker: ServeWorker) -> None:
    fake = FakeNvml(init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    url = await serve_worker(info=INFO, token=TOKEN, probe=NvmlProbe(fake))

    status, body, _ = await get(http, f"{url}/api/v1/status", headers=auth())
    gpus_status, gpus, _ = await get(http, f"{url}/api/v1/gpus", headers=auth())
    index_status, index, _ = await get(http, f"{url}/api/v1/gpus?index=0", headers=auth())

    assert status == 200
    assert body["gpu"]["available"] is False
    assert body["gpu"]["reason"] == "The NVIDIA driver is not loaded"
    assert body["gpu"]["gpus"] == []
    assert body["host"]["hostname"] == socket.gethostname()
    assert (gpus_status, gpus["available"], gpus["gpus"]) == (200, False, [])
    assert_error(index_status, index, 404, "gpu_not_found")


async def test_internal_error_is_500_and_worker_keeps_serving(
    http: aiohttp.ClientSession,
    worker: str,
    fake: FlakyNvml,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.fail_next = True
    with caplog.at_level(logging.ERROR, logger="hydra_core.worker.errors"):
        status, body, _ = await get(http, f"{worker}/api/v1/status", headers=auth())

    assert_error(status, body, 500, "internal_error")
    assert "deadbeef" not in body["message"]  # internals stay in the log
    assert "Unexpected error handling GET /api/v1/status" in caplog.text
    assert "driver exploded" in caplog.text

    status, body, _ = await get(http, f"{worker}/api/v1/status", headers=auth())
    assert status == 200
    assert len(body["gpu"]["gpus"]) == 2
    status, _body, _ = await get(http, f"{worker}/api/v1/health")
    assert status == 200


# --- the typed client ------------------------------------------------------------------------


async def test_client_status(http: aiohttp.ClientSession, worker: str) -> None:
    client = HydraClient(http, worker + "/", TOKEN)

    status = await client.async_status()
    info = await client.async_health()

    assert isinstance(status, WorkerStatus)
    assert status.worker == INFO
    assert info == INFO
    assert client.url == worker
    assert status.host.hostname == socket.gethostname()
    assert status.gpu.available is True
    assert status.gpu.driver_version == "570.86.15"
    assert [gpu.index for gpu in status.gpu.gpus] == [0, 1]
    assert status.gpu.gpus[0].power_draw_w == 187.5
    assert status.gpu.gpus[0].memory_free_bytes == 18 * GIB
    assert set(status.gpu_by_uuid()) == {
        "GPU-00000000-1111-2222-3333-444455556666",
        "GPU-00000001-1111-2222-3333-444455556666",
    }


async def test_client_wrong_token(http: aiohttp.ClientSession, worker: str) -> None:
    client = HydraClient(http, worker, "wrong-token-0123456789")

    with pytest.raises(HydraAuthError, match="not valid"):
        await client.async_status()
    assert await client.async_health() == INFO  # health still works without a valid token


async def test_client_api_error(http: aiohttp.ClientSession, worker: str, fake: FlakyNvml) -> None:
    fake.fail_next = True
    client = HydraClient(http, worker, TOKEN)

    with pytest.raises(HydraApiError) as raised:
        await client.async_status()

    assert (raised.value.status, raised.value.code) == (500, "internal_error")


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


async def test_client_nothing_listening(
    http: aiohttp.ClientSession, loopback_sockets: None
) -> None:
    url = f"http://{LOOPBACK}:{closed_port()}"
    client = HydraClient(http, url, TOKEN)

    with pytest.raises(HydraConnectionError, match=re.escape(url)):
        await client.async_status()
    with pytest.raises(HydraConnectionError):
        await client.async_health()


async def test_client_worker_that_never_answers(
    http: aiohttp.ClientSession, serve_app: ServeApp
) -> None:
    """A hung worker is reported as such after the client's timeout, not waited on forever."""
    answer = asyncio.Event()

    async def hang(_request: web.Request) -> web.Response:
        await answer.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/api/v1/status", hang)
    url = await serve_app(app)
    client = HydraClient(http, url, TOKEN, timeout=aiohttp.ClientTimeout(total=0.2))
    with pytest.raises(HydraConnectionError, match=r"did not answer within 0\.2 s"):
        await client.async_status()
    answer.set()


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        (
            lambda: web.Response(
                text="<html><body>Router login</body></html>", content_type="text/html"
            ),
            "text/html",
        ),
        (lambda: web.json_response({"hello": "world"}), "does not understand"),
    ],
    ids=["web page", "json that is not a worker"],
)
async def test_client_against_something_that_is_not_a_worker(
    http: aiohttp.ClientSession,
    serve_app: ServeApp,
    answer: Callable[[], web.Response],
    match: str,
) -> None:
    """A router's login page or another JSON service at the URL is named as such."""

    async def other(_request: web.Request) -> web.Response:
        return answer()

    app = web.Application()
    app.router.add_get("/{tail:.*}", other)
    client = HydraClient(http, await serve_app(app), TOKEN)

    with pytest.raises(HydraConnectionError, match=match):
        await client.async_status()
    with pytest.raises(HydraConnectionError):
        await client.async_health()
