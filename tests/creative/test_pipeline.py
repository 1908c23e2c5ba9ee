"""A whole chapter through a real worker: the queue, ComfyUI's API (stand-in), CLIP scoring
(tiny model), Kokoro voices (real weights), and Ren'Py's own lint on the package."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
import re
import zipfile

import pytest

from tests.comfyui_standin import ComfyUIStandIn
from tests.creative.pipeline import CHAPTERS, PipelineWorker
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

    queued = await worker.submit(GLASS_CROWN, name="The Glass Crown, chapter 3")
    chapter = await worker.wait_chapter(queued["id"])

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
