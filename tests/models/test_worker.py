"""The models part in a real worker process: built from the command line, it adopts the lazy
models of the parts the worker runs and the servers its options name."""

from __future__ import annotations

import asyncio
from pathlib import Path
import signal

import pytest

from hydra_core.gpu import SimulatedProbe
from tests.worker.test_cli import STOP_TIMEOUT_S, _start, request

from .standins import OllamaStandIn


@pytest.mark.usefixtures("loopback_sockets")
async def test_a_worker_process_arbitrates_its_own_models_and_the_servers_named(
    tmp_path: Path,
) -> None:
    async with OllamaStandIn(SimulatedProbe(1, drift=False), {"llama3.2:latest": 2.0}) as ollama:
        process, port, _log = await asyncio.to_thread(
            _start,
            tmp_path,
            "--docker-host",
            "none",
            "--ollama-urls",
            ollama.url,
            "--models-pinned",
            "hydra/whisper",
        )
        try:
            token = (tmp_path / "data" / "token").read_text().strip()
            status, body = await asyncio.to_thread(request, port, "/api/v1/models/available", token)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=STOP_TIMEOUT_S)

    assert status == 200
    models = {model["id"]: model for model in body["models"]}
    assert set(models) == {
        "hydra/whisper",
        "hydra/kokoro",
        "hydra/clip",
        "hydra/embeddings",
        "ollama/llama3.2:latest",
    }
    assert models["hydra/whisper"]["pinned"]
    assert models["hydra/whisper"]["priority"] == 90
    assert models["ollama/llama3.2:latest"]["estimated_vram_bytes"] == 2 * 1024**3
    assert [backend["kind"] for backend in body["backends"]] == ["hydra", "ollama"]
