"""Quality through the worker's API without the CLIP model: the character registry, the review
queue, what decisions teach, and scoring refused clearly when the model cannot run.

These run on both interpreters. The engine is offline with weights that are not there, so
scoring is unavailable whether or not torch is installed; assets are put in the review store
as submitting would (with a score given here), the only step that needs the model.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
import io
from pathlib import Path
import struct
from typing import Any
import zlib

import aiohttp
from PIL import Image
import pytest

from hydra_core.client import HydraApiError
from hydra_core.events import EventBus, Subscription
from hydra_core.quality import service as service_module
from hydra_core.quality.client import QualityClient
from hydra_core.quality.files import check_image
from hydra_core.quality.models import EVENT_ASSET, EVENT_QUALITY, Asset, ImageScore
from hydra_core.quality.options import QualityOptions
from hydra_core.quality.part import QualityPart
from hydra_core.quality.review import NewAsset
from hydra_core.quality.routes import MAX_IMAGE_REQUESTS
from hydra_core.quality.service import QualityService
from hydra_core.wire import load
from hydra_core.worker.app import API_PREFIX
from tests.quality_worker import QualityWorker
from tests.worker_identity import TOKEN, USER

from .conftest import ServeWorker

MakeWorker = Callable[..., Any]


def png(color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (32, 24)) -> bytes:
    return encode(Image.new("RGB", size, color), "PNG")


def encode(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format)
    return buffer.getvalue()


def huge_png_header(width: int = 20000, height: int = 20000) -> bytes:
    """A PNG that says it is ``width`` x ``height`` (no pixels: the size alone must refuse it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Worker(QualityWorker):
    """A worker serving quality over loopback, with a way to keep an asset as if scored."""

    part: QualityPart | None = None

    async def keep(
        self,
        overall: float,
        *,
        character: str | None = None,
        prompt: str | None = None,
        data: bytes | None = None,
    ) -> Asset:
        """Keep an asset as submitting does once the model has scored it ``overall``."""
        stored, _ = check_image(data or png())
        score = ImageScore(index=0, overall=overall, prompt=overall, weights={"prompt": 1.0})
        return await self.service.store.async_add(
            NewAsset(
                image=stored,
                score=score,
                threshold=self.service.threshold(character),
                character=character,
                prompt=prompt,
            )
        )


@pytest.fixture
def make_worker(
    serve_worker: ServeWorker, http: aiohttp.ClientSession, tmp_path: Path
) -> MakeWorker:
    """A worker whose data is in tmp_path/data; a new one each call is the same worker
    restarted."""

    async def make(*, quality: bool = True, bus: EventBus | None = None, **options: Any) -> Worker:
        service = None
        if quality:
            service = QualityService(
                QualityOptions(quality_offline=True, **options),
                data_dir=tmp_path / "data",
                models_dir=tmp_path / "models",
                bus=bus,
                watch_interval_s=0.05,
            )
        part = None if service is None else QualityPart(service)
        url = await serve_worker(token=TOKEN, bus=bus, parts=[] if part is None else [part])
        worker = Worker(url, service, http)  # type: ignore[arg-type]
        worker.part = part
        return worker

    return make


async def next_event(
    subscription: Subscription, event_type: str, wanted: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The next event of ``event_type`` whose data is ``wanted``."""
    async with asyncio.timeout(5):
        while True:
            event = await subscription.next(5)
            assert event is not None
            if event.type == event_type and wanted(event.data):
                return event.data


async def test_without_quality_the_routes_say_so(make_worker: MakeWorker) -> None:
    worker = await make_worker(quality=False)
    for method, path in (("GET", "quality"), ("GET", "characters"), ("POST", "assets")):
        status, body = await worker.call(method, path, {} if method == "POST" else None)
        assert (status, body["code"]) == (404, "quality_disabled")


async def test_twenty_two_characters_are_kept_across_a_restart(make_worker: MakeWorker) -> None:
    worker = await make_worker()
    names = [f"Character {number}" for number in range(1, 23)]
    for name in names:
        assert (await worker.call("POST", "characters", {"name": name}))[0] == 201
    status, mira = await worker.call(
        "POST",
        "characters",
        {"name": "Lady Mïra", "style_notes": "watercolour", "voice": {"voice": "af_heart"}},
    )
    assert (status, mira["id"], mira["references"]) == (201, "lady-mira", [])
    # A second character of the same name gets an id of its own.
    status, twin = await worker.call("POST", "characters", {"name": "Lady  Mira!"})
    assert twin["id"] == "lady-mira-2"

    status, changed = await worker.call(
        "PUT", "characters/lady-mira", {"style_notes": "ink and watercolour"}
    )
    assert (status, changed["name"], changed["style_notes"]) == (
        200,
        "Lady Mïra",
        "ink and watercolour",
    )
    assert (await worker.call("DELETE", "characters/lady-mira-2"))[0] == 204

    restarted = await make_worker()
    characters = await QualityClient(restarted.client).async_characters()
    assert [character.name for character in characters] == [*names, "Lady Mïra"]
    assert characters[-1].voice == {"voice": "af_heart"}
    assert characters[-1].style_notes == "ink and watercolour"
    learnt = [
        item.character for item in (await QualityClient(restarted.client).async_quality()).learning
    ]
    assert learnt == [None, *(character.id for character in characters)]


async def test_character_input_is_checked(make_worker: MakeWorker) -> None:
    worker = await make_worker()
    await worker.call("POST", "characters", {"name": "Oskar"})
    for body in (
        {},
        {"name": ""},
        {"name": "x" * 101},
        {"name": "Ada", "id": "ada"},
        {"name": "Ada", "references": ["a.png"]},
        {"name": "Ada", "voice": "af_heart"},
        {"name": "Ada", "style_notes": 3},
    ):
        status, answer = await worker.call("POST", "characters", body)
        assert (status, answer["code"]) == (400, "invalid_body"), body
    for method, path in (("GET", "characters/nobody"), ("PUT", "characters/nobody")):
        status, answer = await worker.call(method, path, {"name": "x"} if method == "PUT" else None)
        assert (status, answer["code"]) == (404, "character_not_found")
    assert [
        character.id for character in await QualityClient(worker.client).async_characters()
    ] == ["oskar"]


async def test_reference_images_are_checked_kept_and_removed(
    make_worker: MakeWorker, tmp_path: Path
) -> None:
    worker = await make_worker()
    await worker.call("POST", "characters", {"name": "Oskar"})
    image = png()
    status, oskar = await worker.call("POST", "characters/oskar/references", {"data": b64(image)})
    assert status == 201
    [name] = oskar["references"]
    assert name.endswith(".png")
    kept = tmp_path / "data" / "characters" / "oskar" / name
    assert kept.read_bytes() == image
    # The same image again is the same reference; JPEG and WebP are welcome.
    _, again = await worker.call("POST", "characters/oskar/references", {"data": b64(image)})
    assert again["references"] == [name]
    for image_format in ("JPEG", "WEBP"):
        picture = encode(Image.new("RGB", (40, 30), (10, 200, 90)), image_format)
        status, _ = await worker.call("POST", "characters/oskar/references", {"data": b64(picture)})
        assert status == 201
    # A photo-sized image is far beyond the API's usual body limit of 1 MiB.
    photo = encode(Image.effect_noise((1400, 1000), 60).convert("RGB"), "PNG")
    assert len(photo) > 3 * 1024 * 1024
    status, _ = await worker.call("POST", "characters/oskar/references", {"data": b64(photo)})
    assert status == 201

    bad = [
        (b64(b"\x89PNG\r\n\x1a\n not really"), 400, "invalid_image"),
        (b64(encode(Image.new("RGB", (8, 8)), "GIF")), 400, "unsupported_format"),
        (b64(huge_png_header()), 413, "image_too_large"),
        ("not base64!", 400, "invalid_body"),
    ]
    for data, expected_status, code in bad:
        status, answer = await worker.call("POST", "characters/oskar/references", {"data": data})
        assert (status, answer["code"]) == (expected_status, code)
        assert answer["message"]
    status, answer = await worker.call("POST", "characters/nobody/references", {"data": b64(image)})
    assert (status, answer["code"]) == (404, "character_not_found")
    _, oskar = await worker.call("GET", "characters/oskar")
    assert len(oskar["references"]) == 4
    assert len(list(kept.parent.iterdir())) == 4

    status, oskar = await worker.call("DELETE", f"characters/oskar/references/{name}")
    assert (status, name in oskar["references"]) == (200, False)
    assert not kept.exists()
    status, answer = await worker.call("DELETE", f"characters/oskar/references/{name}")
    assert (status, answer["code"]) == (404, "reference_not_found")
    assert (await worker.call("DELETE", "characters/oskar"))[0] == 204
    assert not kept.parent.exists()


async def test_scoring_refused_clearly_when_the_model_cannot_run(
    make_worker: MakeWorker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = await make_worker()
    status = await QualityClient(worker.client).async_quality()
    assert not status.available or status.state == "not_loaded"
    assert (status.model, status.pretrained, status.default_threshold) == (
        "ViT-B-32",
        "laion2b_s34b_b79k",
        60,
    )
    await worker.call("POST", "characters", {"name": "Oskar"})

    # Bad input is refused before the model is asked...
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"data": b64(b"garbage")}, 400, "invalid_image"),
        ({"data": b64(encode(Image.new("RGB", (8, 8)), "GIF"))}, 400, "unsupported_format"),
        ({"data": b64(huge_png_header())}, 413, "image_too_large"),
        ({"data": b64(png()), "character": "nobody"}, 404, "character_not_found"),
        ({"data": b64(png()), "colour": "red"}, 400, "invalid_body"),
        ({}, 400, "invalid_body"),
    ]
    for body, expected_status, code in cases:
        status_code, answer = await worker.call("POST", "assets", body)
        assert (status_code, answer["code"]) == (expected_status, code), body
    with pytest.raises(HydraApiError) as caught:
        await QualityClient(worker.client).async_score([png(), b"garbage"], prompt="a red square")
    assert (caught.value.status, caught.value.code) == (400, "invalid_image")
    # Many images that each pass may not decode to more than a request's pixel budget.
    monkeypatch.setattr(service_module, "MAX_BATCH_PIXELS", 2000)
    with pytest.raises(HydraApiError) as caught:
        await QualityClient(worker.client).async_score([png(), png(), png()], prompt="a red square")
    assert (caught.value.status, caught.value.code) == (413, "image_too_large")
    monkeypatch.undo()

    # ...and good input is told why it cannot be scored.
    with pytest.raises(HydraApiError) as caught:
        await QualityClient(worker.client).async_submit_asset(
            png(), prompt="a red square", character="oskar"
        )
    assert (caught.value.status, caught.value.code) == (503, "quality_unavailable")
    assert caught.value.message
    with pytest.raises(HydraApiError) as caught:
        await QualityClient(worker.client).async_score([png()], prompt="a red square")
    assert (caught.value.status, caught.value.code) == (503, "quality_unavailable")
    status = await QualityClient(worker.client).async_quality()
    assert not status.available
    assert status.reason

    # Nothing was kept.
    assert await QualityClient(worker.client).async_assets() == []
    assert not (tmp_path / "data" / "assets").exists() or not any(
        (tmp_path / "data" / "assets").iterdir()
    )


async def test_review_queue_and_decisions(make_worker: MakeWorker) -> None:
    bus = EventBus()
    subscription = bus.subscribe()
    worker = await make_worker(bus=bus)
    images = [png((number * 40, 10, 10)) for number in range(4)]
    first = await worker.keep(41, prompt="a knight", data=images[0])
    second = await worker.keep(52, data=images[1])
    third = await worker.keep(30, data=images[2])
    auto = await worker.keep(75, data=images[3])
    assert [asset.state for asset in (first, second, third, auto)] == [
        "pending",
        "pending",
        "pending",
        "auto_accepted",
    ]
    assert auto.threshold == 60
    assert (await QualityClient(worker.client).async_quality()).pending == 3
    pending = await QualityClient(worker.client).async_assets(state="pending")
    assert [asset.id for asset in pending] == [first.id, second.id, third.id]
    newest = await QualityClient(worker.client).async_assets(limit=2)
    assert [asset.id for asset in newest] == [auto.id, third.id]
    data, content_type = await QualityClient(worker.client).async_asset_image(second.id)
    assert (data, content_type) == (images[1], "image/png")
    assert (await QualityClient(worker.client).async_assets(state="accepted")) == []

    accepted = await QualityClient(worker.client).async_review_asset(first.id, "accept", actor=USER)
    assert (accepted.state, accepted.decided_by, accepted.reason) == ("accepted", USER, None)
    assert accepted.decided_at is not None
    event = await next_event(subscription, EVENT_ASSET, lambda data: data["id"] == first.id)
    assert load(Asset, event) == accepted
    # Home Assistant hears that one asset fewer waits, and what was learnt.
    quality = await next_event(subscription, EVENT_QUALITY, lambda data: data["pending"] == 2)
    assert [item["accepted"] for item in quality["learning"]] == [1]

    rejected = await QualityClient(worker.client).async_review_asset(
        third.id, "reject", actor=USER, reason="Blurry"
    )
    assert (rejected.state, rejected.reason) == ("rejected", "Blurry")
    # A person may overrule the threshold...
    overruled = await QualityClient(worker.client).async_review_asset(
        auto.id, "reject", actor=USER, reason="extra fingers"
    )
    assert overruled.state == "rejected"
    # ...but a person's decision is final.
    with pytest.raises(HydraApiError) as caught:
        await QualityClient(worker.client).async_review_asset(first.id, "reject", actor=USER)
    assert (caught.value.status, caught.value.code) == (409, "asset_decided")
    for decision, code, status in (("maybe", "invalid_decision", 400),):
        with pytest.raises(HydraApiError) as caught:
            await QualityClient(worker.client).async_review_asset(second.id, decision, actor=USER)
        assert (caught.value.status, caught.value.code) == (status, code)
    with pytest.raises(HydraApiError) as caught:
        await QualityClient(worker.client).async_review_asset(999, "accept", actor=USER)
    assert (caught.value.status, caught.value.code) == (404, "asset_not_found")
    with pytest.raises(HydraApiError) as caught:
        await QualityClient(worker.client).async_asset_image(999)
    assert caught.value.code == "asset_not_found"
    status, answer = await worker.call("POST", f"assets/{second.id}/review", {"reason": "x"})
    assert (status, answer["code"]) == (400, "invalid_body")
    status, answer = await worker.call("GET", "assets?state=lost")
    assert (status, answer["code"]) == (400, "invalid_query")
    for path, code in (("assets/abc", "invalid_asset_id"), (f"assets/{10**30}", "asset_not_found")):
        assert (await worker.call("GET", path))[1]["code"] == code
    assert (await QualityClient(worker.client).async_assets(state="pending"))[0].id == second.id

    learning = {
        item.character: item
        for item in (await QualityClient(worker.client).async_quality()).learning
    }
    assert (learning[None].accepted, learning[None].rejected) == (1, 2)
    assert learning[None].reasons == {"blurry": 1, "extra fingers": 1}
    # Everything survives a restart.
    restarted = await make_worker()
    assert (await QualityClient(restarted.client).async_quality()).pending == 1
    assert (await QualityClient(restarted.client).async_asset_image(second.id))[0] == images[1]
    assert (await QualityClient(restarted.client).async_assets(state="rejected"))[
        0
    ].decided_by == USER


async def test_calibration_moves_with_decisions(make_worker: MakeWorker) -> None:
    worker = await make_worker(quality_threshold=50)
    await worker.call("POST", "characters", {"name": "Mira"})

    async def decide(scores: list[float], decision: str, reason: str | None = None) -> None:
        for score in scores:
            asset = await worker.keep(score, character="mira", prompt="mira, harsh flash")
            await QualityClient(worker.client).async_review_asset(
                asset.id, decision, actor=USER, reason=reason
            )

    async def learnt() -> dict[str, Any]:
        _, body = await worker.call("GET", "quality/learning")
        return {item["character"]: item for item in body["learning"]}["mira"]

    await decide([20, 25, 30], "reject", "too dark")
    await decide([60, 62, 64], "accept")
    mira = await learnt()
    assert (mira["threshold"], mira["calibrated"]) == (45, True)
    # New assets of Mira are judged against the calibrated threshold.
    assert (await worker.keep(46, character="mira")).state == "auto_accepted"
    # Assets above it rejected: the threshold rises above them.
    await decide([46, 47, 48], "reject", "too dark")
    mira = await learnt()
    assert mira["threshold"] == 54
    assert (await worker.keep(50, character="mira")).state == "pending"
    # Accepting lower ones brings it down again.
    await decide([35, 36, 37, 38], "accept")
    assert (await learnt())["threshold"] < 54
    assert mira["reasons"] == {"too dark": 6}
    assert mira["negative_terms"] == ["too dark"]
    assert (mira["decisions"], mira["accepted"], mira["rejected"]) == (9, 3, 6)
    # Other characters keep the default.
    assert worker.service.threshold(None) == 50


async def test_an_unreadable_registry_is_kept_aside(
    make_worker: MakeWorker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "characters.json").write_text('{"characters": [{"id": "mira", ')
    worker = await make_worker()
    assert await QualityClient(worker.client).async_characters() == []
    [kept] = data_dir.glob("characters.json.corrupt-*")
    assert kept.read_text() == '{"characters": [{"id": "mira", '
    assert "not a character registry" in caplog.text
    # The registry works on, in a fresh file.
    assert (await worker.call("POST", "characters", {"name": "Mira"}))[0] == 201
    assert kept.exists()


async def test_requests_with_images_are_capped(
    make_worker: MakeWorker, http: aiohttp.ClientSession
) -> None:
    """While MAX_IMAGE_REQUESTS uploads are still arriving, another is refused at once with a
    clear answer instead of a fifth 64 MiB body in memory; once they finish there is room."""
    worker = await make_worker()
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:  # the client is still sending
        yield b'{"data": "'
        await release.wait()
        yield b64(png()).encode() + b'"}'

    url = f"{worker.url}{API_PREFIX}/assets"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    uploads = [
        asyncio.create_task(http.post(url, data=slow_body(), headers=headers))
        for _ in range(MAX_IMAGE_REQUESTS)
    ]
    async with asyncio.timeout(5):
        while worker.part.image_requests < MAX_IMAGE_REQUESTS:
            await asyncio.sleep(0.01)

    status, answer = await worker.call("POST", "assets", {"data": b64(png((10, 10, 200)))})
    assert (status, answer["code"]) == (503, "too_many_uploads")
    assert "again in a moment" in answer["message"]

    release.set()
    for upload in uploads:
        # Taken, and judged on what they carry (no prompt here: nothing to score against).
        async with await upload as response:
            assert (response.status, (await response.json())["code"]) == (400, "nothing_to_score")
    status, answer = await worker.call("POST", "assets", {"data": b64(png((10, 10, 200)))})
    assert (status, answer["code"]) == (400, "nothing_to_score")
