"""A worker process scoring with the tiny CLIP, started as Home Assistant's tests start one:
``python -m hydra_core.worker --quality-model Hydra-Tiny-ViT --quality-config-dir
tests/quality/clip_configs --quality-pretrained none ...``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
import signal
import subprocess
import sys

import aiohttp
import pytest

from hydra_core.client import HydraClient
from hydra_core.quality.client import QualityClient
from hydra_core.scheduler.client import TasksClient
from tests.quality.conftest import TINY_MODEL, encode, picture, tiny_worker_command
from tests.worker.test_cli import (
    REPO_ROOT,
    STOP_TIMEOUT_S,
    free_port,
    wait_for_health,
    worker_env,
)
from tests.worker_identity import TOKEN, USER


@pytest.fixture
def worker(tmp_path: Path, loopback_sockets: None) -> Iterator[tuple[str, Path]]:
    """A worker process with quality on the tiny CLIP; its URL and outputs folder."""
    port = free_port()
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            tiny_worker_command(
                sys.executable,
                port,
                TOKEN,
                tmp_path / "data",
                *("--outputs-dir", str(outputs), "--quality-threshold", "99"),
            ),
            cwd=REPO_ROOT,
            env=worker_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_health(process, port, log)
        yield f"http://127.0.0.1:{port}", outputs
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_TIMEOUT_S) == 0
        assert "Traceback" not in log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)


async def test_worker_process_scores_with_the_tiny_model(worker: tuple[str, Path]) -> None:
    url, outputs = worker
    async with aiohttp.ClientSession() as http:
        client = HydraClient(http, url, TOKEN)
        status = await QualityClient(client).async_quality()
        assert (status.available, status.model, status.pretrained) == (True, TINY_MODEL, None)
        assert status.default_threshold == 99
        async with http.post(
            f"{url}/api/v1/characters",
            json={"name": "Oskar"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as response:
            assert response.status == 201
        asset = await QualityClient(client).async_submit_asset(
            encode(picture("disc")), prompt="a red disc"
        )
        assert asset.state == "pending"
        assert (await QualityClient(client).async_quality()).state == "loaded"

        (outputs / "disc.png").write_bytes(encode(picture("disc")))
        task = await TasksClient(client).async_queue_task(
            "quality_scoring", {"images": ["disc.png"], "prompt": "a red disc"}, actor=USER
        )
        async with asyncio.timeout(30):
            while (task := await TasksClient(client).async_task(task.id)).state != "succeeded":
                assert task.state not in ("failed", "cancelled"), task.error
                await asyncio.sleep(0.05)
        [score] = task.result["scores"]
        # The same image and prompt score the same, directly or as a task.
        assert score["overall"] == asset.score.overall
        assert len(await QualityClient(client).async_assets(state="pending")) == 2
