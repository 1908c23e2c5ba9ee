"""Hostile requests against a real worker process: every JSON route of the API (found from the
worker's own router) gets random and malformed bodies, path segments and queries. Each answer is
the API's JSON error shape or a success, never a 500, and the worker is still up afterwards.

``HYDRA_FUZZ_EXAMPLES`` sets the examples per route (default 40, enough for CI; the closing
figures of issue 13 were run with more)."""

from __future__ import annotations

from collections.abc import Iterator
import dataclasses
import http.client
import importlib
import json
import os
from pathlib import Path
import pkgutil
import subprocess
import sys
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web
from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

import hydra_core
from hydra_core.wire import REQUEST_CONFIG
from hydra_core.worker.app import API_PREFIX, core_routes
from hydra_core.worker.parts import PARTS
from tests.fuzzing import json_values
from tests.worker_identity import TOKEN

from .test_cli import LOOPBACK, free_port, wait_for_health, worker_env

EXAMPLES = int(os.environ.get("HYDRA_FUZZ_EXAMPLES", "40"))
# Answers a dead engine or a missing model may give: the worker saying it cannot, not a crash.
UNAVAILABLE = {"engine_unavailable", "engine_error", "quality_unavailable", "audit_unavailable"}


def _options(data_dir: Path, engine_port: int) -> list[str]:
    """A worker with every part on, simulated GPUs and an engine address nothing listens on."""
    return [
        *("--data-dir", str(data_dir), "--host", LOOPBACK, "--token", TOKEN),
        *("--gpu-backend", "simulated", "--docker-host", f"tcp://{LOOPBACK}:{engine_port}"),
        *("--voice-port", str(free_port()), "--voice-zeroconf", "false", "--voice-offline", "true"),
        *("--quality-offline", "true"),
    ]


def _routes() -> list[tuple[str, str]]:
    """Every (method, path) the worker mounts (the core's and every part's), but the
    WebSocket."""
    tables = (core_routes, *(part.route_table() for part in PARTS))
    return [
        (route.method, API_PREFIX + route.path)
        for table in tables
        for route in table
        if isinstance(route, web.RouteDef) and route.path != "/events"
    ]


def _request_fields() -> list[str]:
    """The field names of every request body the API declares (``@request_model``)."""
    names: set[str] = set()
    for module in pkgutil.walk_packages(hydra_core.__path__, "hydra_core."):
        if module.name.endswith("__main__"):
            continue
        loaded = importlib.import_module(module.name)
        for value in vars(loaded).values():
            if (
                dataclasses.is_dataclass(value)
                and getattr(value, "__pydantic_config__", None) is REQUEST_CONFIG
            ):
                names.update(field.name for field in dataclasses.fields(value))
    return sorted(names)


@dataclasses.dataclass
class FuzzWorker:
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    examples: dict[str, int] = dataclasses.field(default_factory=dict)

    def send(
        self, method: str, path: str, body: bytes | None, content_type: str
    ) -> tuple[int, Any]:
        connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=10)
        try:
            headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": content_type}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw


ROUTES: list[tuple[str, str]] = []
FIELDS: list[str] = []


@pytest.fixture
def fuzz_worker(tmp_path: Path, loopback_sockets: None) -> Iterator[FuzzWorker]:
    tmp = tmp_path
    options = _options(tmp / "data", free_port())
    port = free_port()
    log = tmp / "worker.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "hydra_core.worker", *options, "--port", str(port)],
            env=worker_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_health(process, port, log)
        worker = FuzzWorker(port, process, log)
        yield worker
        print("\nfuzz examples per route:", json.dumps(worker.examples, indent=1))
    finally:
        process.terminate()
        process.wait(timeout=15)


def _route_params() -> list[tuple[str, str]]:
    if not ROUTES:
        ROUTES.extend(_routes())
        FIELDS.extend(_request_fields())
    return ROUTES


JSON = json_values(max_leaves=12)
SEGMENTS = st.one_of(
    st.integers(min_value=-3, max_value=4).map(str),
    st.integers(min_value=0, max_value=2**70).map(str),
    st.text(min_size=1, max_size=24),
    st.sampled_from(["..", "0", "1e3", "NaN", "-0", " ", "a" * 300, "%00", "db-main"]),
)
QUERY_VALUES = st.one_of(
    st.text(max_size=16), st.integers().map(str), st.floats().map(str), st.just("")
)


@st.composite
def _bodies(draw: st.DrawFn) -> tuple[bytes | None, str]:
    """A body: an object with the API's own field names (random values), any JSON, bytes that
    are not JSON, or none; mostly announced as JSON."""
    fields = st.sampled_from(FIELDS) | st.text(max_size=10)
    kind = draw(st.sampled_from(["fields", "json", "bytes", "none"]))
    if kind == "fields":
        body = json.dumps(draw(st.dictionaries(fields, JSON, max_size=6))).encode()
    elif kind == "json":
        body = json.dumps(draw(JSON)).encode()
    elif kind == "bytes":
        body = draw(st.binary(max_size=300))
    else:
        body = None
    content_type = draw(
        st.sampled_from(["application/json"] * 4 + ["text/plain", "application/octet-stream"])
    )
    return body, content_type


def _path(template: str, draw: st.DrawFn) -> str:
    parts = []
    for piece in template.split("/"):
        if piece.startswith("{") and piece.endswith("}"):
            parts.append(quote(draw(SEGMENTS), safe=""))
        else:
            parts.append(piece)
    path = "/".join(parts)
    query = draw(st.dictionaries(st.text(min_size=1, max_size=8), QUERY_VALUES, max_size=3))
    known = draw(
        st.dictionaries(
            st.sampled_from(["limit", "since", "before", "state", "kind", "container", "index"]),
            QUERY_VALUES,
            max_size=3,
        )
    )
    query.update(known)
    return f"{path}?{urlencode(query)}" if query else path


def test_no_request_crashes_the_worker(fuzz_worker: FuzzWorker) -> None:
    """Whatever arrives on any route: the API's JSON answer, never a 500, and the worker stays
    up."""
    for method, template in _route_params():
        _fuzz_route(fuzz_worker, method, template)
    assert len(fuzz_worker.examples) == len(_route_params())


def _fuzz_route(fuzz_worker: FuzzWorker, method: str, template: str) -> None:

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        path = _path(template, data.draw)
        body, content_type = data.draw(_bodies())
        key = f"{method} {template}"
        fuzz_worker.examples[key] = fuzz_worker.examples.get(key, 0) + 1
        status, answer = fuzz_worker.send(method, path, body, content_type)
        assert status != 500, (method, path, body, answer)
        if status >= 400:
            assert isinstance(answer, dict), (method, path, body, answer)
            assert set(answer) == {"code", "message"}, answer
            if status >= 500:
                assert answer["code"] in UNAVAILABLE, (method, path, body, answer)

    fuzz()
    assert fuzz_worker.process.poll() is None, fuzz_worker.log.read_text()
    assert fuzz_worker.send("GET", "/api/v1/health", None, "application/json")[0] == 200
