"""A real worker process for the tests whose worker needs the ML stack: Home Assistant's Python
(3.14) has no torch, so the worker runs as it would on a GPU host, as its own process from
``.venv-worker`` (Python 3.11), over loopback HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path
import signal
import subprocess

import aiohttp

from tests.worker.test_cli import REPO_ROOT, START_TIMEOUT_S, STOP_TIMEOUT_S, worker_env

WORKER_PYTHON = REPO_ROOT / ".venv-worker" / "bin" / "python"
# A container engine's grace period between SIGTERM and SIGKILL (Docker's and the Supervisor's
# default): the worker must be down by then. On a busy 2-core machine (Home Assistant, a browser
# and coverage beside it) a worker with CLIP and the creative pipeline once took over 5 s.
GRACE_S = 10


def _start(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            command, cwd=REPO_ROOT, env=worker_env(), stdout=output, stderr=subprocess.STDOUT
        )


@asynccontextmanager
async def worker_process(
    command: list[str], port: int, log: Path, *, start_timeout: float = START_TIMEOUT_S
) -> AsyncIterator[str]:
    """Run ``command`` (a worker listening on 127.0.0.1:``port``), its output into ``log``;
    yields its URL once it answers. At the end it must stop cleanly on SIGTERM.

    Everything here waits without blocking Home Assistant's event loop: at the end Home
    Assistant answers the worker's closing of the event stream, as it would in life.
    """
    process = await asyncio.to_thread(_start, command, log)
    url = f"http://127.0.0.1:{port}"
    try:
        async with asyncio.timeout(start_timeout), aiohttp.ClientSession() as http:
            while True:
                assert process.poll() is None, await asyncio.to_thread(log.read_text)
                try:
                    async with http.get(f"{url}/api/v1/health") as response:
                        if response.status == HTTPStatus.OK:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
        yield url
        process.send_signal(signal.SIGTERM)
        stopping = asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(GRACE_S):
                while process.poll() is None:
                    await asyncio.sleep(0.05)
        except TimeoutError:
            output = await asyncio.to_thread(log.read_text)
            raise AssertionError(f"not stopped {GRACE_S} s after SIGTERM:\n{output}") from None
        output = await asyncio.to_thread(log.read_text)
        stopped_in = asyncio.get_running_loop().time() - stopping
        if stopped_in > STOP_TIMEOUT_S:
            print(f"The worker took {stopped_in:.1f} s to stop")
        assert process.returncode == 0, output
        assert "Traceback" not in output
    finally:
        if process.poll() is None:
            process.kill()
