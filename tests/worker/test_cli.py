"""The worker as an operator runs it: a real process, its log, its exit codes."""

from __future__ import annotations

from collections.abc import Iterator
import http.client
import json
import os
from pathlib import Path
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.podman import PodmanEngine

from .conftest import LOOPBACK

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 15
# The Wyoming server on a free port, and never announced on the network.
QUIET_VOICE = ("--voice-port", "0", "--voice-zeroconf", "false")
STOP_TIMEOUT_S = 5


def worker_env() -> dict[str, str]:
    """The environment without HYDRA_* settings of whoever runs the tests."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HYDRA_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def request(port: int, path: str, token: str | None = None) -> tuple[int, dict[str, Any]]:
    """GET over plain http.client (no proxies, loopback only)."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def wait_for_health(process: subprocess.Popen[bytes], port: int, log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"worker exited with {process.returncode}:\n{log.read_text()}")
        try:
            status, body = request(port, "/api/v1/health")
        except OSError:
            time.sleep(0.05)
            continue
        assert status == 200
        return body
    pytest.fail(f"worker did not answer within {START_TIMEOUT_S} s:\n{log.read_text()}")


@pytest.fixture
def running_worker(
    tmp_path: Path, loopback_sockets: None
) -> Iterator[tuple[subprocess.Popen[bytes], int, Path, Path]]:
    """Start ``python -m hydra_core.worker`` on a free loopback port; kill it if a test failed."""
    port = free_port()
    process = _launch(
        tmp_path,
        port,
        "--gpu-backend",
        "simulated",
        "--name",
        "test-rig",
        "--log-level",
        "debug",
    )
    try:
        yield process, port, tmp_path / "data", tmp_path / "worker.log"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)


def test_worker_process_serves_and_stops_cleanly(
    running_worker: tuple[subprocess.Popen[bytes], int, Path, Path],
) -> None:
    process, port, data_dir, log = running_worker

    health = wait_for_health(process, port, log)
    assert health["status"] == "ok"
    assert health["name"] == "test-rig"
    assert health["worker_id"] == (data_dir / "worker_id").read_text().strip()

    token = (data_dir / "token").read_text().strip()
    assert len(token) >= 16
    status, body = request(port, "/api/v1/status", token)
    assert status == 200
    assert body["worker"]["name"] == "test-rig"
    assert body["gpu"]["backend"] == "simulated"
    assert body["gpu"]["available"] is True
    assert len(body["gpu"]["gpus"]) == 2
    assert all("Simulated" in gpu["name"] for gpu in body["gpu"]["gpus"])
    # The parts its options ask for (containers depend on an engine being found here).
    assert {"gpu", "power", "quality", "tasks", "voice"} <= set(body["parts"])
    assert body["parts"]["voice"]["capabilities"] == ["wake", "stt", "tts"]
    assert {"maintenance", "quality_scoring"} <= set(body["parts"]["tasks"]["capabilities"])

    status, body = request(port, "/api/v1/status", "not-the-token-0123456789")
    assert (status, body["code"]) == (401, "invalid_token")

    # Prometheus's view of the same worker (docs/metrics.md).
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    connection.request("GET", "/api/v1/metrics", headers={"Authorization": f"Bearer {token}"})
    metrics = connection.getresponse().read().decode()
    connection.close()
    assert metrics.count("\nnvidia_smi_temperature_gpu{") == 2
    assert 'hydra_worker_info{name="test-rig"' in metrics

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=STOP_TIMEOUT_S) == 0

    output = log.read_text()
    assert f"listening on http://{LOOPBACK}:{port}" in output
    assert str(data_dir / "token") in output  # tells the operator where the token is
    assert "**REDACTED**" in output  # the debug line with the options was written...
    assert token not in output  # ...and the token itself never was
    assert "Stopping" in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("argv", "mentions"),
    [
        (["--port", "abc"], ["--port", "abc"]),
        (["--gpu-backend", "cuda"], ["--gpu-backend", "nvml"]),
        (["--token", "short"], ["at least 16"]),
        (["--no-such-option"], ["--no-such-option"]),
    ],
)
def test_bad_option_exits_2_with_a_message(
    tmp_path: Path, argv: list[str], mentions: list[str]
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hydra_core.worker", "--data-dir", str(tmp_path), *argv],
        cwd=REPO_ROOT,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
        check=False,
    )

    assert result.returncode == 2
    assert result.stdout == ""
    for text in mentions:
        assert text in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "token").exists()  # nothing was started


def _launch(tmp_path: Path, port: int, *options: str) -> subprocess.Popen[bytes]:
    """``python -m hydra_core.worker`` on ``port`` with its data in tmp_path/data and its
    output in tmp_path/worker.log."""
    with (tmp_path / "worker.log").open("wb") as output:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hydra_core.worker",
                "--host",
                LOOPBACK,
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path / "data"),
                *QUIET_VOICE,
                *options,
            ],
            cwd=REPO_ROOT,
            env=worker_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _start(tmp_path: Path, *options: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    log = tmp_path / "worker.log"
    process = _launch(tmp_path, port, "--gpu-backend", "none", *options)
    wait_for_health(process, port, log)
    return process, port, log


@pytest.mark.usefixtures("loopback_sockets")
def test_worker_process_follows_the_engine_it_is_given(
    tmp_path: Path, podman: PodmanEngine
) -> None:
    """The command-line options reach the container service: engine, protection, healing."""
    podman.run("db-main", init=True)
    podman.run("web", init=True)
    process, port, log = _start(
        tmp_path,
        "--docker-host",
        podman.docker_host,
        "--protected-containers",
        "db-*",
        "--self-healing",
        "false",
    )
    try:
        token = (tmp_path / "data" / "token").read_text().strip()
        status, body = request(port, "/api/v1/containers", token)
        assert status == 200
        assert body["engine_available"] is True
        protected = {c["name"]: c["protected"] for c in body["containers"]}
        assert protected == {"db-main": True, "web": False}
        assert body["healing"]["enabled"] is False
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_TIMEOUT_S) == 0
        assert "Following the container engine at unix://" in log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)


@pytest.mark.usefixtures("loopback_sockets")
def test_worker_process_without_an_engine_says_so(tmp_path: Path) -> None:
    process, port, _log = _start(tmp_path, "--docker-host", "none")
    try:
        token = (tmp_path / "data" / "token").read_text().strip()
        status, body = request(port, "/api/v1/containers", token)
        assert (status, body["code"]) == (404, "containers_disabled")
        # With no GPU backend and no engine, neither GPU history, power nor containers run.
        status, body = request(port, "/api/v1/status", token)
        assert set(body["parts"]) == {
            "forecasts",
            "quality",
            "knowledge",
            "tasks",
            "voice",
            "creative",
            "models",
            "metrics",
        }
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=STOP_TIMEOUT_S)
