"""A whole chapter through a real worker: the queue, ComfyUI's API (stand-in), CLIP scoring
(tiny model), Kokoro voices (real weights), and Ren'Py's own lint on the package."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import json
from pathlib import Path
import re
from typing import Any
import zipfile

import pytest

from hydra_core.creative.models import CHAPTER_STAGES
from tests.comfyui_standin import ComfyUIStandIn
from tests.creative.pipeline import CHAPTERS, HEADERS, PipelineWorker
from tests.renpy_lint import lint, unplayable_voice_files
from tests.voice.weights import VoiceWeights, install_kokoro, voice_weights

__all__ = ["voice_weights"]

GLASS_CROWN = (CHAPTERS / "the_glass_crown.fountain").read_text(encoding="utf-8")


@pytest.fixture
async def comfy() -> AsyncIterator[ComfyUIStandIn]:
    async with ComfyUIStandIn() as server:
        yield server


@pytest.fixture
async def worker(
    tmp_path: Path, voice_weights: VoiceWeights, comfy: ComfyUIStandIn
) -> AsyncIterator[PipelineWorker]:
    models = tmp_path / "models"
    install_kokoro(models, voice_weights)
    pipeline = PipelineWorker(tmp_path, models, comfy.url)
    pipeline.style()
    try:
        yield pipeline
    finally:
        await pipeline.stop()


async def _chapter_events(worker: PipelineWorker, into: list[dict[str, Any]]) -> None:
    """The chapter events of the worker's event stream, as Home Assistant receives them."""
    assert worker.http is not None
    url = worker.url.replace("http://", "ws://") + "/events"
    async with worker.http.ws_connect(url, headers=HEADERS) as socket:
        async for message in socket:
            event = json.loads(message.data)
            if event["type"] == "chapter":
                into.append(event["data"])


def _unzip(package: str, folder: Path) -> Path:
    with zipfile.ZipFile(package) as archive:
        archive.extractall(folder)
    return folder


async def test_a_whole_chapter_becomes_a_package_that_lints_clean(
    worker: PipelineWorker, comfy: ComfyUIStandIn, tmp_path: Path
) -> None:
    # Threshold 0: every image passes its first try (the tiny CLIP's scores mean nothing).
    await worker.start("--quality-threshold", "0")
    await worker.cast()
    events: list[dict[str, Any]] = []
    listener = asyncio.create_task(_chapter_events(worker, events))
    await asyncio.sleep(0.5)  # connected and past the hello

    queued = await worker.submit(GLASS_CROWN, name="The Glass Crown, chapter 3")
    chapter = await worker.wait_chapter(queued["id"])
    await asyncio.sleep(0.2)  # the last events arrive
    listener.cancel()

    # 5 scenes, 3 characters, 2 times of day, 21 spoken lines. 4 backgrounds (the throne room
    # at night is painted once for its two scenes); a neutral portrait of each character and a
    # variant per other expression shown: Mira furious, cold, sad; Sera afraid, whispering,
    # gentle; Odo calm, grim (his voice-over shows nobody).
    assert (chapter["scenes"], chapter["lines"]) == (5, 21)
    assert chapter["images"]["done"] == chapter["images"]["total"] == 4 + 3 + 8
    assert chapter["voices"]["done"] == chapter["voices"]["total"] == 21
    assert chapter["stage"] == "done"
    assert chapter["percent"] == 100.0
    assert chapter["auto_accepted"] == 15
    # Each image drawn once: one prompt per image reached ComfyUI.
    assert sum(comfy.submissions.values()) == 15
    # Followed on the event stream, the chapter's stage only ever moves forward.
    stages = [event["chapter"]["stage"] for event in events if event["chapter"]["stage"]]
    assert stages, events
    order = [CHAPTER_STAGES.index(stage) for stage in stages]
    told = " ".join(f"{event['event']}:{event['chapter']['stage']}" for event in events)
    assert order == sorted(order), told
    assert events[-1]["event"] == "finished"
    project = _unzip(chapter["package"], tmp_path / "project")
    result = lint(project)
    assert result.returncode == 0, result.report
    script = (project / "game" / "script.rpy").read_text(encoding="utf-8")
    images = set(re.findall(r"^\s+(?:scene|show) (.+)$", script, flags=re.MULTILINE))
    files = {path.stem for path in (project / "game" / "images").iterdir()}
    assert images <= files, images - files
    voices = re.findall(r'^\s+voice "(.+)"$', script, flags=re.MULTILINE)
    assert len(voices) == 21
    for voice in voices:
        assert (project / "game" / voice).is_file()
    assert unplayable_voice_files(project) == {}
    assert re.search(r'define \w+ = Character\("Mira"', script)
    assert script.count("label scene_") == 5
