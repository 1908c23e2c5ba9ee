"""A real worker process running the creative pipeline, as the chapter tests drive it.

The worker is ``python -m hydra_core.worker`` on 127.0.0.1 with its real task queue, CLIP
scoring on the tiny test model (random weights: the scores are real computations that mean
nothing, so tests set the threshold to decide what passes), Kokoro with the real weights the
voice tests assemble, and ComfyUI's API from the stand-in (``tests/comfyui_standin.py``), which
runs in the test's own event loop. Everything it makes stays in the test's folder.
"""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path
import sys
import time
from typing import Any

from PIL import Image
import pytest

from tests.quality.conftest import tiny_worker_command
from tests.worker_process import WorkerProcess

TOKEN = "creative-pipeline-token-0123456789"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
CHAPTERS = Path(__file__).parent / "chapters"
# The voices of the test weights (Japanese Kokoro voices that speak English with en-us).
VOICES = {"mira": "jf_alpha", "sera": "jf_nezumi", "odo": "jm_kumo"}
STYLE_BOOK = """\
style: oil painting, muted palette
locations:
  throne room: vast hall of black marble, a throne of glass
lighting:
  night: candlelight, deep shadows
model: sd_xl_base_1.0.safetensors
background_size: {width: 128, height: 72}
character_size: {width: 64, height: 96}
characters:
  mira:
    appearance: young queen, silver hair, black gown
    expressions: {furious: "furious, clenched jaw"}
    voice: {voice: jf_alpha, speed: 1.0}
  sera:
    appearance: lady in waiting, red hair
    voice: {voice: "jf_nezumi:0.7,jf_alpha:0.3", speed: 1.1}
  odo:
    appearance: captain, grey beard, armour
    voice: {voice: jm_kumo, speed: 0.95}
"""


def reference_png(color: tuple[int, int, int]) -> str:
    """A small reference image, base64 PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 96), color).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


class PipelineWorker(WorkerProcess):
    """A worker process with the creative part, started and killed by the test."""

    token = TOKEN

    def __init__(self, tmp_path: Path, models_dir: Path, comfyui_url: str) -> None:
        super().__init__(tmp_path)
        self.outputs_dir = self.tmp_path / "outputs"
        self.models_dir = models_dir
        self.comfyui_url = comfyui_url

    def style(self, text: str = STYLE_BOOK, project: str = "default") -> None:
        """Write a project's style book."""
        folder = self.data_dir / "creative" / project
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "style.yaml").write_text(text, encoding="utf-8")

    def command(self, *options: str) -> list[str]:
        return tiny_worker_command(
            sys.executable,
            self.port,
            TOKEN,
            self.data_dir,
            *("--models-dir", str(self.models_dir), "--voice-offline", "true"),
            *("--outputs-dir", str(self.outputs_dir), "--comfyui-urls", self.comfyui_url),
            *("--comfyui-steps", "3", "--retry-backoff", "0.2"),
            *options,
        )

    async def cast(self) -> None:
        """Mira, Sera and Odo in the registry, each with a reference image."""
        colors = {"Mira": (200, 200, 230), "Sera": (180, 60, 40), "Odo": (90, 90, 90)}
        for name, color in colors.items():
            status, body = await self.call("POST", "characters", {"name": name})
            assert status == 201, body
            status, body = await self.call(
                "POST", f"characters/{body['id']}/references", {"data": reference_png(color)}
            )
            assert status in (200, 201), body

    async def submit(self, text: str, **fields: Any) -> dict[str, Any]:
        """Submit a chapter; it must be accepted."""
        status, body = await self.call("POST", "chapters", {"text": text, **fields})
        assert status == 201, body
        return body  # type: ignore[no-any-return]

    async def wait_chapter(
        self, chapter_id: int, states: tuple[str, ...] = ("succeeded",), within: float = 240.0
    ) -> dict[str, Any]:
        """Wait until the chapter is in one of ``states``; fails on another final state."""
        deadline = time.monotonic() + within
        body: Any = None
        while time.monotonic() < deadline:
            status, body = await self.call("GET", f"chapters/{chapter_id}")
            assert status == 200, body
            if body["state"] in states:
                return body  # type: ignore[no-any-return]
            if body["state"] in ("succeeded", "failed", "cancelled"):
                pytest.fail(f"chapter {body['state']}: {body}\n{self.log()[-4000:]}")
            await asyncio.sleep(0.2)
        pytest.fail(f"chapter still {body and body['state']} after {within} s: {body}")
