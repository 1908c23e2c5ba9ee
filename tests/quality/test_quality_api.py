"""Scoring, submitting and reviewing through the worker's API with a real (tiny) CLIP, and the
``quality_scoring`` task through the real queue.

The worker is built from the options a worker process gets (``quality_model`` Hydra-Tiny-ViT
from ``quality_config_dir``, ``quality_pretrained`` none): random weights from a fixed seed, so
only what does not depend on what the weights mean is asserted: an image matches itself (a
character whose reference is that image), ranks, thresholds, what is kept.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
import pytest

from hydra_core.client import HydraApiError
from hydra_core.events import EventBus
from hydra_core.gpu import NvmlProbe
from hydra_core.models import WorkerInfo
from hydra_core.quality.client import QualityClient
from hydra_core.quality.engine import RANDOM_WEIGHTS_REASON
from hydra_core.quality.models import EVENT_QUALITY
from hydra_core.quality.options import QualityOptions
from hydra_core.quality.part import QualityPart
from hydra_core.quality.service import QualityService
from hydra_core.quality.task import QualityScoringHandler
from hydra_core.scheduler import Scheduler, TaskStore
from hydra_core.scheduler.client import TasksClient
from hydra_core.scheduler.part import TasksPart
from hydra_core.worker.app import create_app
from tests.fake_nvml import FakeNvml, make_gpu
from tests.quality.conftest import CONFIGS, KINDS, TINY_MODEL, bilevel_png, encode, picture
from tests.quality_worker import QualityWorker
from tests.worker_identity import TOKEN, USER

# Character-only scores are 100 for the reference image itself; the tiny model puts every other
# picture at or below 98 (cosine 0.98), so this threshold splits them for sure.
THRESHOLD = 99.0

MakeWorker = Callable[..., Any]


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    """The outputs folder, with one PNG per picture kind (and one in a subfolder)."""
    folder = tmp_path / "outputs"
    (folder / "night").mkdir(parents=True)
    for kind in KINDS:
        (folder / f"{kind}.png").write_bytes(encode(picture(kind)))
    (folder / "night" / "checker.png").write_bytes(encode(picture("checker")))
    (tmp_path / "secret.png").write_bytes(encode(picture("disc")))
    return folder


@pytest.fixture
async def make_worker(
    loopback_sockets: None, tmp_path: Path, outputs: Path
) -> AsyncIterator[MakeWorker]:
    """Workers with quality on the tiny CLIP and a task queue over a GPU with room, served on
    127.0.0.1 (each on a free port) until the test ends."""
    runners: list[web.AppRunner] = []
    http = aiohttp.ClientSession()

    async def make(*, bus: EventBus | None = None) -> QualityWorker:
        bus = bus or EventBus()
        service = QualityService(
            QualityOptions(
                quality_model=TINY_MODEL,
                quality_pretrained="none",
                quality_config_dir=CONFIGS,
                quality_idle_unload=0,
                quality_threshold=THRESHOLD,
            ),
            data_dir=tmp_path / "data",
            models_dir=tmp_path / "models",
            bus=bus,
            watch_interval_s=0.05,
        )
        probe = NvmlProbe(FakeNvml([make_gpu(0)]))
        scheduler = Scheduler(
            TaskStore(tmp_path / "data" / "tasks.db"),
            handlers=[QualityScoringHandler(service, outputs)],
            probe=probe,
            bus=bus,
            data_dir=tmp_path / "data",
        )
        app = create_app(
            info=WorkerInfo(worker_id="w", name="w", version="0"),
            token=TOKEN,
            probe=probe,
            bus=bus,
            parts=[QualityPart(service), TasksPart(scheduler)],
        )
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        return QualityWorker(f"http://{host}:{port}", service, http)

    yield make
    await http.close()
    for runner in reversed(runners):
        await runner.cleanup()


async def oskar(worker: QualityWorker, reference: str = "checker") -> None:
    """Oskar, whose one reference image is ``reference``."""
    await worker.call("POST", "characters", {"name": "Oskar"})
    data = base64.b64encode(encode(picture(reference))).decode()
    status, _ = await worker.call("POST", "characters/oskar/references", {"data": data})
    assert status == 201


async def test_scores_rank_images_and_keep_nothing(make_worker: MakeWorker, tmp_path: Path) -> None:
    bus = EventBus()
    subscription = bus.subscribe()
    worker = await make_worker(bus=bus)
    await oskar(worker)
    status = await QualityClient(worker.client).async_quality()
    assert (status.available, status.reason, status.state) == (
        True,
        RANDOM_WEIGHTS_REASON,
        "not_loaded",
    )
    assert (status.model, status.pretrained) == (TINY_MODEL, None)

    images = [encode(picture(kind)) for kind in KINDS]
    scores = await QualityClient(worker.client).async_score(
        images, character="oskar", names=list(KINDS)
    )
    assert [score.rank for score in scores] == [1, 2, 3, 4, 5]
    best = scores[0]
    assert (best.name, best.index, best.overall) == ("checker", KINDS.index("checker"), 100.0)
    assert all(score.overall < 99 for score in scores[1:])
    assert [score.overall for score in scores] == sorted(
        (score.overall for score in scores), reverse=True
    )
    assert best.weights == {"character": 1.0}

    # A prompt and a style add their components; the weights say how they were combined.
    [scored] = await QualityClient(worker.client).async_score(
        [images[0]], prompt="a gradient", character="oskar", style_prompt="flat colours"
    )
    assert scored.prompt is not None
    assert scored.style is not None
    assert scored.weights == pytest.approx({"prompt": 0.4, "character": 0.4, "style": 0.2})

    # The model loaded, and Home Assistant heard of it.
    async with asyncio.timeout(5):
        while True:
            event = await subscription.next(5)
            assert event is not None
            if event.type == EVENT_QUALITY and event.data["state"] == "loaded":
                break
    assert (await QualityClient(worker.client).async_quality()).device == "cpu"
    assert await QualityClient(worker.client).async_assets() == []
    assert not (tmp_path / "data" / "assets").exists()


async def test_submitted_assets_wait_for_review_below_the_threshold(
    make_worker: MakeWorker,
) -> None:
    worker = await make_worker()
    await oskar(worker)
    checker, disc = encode(picture("checker")), encode(picture("disc"))
    good = await QualityClient(worker.client).async_submit_asset(
        checker, character="oskar", name="good.png"
    )
    doubtful = await QualityClient(worker.client).async_submit_asset(
        disc, character="oskar", name="disc.png"
    )
    assert (good.state, good.threshold, good.score.overall) == ("auto_accepted", THRESHOLD, 100)
    assert (doubtful.state, doubtful.name, doubtful.character) == ("pending", "disc.png", "oskar")
    assert (good.width, good.height, good.content_type) == (96, 80, "image/png")
    assert (await QualityClient(worker.client).async_asset_image(doubtful.id)) == (
        disc,
        "image/png",
    )
    assert [
        asset.id for asset in await QualityClient(worker.client).async_assets(state="pending")
    ] == [doubtful.id]
    assert (await QualityClient(worker.client).async_quality()).pending == 1

    decided = await QualityClient(worker.client).async_review_asset(
        doubtful.id, "reject", actor=USER, reason="wrong shape"
    )
    assert (decided.state, decided.reason, decided.decided_by) == (
        "rejected",
        "wrong shape",
        USER,
    )
    status = await QualityClient(worker.client).async_quality()
    assert status.pending == 0
    learnt = {item.character: item for item in status.learning}["oskar"]
    assert (learnt.rejected, learnt.reasons) == (1, {"wrong shape": 1})

    # Nothing to score against: refused, nothing kept.
    with pytest.raises(HydraApiError) as caught:
        await QualityClient(worker.client).async_submit_asset(checker)
    assert (caught.value.status, caught.value.code) == (400, "nothing_to_score")


async def test_calibration_follows_decisions_on_scored_assets(make_worker: MakeWorker) -> None:
    worker = await make_worker()
    await oskar(worker)
    others = [kind for kind in KINDS if kind != "checker"]
    ranked = await QualityClient(worker.client).async_score(
        [encode(picture(kind)) for kind in others], character="oskar", names=others
    )
    # The picture least like Oskar's reference is rejected, the rest accepted.
    worst = ranked[-1].name
    liked = [score.name for score in ranked[:-1]]

    async def review(kind: str | None, decision: str) -> None:
        asset = await QualityClient(worker.client).async_submit_asset(
            encode(picture(kind)), character="oskar"
        )
        assert asset.state == "pending"  # everything but the reference is below the default
        await QualityClient(worker.client).async_review_asset(asset.id, decision, actor=USER)

    async def learnt() -> Any:
        status = await QualityClient(worker.client).async_quality()
        return {item.character: item for item in status.learning}["oskar"]

    for kind in liked:
        await review(kind, "accept")
    await review(worst, "reject")
    # One rejection is too few to calibrate.
    assert ((await learnt()).threshold, (await learnt()).calibrated) == (THRESHOLD, False)
    await review(worst, "reject")
    await review(worst, "reject")
    oskar_learnt = await learnt()
    low, high = ranked[-1].overall, ranked[-2].overall
    assert low < high
    assert oskar_learnt.calibrated
    assert oskar_learnt.threshold == pytest.approx((low + high) / 2, abs=0.01)
    assert oskar_learnt.threshold < THRESHOLD
    # What Oskar's reviewer accepted before is now accepted without review.
    again = await QualityClient(worker.client).async_submit_asset(
        encode(picture(liked[-1])), character="oskar"
    )
    assert (again.state, again.threshold) == ("auto_accepted", oskar_learnt.threshold)


async def test_bad_input_is_clear_and_loses_nothing(
    make_worker: MakeWorker, tmp_path: Path
) -> None:
    worker = await make_worker()
    await oskar(worker)
    kept = await QualityClient(worker.client).async_submit_asset(
        encode(picture("disc")), character="oskar"
    )
    gif = encode(picture("disc"), "GIF")
    cases: list[tuple[bytes, str | None, int, str]] = [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "oskar", 400, "invalid_image"),
        (b"", "oskar", 400, "invalid_body"),
        (gif, "oskar", 400, "unsupported_format"),
        (bilevel_png(20000, 20000), "oskar", 413, "image_too_large"),
        (encode(picture("checker")), "nobody", 404, "character_not_found"),
    ]
    for data, character, status, code in cases:
        with pytest.raises(HydraApiError) as caught:
            await QualityClient(worker.client).async_submit_asset(
                data, character=character, prompt="x"
            )
        assert (caught.value.status, caught.value.code) == (status, code)
        assert caught.value.message
        with pytest.raises(HydraApiError) as caught:
            await QualityClient(worker.client).async_score(
                [encode(picture("noise")), data], character=character
            )
        assert (caught.value.status, caught.value.code) == (status, code)
    # What was there is still there, and nothing was added.
    assert [asset.id for asset in await QualityClient(worker.client).async_assets()] == [kept.id]
    assert len(list((tmp_path / "data" / "assets").iterdir())) == 1
    assert (await QualityClient(worker.client).async_asset_image(kept.id))[0] == encode(
        picture("disc")
    )
    [character] = await QualityClient(worker.client).async_characters()
    assert len(character.references) == 1


async def test_scoring_task_runs_through_the_queue(make_worker: MakeWorker) -> None:
    worker = await make_worker()
    await oskar(worker)
    task = await TasksClient(worker.client).async_queue_task(
        "quality_scoring",
        {"images": ["disc.png", "night/checker.png", "noise.png"], "character": "oskar"},
        actor=USER,
    )
    async with asyncio.timeout(30):
        while (task := await TasksClient(worker.client).async_task(task.id)).state != "succeeded":
            assert task.state not in ("failed", "cancelled"), task.error
            await asyncio.sleep(0.05)
    scores = task.result["scores"]
    assert scores[0]["name"] == "night/checker.png"
    assert [score["rank"] for score in scores] == [1, 2, 3]
    assert (task.result["auto_accepted"], task.result["pending"]) == (1, 2)
    assets = {asset.id: asset for asset in await QualityClient(worker.client).async_assets()}
    assert sorted(assets) == sorted(score["asset_id"] for score in scores)
    assert assets[scores[0]["asset_id"]].state == "auto_accepted"
    assert assets[scores[0]["asset_id"]].name == "night/checker.png"

    # Scoring only: nothing kept.
    task = await TasksClient(worker.client).async_queue_task(
        "quality_scoring",
        {"images": ["gradient.png"], "prompt": "a gradient", "submit": False},
        actor=USER,
    )
    async with asyncio.timeout(30):
        while (task := await TasksClient(worker.client).async_task(task.id)).state != "succeeded":
            await asyncio.sleep(0.05)
    assert task.result["scores"][0]["asset_id"] is None
    assert len(await QualityClient(worker.client).async_assets()) == 3

    refused = [
        {"images": ["../secret.png"], "character": "oskar"},
        {"images": ["/etc/passwd"], "character": "oskar"},
        {"images": [], "character": "oskar"},
        {"images": ["disc.png"]},
        {"images": ["disc.png"], "character": "nobody"},
        {"images": ["disc.png"], "character": "oskar", "colour": "red"},
    ]
    for payload in refused:
        with pytest.raises(HydraApiError) as caught:
            await TasksClient(worker.client).async_queue_task(
                "quality_scoring", payload, actor=USER
            )
        assert caught.value.code == "invalid_payload", payload

    # A file that is missing when the task runs fails it at once, saying which.
    task = await TasksClient(worker.client).async_queue_task(
        "quality_scoring", {"images": ["gone.png"], "prompt": "x"}, actor=USER
    )
    async with asyncio.timeout(30):
        while (task := await TasksClient(worker.client).async_task(task.id)).state != "failed":
            await asyncio.sleep(0.05)
    assert "gone.png" in task.error
    assert task.attempts == 1
