"""A real worker process (``python -m hydra_core.worker`` on 127.0.0.1) that a test starts,
kills with SIGKILL, restarts and talks to over its HTTP API; subclasses say how it is started."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
import signal
import subprocess
import time
from typing import Any

import aiohttp
import pytest

from tests.worker.test_cli import free_port, worker_env

START_TIMEOUT_S = 30.0
FINAL_STATES = ("succeeded", "failed", "cancelled")


class WorkerProcess:
    """One worker at a time (a restart is a new process on a new port), its logs kept."""

    token = "worker-process-token-0123456789"

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.data_dir = tmp_path / "data"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.logs: list[Path] = []
        self.http: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def command(self, *options: str) -> list[str]:
        """The command line that starts the worker on ``self.port``."""
        raise NotImplementedError

    async def start(self, *options: str) -> None:
        """Start the worker and wait until it answers."""
        self.port = free_port()
        log = self.tmp_path / f"worker-{len(self.logs)}.log"
        self.logs.append(log)
        command = self.command(*options)
        with log.open("wb") as output:
            self.process = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block
                command, env=worker_env(), stdout=output, stderr=subprocess.STDOUT
            )
        if self.http is None:
            self.http = aiohttp.ClientSession()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"worker exited with {self.process.returncode}:\n{log.read_text()}")
            try:
                async with self.http.get(f"{self.url}/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        pytest.fail(f"worker did not answer within {START_TIMEOUT_S} s:\n{log.read_text()}")

    def kill(self) -> None:
        """kill -9, as a crash or a power cut would."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    async def stop(self) -> None:
        """SIGTERM; it must stop cleanly."""
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                code = await asyncio.to_thread(self.process.wait, 30)
                assert code == 0, self.log()
        finally:
            if self.http is not None:
                await self.http.close()
                self.http = None

    def log(self) -> str:
        """Every worker log of the test, for failure messages."""
        return "\n".join(path.read_text(errors="replace") for path in self.logs)

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One API call: status and JSON answer."""
        assert self.http is not None
        async with self.http.request(
            method, f"{self.url}/{path}", json=body, headers=self.headers
        ) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None

    async def wait_task(self, task_id: int, within: float = 120.0) -> dict[str, Any]:
        """Wait until a task ended; the task."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            status, task = await self.call("GET", f"tasks/{task_id}")
            assert status == 200, task
            if task["state"] in FINAL_STATES:
                return task  # type: ignore[no-any-return]
            await asyncio.sleep(0.1)
        pytest.fail(f"task {task_id} still running after {within} s\n{self.log()[-3000:]}")

    async def tasks(self, kind: str) -> list[dict[str, Any]]:
        """The tasks of one kind, newest first."""
        status, body = await self.call("GET", f"tasks?kind={kind}&limit=1000")
        assert status == 200, body
        return body["tasks"]  # type: ignore[no-any-return]
