"""A whole chapter through a real worker: the queue, ComfyUI's API (stand-in), CLIP scoring
(tiny model), Kokoro voices (real weights), and Ren'Py's own lint on the package."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
import json
import os
from pathlib import Path
import re
import time
from typing import Any
import zipfile

import pytest

from hydra_core.creative.models import CHAPTER_STAGES
from tests.comfyui_standin import ComfyUIStandIn
from tests.creative.pipeline import CHAPTERS, HEADERS, STYLE_BOOK, PipelineWorker
from tests.renpy_lint import lint, unplayable_voice_files
from tests.voice.weights import VoiceWeights, install_kokoro, voice_weights
from tests.worker.test_cli import free_port

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
    # Each image drawn once: one prompt per image reached ComfyUI, which was then asked to
    # give its VRAM back.
    assert sum(comfy.submissions.values()) == 15
    assert comfy.freed
    assert comfy.freed[0] == {"unload_models": True, "free_memory": True}
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


SHORT = """\
Title: The Gate

INT. HALL - NIGHT

The hall is dark.

MIRA
(furious)
Who opened the gate?

SERA
It was not me.
"""


async def _no_tasks(worker: PipelineWorker) -> None:
    status, body = await worker.call("GET", "tasks")
    assert (status, body["tasks"]) == (200, [])
    status, body = await worker.call("GET", "chapters")
    assert (status, body["chapters"]) == (200, [])


async def test_a_worker_killed_mid_chapter_finishes_without_drawing_anything_twice(
    worker: PipelineWorker, comfy: ComfyUIStandIn
) -> None:
    comfy.step_delay = 0.15  # each image takes about half a second in "ComfyUI"
    await worker.start("--quality-threshold", "0")
    await worker.cast()
    queued = await worker.submit(GLASS_CROWN)
    await worker.wait_chapter(queued["id"], states=("running",))
    while True:
        _, chapter = await worker.call("GET", f"chapters/{queued['id']}")
        if chapter["images"]["done"] >= 5:
            break
        await asyncio.sleep(0.05)
    made_before = {
        task["result"]["address"]
        for task in await worker.tasks("asset_generation")
        if task["state"] == "succeeded"
    }
    worker.kill()
    before = dict(comfy.submissions)

    await worker.start("--quality-threshold", "0")
    chapter = await worker.wait_chapter(queued["id"])

    assert chapter["images"]["done"] == 15
    # Every graph reached ComfyUI once: nothing made before the kill was drawn again, and the
    # prompt ComfyUI was drawing when the worker died was collected, not drawn twice.
    assert sorted(comfy.submissions.values()) == [1] * 15, (before, comfy.submissions)
    made = Counter(
        task["result"]["address"]
        for task in await worker.tasks("asset_generation")
        if task["state"] == "succeeded" and task["result"]["made"]
    )
    assert made_before <= set(made)
    assert sorted(made.values()) == [1] * 15  # each image made once, wherever it was made
    spoken = [t for t in await worker.tasks("voice_line") if t["state"] == "succeeded"]
    assert sum(task["result"]["made"] for task in spoken) == 21


async def test_images_below_the_threshold_are_drawn_again_and_the_best_waits_for_review(
    worker: PipelineWorker, comfy: ComfyUIStandIn, tmp_path: Path
) -> None:
    # No image can reach 100: each is drawn twice (a new seed the second time), and the better
    # one goes to review, pending; the package uses it meanwhile.
    await worker.start("--quality-threshold", "100", "--creative-tries", "2")
    await worker.cast()
    queued = await worker.submit(SHORT)
    chapter = await worker.wait_chapter(queued["id"])

    assert chapter["images"] == {"done": 4, "total": 4}
    assert (chapter["auto_accepted"], chapter["pending_review"], chapter["retried"]) == (0, 4, 4)
    assert sum(comfy.submissions.values()) == 8
    seeds = [
        node["inputs"]["seed"]
        for entry in comfy.history.values()
        for node in entry["prompt"][2].values()
        if node["class_type"] == "KSampler"
    ]
    assert len(set(seeds)) >= 5  # a portrait's variant keeps its seed; each retry has a new one
    status, pending = await worker.call("GET", "assets?state=pending")
    assert status == 200
    assert len(pending["assets"]) == 4
    assert {asset["character"] for asset in pending["assets"]} == {None, "mira", "sera"}
    project = _unzip(chapter["package"], tmp_path / "project")
    assert lint(project).returncode == 0
    [task] = await worker.tasks("chapter_package")
    assert sorted(task["result"]["pending_review"]) == sorted(
        ["background hall night", "mira neutral", "mira furious", "sera neutral"]
    )

    # On the phone: Mira's portrait is rejected. The chapter draws it again with new seeds, and
    # her furious variant from the new portrait (nothing else), and the package is made again.
    sera = next(
        asset
        for asset in pending["assets"]
        if asset["character"] == "mira" and asset["name"] == "mira neutral"
    )
    sprite = "game/images/mira furious.png"
    with zipfile.ZipFile(chapter["package"]) as archive:
        rejected_picture = archive.read(sprite)
    status, body = await worker.call(
        "POST", f"assets/{sera['id']}/review", {"decision": "reject", "reason": "blurry face"}
    )
    assert (status, body["state"]) == (200, "rejected")
    await worker.wait_chapter(queued["id"], states=("queued", "running"), within=10)
    chapter = await worker.wait_chapter(queued["id"])

    assert sum(comfy.submissions.values()) == 12  # two more tries of the portrait and variant
    seeds_after = [
        node["inputs"]["seed"]
        for entry in comfy.history.values()
        for node in entry["prompt"][2].values()
        if node["class_type"] == "KSampler"
    ]
    # Tries 3 and 4 of each: new seeds (one character's images share theirs).
    assert len(set(seeds_after) - set(seeds)) == 2
    with zipfile.ZipFile(chapter["package"]) as archive:
        assert archive.read(sprite) != rejected_picture
    status, pending = await worker.call("GET", "assets?state=pending")
    # The new portrait and variant wait for review in their place (5: the old variant too).
    assert len(pending["assets"]) == 5


async def test_bad_chapters_are_refused_whole_and_nothing_is_queued(
    worker: PipelineWorker, comfy: ComfyUIStandIn
) -> None:
    await worker.start()
    await worker.cast()

    status, body = await worker.call("POST", "chapters", {"text": "Just some words.\n"})
    assert (status, body["code"]) == (400, "invalid_chapter")
    assert body["details"]["problems"][0]["code"] == "no_scene"

    text = "INT. HALL - DAY\n\nMIRA\nHello.\n\nBOB\n(sad)\nWho am I?\n"
    status, body = await worker.call("POST", "chapters", {"text": text})
    assert (status, body["code"]) == (400, "invalid_chapter")
    assert body["details"]["problems"] == [
        {
            "line": 6,
            "code": "unknown_character",
            "message": body["details"]["problems"][0]["message"],
        }
    ]
    assert "line 6" in body["message"]
    assert "BOB" in body["message"]

    worker.style(STYLE_BOOK.replace("voice: jm_kumo", "voice: af_nobody"))
    status, body = await worker.call("POST", "chapters", {"text": GLASS_CROWN})
    assert (status, body["code"]) == (400, "invalid_style_book")
    assert "af_nobody" in body["message"]
    worker.style()

    templates = worker.data_dir / "creative" / "templates"
    templates.mkdir(parents=True)
    background = json.loads(
        (Path(__file__).parents[2] / "hydra_core/creative/templates/background.json").read_text()
    )
    background["5"]["class_type"] = "FancySampler"
    (templates / "background.json").write_text(json.dumps(background))
    status, body = await worker.call("POST", "chapters", {"text": SHORT})
    assert (status, body["code"]) == (400, "comfyui_graph_invalid")
    assert "FancySampler" in body["message"]
    assert "background" in body["message"]

    (templates / "background.json").unlink()
    status, body = await worker.call("POST", "chapters", {"text": SHORT, "project": "../etc"})
    assert (status, body["code"]) == (400, "invalid_body")
    await _no_tasks(worker)
    assert sum(comfy.submissions.values()) == 0


async def test_comfyui_down_fails_the_chapter_clearly_and_a_retry_finishes_it(
    worker: PipelineWorker, comfy: ComfyUIStandIn
) -> None:
    worker.comfyui_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    await worker.start("--quality-threshold", "0")
    await worker.cast()
    queued = await worker.submit(SHORT)
    chapter = await worker.wait_chapter(queued["id"], states=("failed",))
    assert "background hall night: No ComfyUI server can be reached" in chapter["error"]
    assert "mira furious: mira's portrait could not be made" in chapter["error"]
    assert chapter["voices"]["done"] == 2  # what could be made was made, and kept

    await worker.stop()
    worker.comfyui_url = comfy.url  # the user starts ComfyUI, or fixes the address
    await worker.start("--quality-threshold", "0")
    status, body = await worker.call("POST", f"chapters/{queued['id']}/retry")
    assert (status, body["state"]) == (200, "queued")
    chapter = await worker.wait_chapter(queued["id"])
    assert chapter["images"]["done"] == 4
    spoken = [t for t in await worker.tasks("voice_line") if t["state"] == "succeeded"]
    assert sum(task["result"]["made"] for task in spoken) == 2  # not spoken again


async def test_comfyui_failing_one_prompt_costs_that_image_one_more_attempt(
    worker: PipelineWorker, comfy: ComfyUIStandIn
) -> None:
    comfy.fail_node_type = "KSampler"  # the next prompt fails at its sampler
    await worker.start("--quality-threshold", "0")
    await worker.cast()
    queued = await worker.submit(SHORT)
    chapter = await worker.wait_chapter(queued["id"])

    assert chapter["images"]["done"] == 4
    attempts = sorted(task["attempts"] for task in await worker.tasks("asset_generation"))
    assert attempts == [1, 1, 1, 2]


async def test_a_chapter_in_the_watched_folder_is_queued_and_a_bad_one_set_aside(
    worker: PipelineWorker, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "default").mkdir(parents=True)
    await worker.start("--quality-threshold", "0", "--chapter-watch-dir", str(inbox))
    await worker.cast()
    (inbox / "the-gate.fountain").write_text(SHORT, encoding="utf-8")
    (inbox / "default" / "broken.fountain").write_text("No scene here.\n", encoding="utf-8")
    old = time.time() - 10
    for path in (inbox / "the-gate.fountain", inbox / "default" / "broken.fountain"):
        os.utime(path, (old, old))

    deadline = time.monotonic() + 30
    while not (inbox / "queued" / "the-gate.fountain").exists():
        assert time.monotonic() < deadline, worker.log()
        await asyncio.sleep(0.2)
    while not (inbox / "refused" / "broken.error.txt").exists():
        assert time.monotonic() < deadline, worker.log()
        await asyncio.sleep(0.2)
    assert "line 1" in (inbox / "refused" / "broken.error.txt").read_text()
    assert (inbox / "refused" / "broken.fountain").exists()
    _, body = await worker.call("GET", "chapters")
    [chapter] = body["chapters"]
    assert chapter["name"] == "the-gate"
    await worker.wait_chapter(chapter["id"])


async def test_an_overnight_chapter_waits_for_the_pipeline_and_can_be_cancelled(
    worker: PipelineWorker, comfy: ComfyUIStandIn
) -> None:
    await worker.start("--quality-threshold", "0")
    await worker.cast()
    waiting = await worker.submit(SHORT, start="overnight")
    other = await worker.submit(SHORT.replace("gate", "door"), start="overnight")
    assert waiting["state"] == "waiting"
    await asyncio.sleep(1.0)
    assert sum(comfy.submissions.values()) == 0
    _, body = await worker.call("GET", "tasks")
    assert body["tasks"] == []

    comfy.stall = True  # images never finish, so the chapter can be cancelled mid-way
    status, body = await worker.call("POST", "chapters/start")
    assert status == 200
    assert [chapter["id"] for chapter in body["chapters"]] == [waiting["id"], other["id"]]
    await worker.wait_chapter(waiting["id"], states=("running",))
    status, body = await worker.call("POST", f"chapters/{other['id']}/cancel")
    assert (status, body["state"]) == (200, "cancelled")
    status, body = await worker.call("POST", f"chapters/{waiting['id']}/cancel")
    assert (status, body["state"]) == (200, "cancelled")
    await asyncio.sleep(0.5)
    unfinished = [
        task
        for task in (await worker.call("GET", "tasks?limit=1000"))[1]["tasks"]
        if task["state"] not in ("succeeded", "failed", "cancelled")
    ]
    assert unfinished == [], worker.log()[-6000:]
    status, body = await worker.call("POST", f"chapters/{waiting['id']}/cancel")
    assert (status, body["code"]) == (409, "chapter_finished")


async def test_a_worker_stopping_mid_image_leaves_it_to_comfyui_and_collects_it_after(
    worker: PipelineWorker, comfy: ComfyUIStandIn
) -> None:
    comfy.step_delay = 2.0  # an image takes 6 s in "ComfyUI"
    await worker.start("--quality-threshold", "0")
    await worker.cast()
    queued = await worker.submit(SHORT)
    while comfy.queue_remaining == 0:
        await asyncio.sleep(0.05)

    started = time.monotonic()
    await worker.stop()  # SIGTERM; it must exit cleanly
    stopped_in = time.monotonic() - started

    # It did not wait for the image (the queue gives running tasks 30 s), and did not throw
    # ComfyUI's work away.
    assert stopped_in < 10, stopped_in
    assert comfy.calls["POST /interrupt"] == 0
    comfy.step_delay = 0.0
    await worker.start("--quality-threshold", "0")
    chapter = await worker.wait_chapter(queued["id"])
    assert chapter["images"]["done"] == 4
    assert sorted(comfy.submissions.values()) == [1, 1, 1, 1]


async def test_a_worker_stopping_mid_voice_lines_puts_them_back_uncounted(
    worker: PipelineWorker, comfy: ComfyUIStandIn
) -> None:
    """SIGTERM while Kokoro speaks a chapter's lines: the queue stops before the voice part
    closes Kokoro, so the lines go back to the queue uncounted (they failed an attempt each,
    "The text-to-speech engine is closed", when the voice part stopped first), and after the
    restart each is spoken once. The voice part is on, as on a user's worker: the chapter
    speaks with its Kokoro."""
    voice = ("--voice", "true", "--voice-port", "0", "--voice-zeroconf", "false")
    await worker.start("--quality-threshold", "0", *voice)
    await worker.cast()
    queued = await worker.submit(SHORT)
    async with asyncio.timeout(120):
        while not any(
            task["kind"] == "voice_line" and task["state"] == "running"
            for task in (await worker.call("GET", "tasks?limit=1000"))[1]["tasks"]
        ):
            await asyncio.sleep(0.02)
    await worker.stop()
    assert "text-to-speech engine is closed" not in worker.log()
    await worker.start("--quality-threshold", "0", *voice)
    await worker.wait_chapter(queued["id"])
    lines = [
        task
        for task in (await worker.call("GET", "tasks?limit=1000"))[1]["tasks"]
        if task["kind"] == "voice_line"
    ]
    assert lines
    assert [(task["state"], task["attempts"]) for task in lines] == [("succeeded", 1)] * len(lines)


async def test_a_running_chapter_leases_comfyuis_checkpoint(
    worker: PipelineWorker, comfy: ComfyUIStandIn
) -> None:
    """The real chapter handler, through the worker's VRAM arbiter: while the chapter runs,
    ComfyUI's checkpoint is leased to it (no other load may evict it); once done, it is not."""
    await worker.start("--quality-threshold", "0")
    await worker.cast()
    queued = await worker.submit(SHORT, name="The Gate")
    holders: set[str] = set()
    while True:
        status, loaded = await worker.call("GET", "models/loaded")
        assert status == 200, loaded
        holders |= {
            model["lease"]["holder"]
            for model in loaded["models"]
            if model["id"] == "comfyui/checkpoint" and model["lease"]
        }
        status, chapter = await worker.call("GET", f"chapters/{queued['id']}")
        assert status == 200, chapter
        if chapter["state"] in ("succeeded", "failed", "cancelled"):
            break
        await asyncio.sleep(0.05)
    assert chapter["state"] == "succeeded", chapter
    (task,) = await worker.tasks("chapter_generation")
    assert f"task {task['id']}" in holders
    status, loaded = await worker.call("GET", "models/loaded")
    assert [model["lease"] for model in loaded["models"] if model["lease"]] == []
