"""Real worker processes (``task_worker.py``) on one data dir, one after another."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
from pathlib import Path
import signal
import subprocess
from typing import Any

import aiohttp

from hydra_core.client import HydraClient
from hydra_core.scheduler.client import TasksClient

from .task_worker import RELEASE_DIR, runs, task_worker_command
from .test_cli import free_port, request, wait_for_health, worker_env

TOKEN = "worker-processes-token-0123456789"


class WorkerProcesses:
    """Real worker processes (``task_worker.py``) on one data dir, one after another."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.data_dir = tmp_path / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.processes: list[subprocess.Popen[bytes]] = []

    def launch(self, *options: str) -> tuple[subprocess.Popen[bytes], int, Path]:
        """Start a worker with these options; do not wait for it."""
        port = free_port()
        log = self.tmp_path / f"worker-{len(self.processes)}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                task_worker_command(port, self.data_dir, TOKEN, *options),
                env=worker_env(),
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process, port, log

    def start(self, *options: str) -> tuple[subprocess.Popen[bytes], int, Path]:
        """Start a worker and wait until it answers."""
        process, port, log = self.launch(*options)
        wait_for_health(process, port, log)
        return process, port, log

    def stop(self) -> None:
        """SIGTERM the latest worker; it must stop cleanly."""
        self.processes[-1].terminate()
        assert self.processes[-1].wait(timeout=10) == 0

    def status(self, port: int) -> dict[str, Any]:
        """``/api/v1/status`` of the worker at ``port``."""
        status, body = request(port, "/api/v1/status", TOKEN)
        assert status == 200
        return body

    def release(self, *task_ids: int) -> None:
        """Let these gate tasks finish."""
        folder = self.data_dir / RELEASE_DIR
        folder.mkdir(exist_ok=True)
        for task_id in task_ids:
            (folder / str(task_id)).touch()

    def runs(self, task_id: int) -> list[tuple[str, int | None]]:
        """What the handler did for one task: (event, attempt), in order."""
        return [(event, attempt) for event, tid, attempt in runs(self.data_dir) if tid == task_id]

    def kill9_and_restart(self) -> int:
        """kill -9 the latest worker, start another; its port."""
        self.processes[-1].send_signal(signal.SIGKILL)
        self.processes[-1].wait(timeout=5)
        return self.start()[1]

    @contextlib.asynccontextmanager
    async def tasks(self, port: int) -> AsyncIterator[TasksClient]:
        """The task calls on the worker at ``port``."""
        async with aiohttp.ClientSession() as http:
            yield TasksClient(HydraClient(http, f"http://127.0.0.1:{port}", TOKEN))

    async def started(self, task_id: int, attempt: int) -> None:
        async with asyncio.timeout(10):
            while ("start", attempt) not in self.runs(task_id):
                await asyncio.sleep(0.02)
