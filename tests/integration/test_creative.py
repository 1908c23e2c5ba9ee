"""The creative pipeline in a real Home Assistant, against a real worker process with the
creative part (tests/integration/worker_process.py): its real task queue, the tiny CLIP for
scoring, Kokoro with the test weights for the voice lines, and ComfyUI's API from the stand-in
(tests/comfyui_standin.py) in the test's own event loop.

A chapter is sent with ``hydra.process_chapter``; its progress sensor, its events, its
notifications and the briefing follow it to its package. A chapter from the media folder waits
for the overnight pipeline, which Assist starts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import aiohttp
from homeassistant.auth.const import GROUP_ID_USER
from homeassistant.components import conversation
from homeassistant.const import CONF_TOKEN, CONF_URL, EVENT_STATE_CHANGED
from homeassistant.core import Context, Event, HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError, Unauthorized
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockUser,
    async_capture_events,
)

from custom_components.hydra.const import (
    CONF_NOTIFY_SUCCESS,
    CONF_NOTIFY_TARGETS,
    DOMAIN,
    EVENT_CHAPTER_FAILED,
    EVENT_CHAPTER_FINISHED,
    EVENT_CHAPTER_PROGRESS,
    EVENT_CHAPTER_STARTED,
)
from tests.comfyui_standin import ComfyUIStandIn
from tests.creative.pipeline import STYLE_BOOK, reference_png
from tests.quality.conftest import tiny_worker_command
from tests.voice.weights import VoiceWeights, install_kokoro
from tests.worker.test_cli import free_port

from .conftest import record_states, wait_until
from .test_routine import PHONE, Sent, sent  # noqa: F401 - the notify fixture
from .worker_process import WORKER_PYTHON, worker_process

TOKEN = "creative-process-token-0123456789"
# Loading torch, the tiny CLIP and Kokoro takes a while on a busy machine.
START_TIMEOUT_S = 60
# A chapter of one scene takes a few seconds; the margin is for a busy machine.
CHAPTER_TIMEOUT_S = 60
SENSOR = "sensor.creator_chapter_the_glass_crown"
OVERNIGHT_SENSOR = "sensor.creator_chapter_the_eastern_gate"
LAST_SENSOR = "sensor.creator_chapter_the_last_stand"
DAWN_SENSOR = "sensor.creator_chapter_the_dawn"
REVIEW_IMAGE = "image.creator_image_awaiting_review"
CHAPTER = """\
Title: The Glass Crown

INT. THRONE ROOM - NIGHT

Candles gutter along the black marble.

MIRA
(furious)
Who opened the eastern gate?

ODO
I did, my queen.
"""


@pytest.fixture
async def comfy() -> AsyncIterator[ComfyUIStandIn]:
    """ComfyUI's API, drawing pictures from the prompts."""
    async with ComfyUIStandIn() as server:
        yield server


async def _cast(url: str) -> None:
    """Mira and Odo in the worker's registry, each with a reference image."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        for name, color in (("Mira", (200, 200, 230)), ("Odo", (90, 90, 90))):
            async with http.post(f"{url}/api/v1/characters", json={"name": name}) as response:
                assert response.status == 201, await response.text()
                character = (await response.json())["id"]
            async with http.post(
                f"{url}/api/v1/characters/{character}/references",
                json={"data": reference_png(color)},
            ) as response:
                assert response.status < 300, await response.text()


@pytest.fixture
def threshold() -> str:
    """The auto-accept threshold: 0 lets every image pass (the tiny CLIP's scores mean nothing),
    99 sends every image to review."""
    return "0"


@pytest.fixture
async def creator(
    tmp_path: Path, voice_weights: VoiceWeights, comfy: ComfyUIStandIn, threshold: str
) -> AsyncIterator[str]:
    """A worker process with the creative part on the stand-in, drawing each image once, at
    the threshold the test asks for; yields its URL."""
    data_dir = tmp_path / "data"
    style = data_dir / "creative" / "default" / "style.yaml"
    style.parent.mkdir(parents=True)
    style.write_text(STYLE_BOOK, encoding="utf-8")
    models = tmp_path / "models"
    install_kokoro(models, voice_weights)
    port = free_port()
    command = tiny_worker_command(
        WORKER_PYTHON,
        port,
        TOKEN,
        data_dir,
        *("--name", "creator", "--quality-threshold", threshold, "--creative-tries", "1"),
        *("--models-dir", str(models), "--voice-offline", "true"),
        *("--outputs-dir", str(tmp_path / "outputs"), "--comfyui-urls", comfy.url),
        *("--comfyui-steps", "3", "--retry-backoff", "0.2"),
    )
    async with worker_process(
        command, port, tmp_path / "worker.log", start_timeout=START_TIMEOUT_S
    ) as url:
        await _cast(url)
        yield url


async def _setup(hass: HomeAssistant, url: str) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="creator",
        data={CONF_URL: url, CONF_TOKEN: TOKEN},
        # Every task's success too: a chapter's tasks still notify only as the chapter.
        options={CONF_NOTIFY_TARGETS: [PHONE], CONF_NOTIFY_SUCCESS: True},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def _process(
    hass: HomeAssistant, data: dict[str, Any], user: MockUser | None = None
) -> dict[str, Any]:
    answer = await hass.services.async_call(
        DOMAIN,
        "process_chapter",
        data,
        blocking=True,
        return_response=True,
        context=Context(user_id=user.id if user else None),
    )
    assert answer is not None
    return dict(answer)


async def _chapter(
    hass: HomeAssistant, action: str, chapter_id: int, user: MockUser
) -> dict[str, Any]:
    answer = await hass.services.async_call(
        DOMAIN,
        action,
        {"chapter_id": chapter_id},
        blocking=True,
        return_response=True,
        context=Context(user_id=user.id),
    )
    assert answer is not None
    return dict(answer)


def _stages(hass: HomeAssistant, entity_id: str) -> list[str]:
    """The stages the sensor shows, in order, each once."""
    stages: list[str] = []

    @callback
    def changed(event: Event[Any]) -> None:
        new = event.data["new_state"]
        if event.data["entity_id"] == entity_id and new is not None:
            stage = new.attributes.get("stage")
            if stage and (not stages or stages[-1] != stage):
                stages.append(stage)

    hass.bus.async_listen(EVENT_STATE_CHANGED, changed)
    return stages


async def _finished(hass: HomeAssistant, entity_id: str) -> dict[str, Any]:
    """Wait until the chapter's sensor says it succeeded; its attributes."""
    await wait_until(
        lambda: (
            (state := hass.states.get(entity_id)) is not None
            and state.attributes.get("state") in ("succeeded", "failed")
        ),
        within=CHAPTER_TIMEOUT_S,
    )
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.attributes["state"] == "succeeded", state.attributes
    assert float(state.state) == 100
    return dict(state.attributes)


async def test_a_chapter_from_text_to_package(
    hass: HomeAssistant,
    creator: str,
    sent: Sent,  # noqa: F811
    hass_admin_user: MockUser,
) -> None:
    """An administrator sends a chapter as text: it answers with what it will make; the
    chapter's sensor follows it through its stages to 100 %; automations hear it start, move
    on and finish; the phone hears each stage and that the package is ready; the briefing tells
    what it made."""
    await _setup(hass, creator)
    events = {
        name: async_capture_events(hass, name)
        for name in (
            EVENT_CHAPTER_STARTED,
            EVENT_CHAPTER_PROGRESS,
            EVENT_CHAPTER_FINISHED,
            EVENT_CHAPTER_FAILED,
        )
    }
    stages = _stages(hass, SENSOR)
    states = record_states(hass, SENSOR)

    answer = await _process(hass, {"text": CHAPTER}, hass_admin_user)
    # A background for the throne room at night, Mira's and Odo's portraits, Mira furious.
    assert answer["title"] == "The Glass Crown"
    assert (answer["scenes"], answer["lines"], answer["voice_lines"]) == (1, 2, 2)
    assert answer["images"] == 4
    assert answer["state"] == "queued"

    attributes = await _finished(hass, SENSOR)
    assert attributes["chapter_id"] == answer["chapter_id"]
    assert (attributes["images_done"], attributes["images_total"]) == (4, 4)
    assert (attributes["voices_done"], attributes["voices_total"]) == (2, 2)
    assert (attributes["auto_accepted"], attributes["pending_review"]) == (4, 0)
    assert attributes["package"].endswith(".zip")
    assert attributes["error"] is None
    # Images first, the package last; voices between where images end before the voices do.
    assert stages in (["images", "voices", "package", "done"], ["images", "package", "done"])
    # The percent rose with every asset made, to 100 % in the done stage.
    percents = [float(state.state) for state in states]
    assert percents == sorted(percents)
    assert percents[-1] == 100
    assert any(0 < percent < 100 for percent in percents), percents
    assert states[-1].attributes["stage"] == "done"

    assert len(events[EVENT_CHAPTER_STARTED]) == 1
    assert [event.data["chapter_id"] for event in events[EVENT_CHAPTER_FINISHED]] == [
        answer["chapter_id"]
    ]
    assert events[EVENT_CHAPTER_FINISHED][0].data["images"] == {"done": 4, "total": 4}
    assert not events[EVENT_CHAPTER_FAILED]
    progress = events[EVENT_CHAPTER_PROGRESS]
    assert [event.data["stage"] for event in progress if event.data["stage_changed"]][-1] == (
        "package"
    )
    assert progress[-1].data["percent"] > progress[0].data["percent"]

    await wait_until(lambda: any("package ready" in message for _, message, _, _ in sent))
    messages = [message for target, message, _, _ in sent if target == PHONE]
    assert messages[-1] == "Chapter 'The Glass Crown': package ready: 4 images and 2 voice lines"
    assert any(message.endswith("writing the Ren'Py package") for message in messages)
    assert all(message.startswith("Chapter 'The Glass Crown': ") for message in messages)
    # One notification per chapter on the phone: each replaces the one before.
    assert {data["tag"] for target, _, _, data in sent if target == PHONE} == {
        f"{DOMAIN}-chapter-{hass.config_entries.async_entries(DOMAIN)[0].entry_id}-"
        f"{answer['chapter_id']}"
    }

    briefing = await hass.services.async_call(
        DOMAIN, "briefing", {}, blocking=True, return_response=True
    )
    assert briefing is not None
    assert briefing["sections"]["creative"] == (
        "The Glass Crown is packaged, with 4 images (4 accepted automatically) and 2 voice lines."
    )
    # The chapter's eight tasks are its own, not the night's work.
    assert "work" not in briefing["sections"]


@pytest.mark.parametrize("threshold", ["99"])
async def test_refusals_review_and_the_overnight_pipeline(
    hass: HomeAssistant,
    creator: str,
    sent: Sent,  # noqa: F811
    tmp_path: Path,
    hass_admin_user: MockUser,
) -> None:
    """Refused: a chapter naming someone unknown (the line is named), a file outside the media
    folder, anyone but an administrator. A chapter whose images all wait for review is packaged
    with them, and the review image shows them. A chapter file in the media folder, sent to wait
    for the overnight pipeline, has its sensor at once; "start the overnight pipeline" starts it
    and says so. A waiting chapter is cancelled, and retried runs at once. The bedtime step
    starts a waiting chapter too. A day after they ended, only the newest chapter keeps its
    sensor."""
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "conversation", {})
    media = tmp_path / "media"
    (media / "chapters").mkdir(parents=True)
    (media / "chapters" / "gate.fountain").write_text(CHAPTER, encoding="utf-8")
    (tmp_path / "secrets.yaml").write_text("token: hunter2\n")
    hass.config.media_dirs = {"local": str(media)}
    entry = await _setup(hass, creator)
    member = await hass.auth.async_create_user("Bob", group_ids=[GROUP_ID_USER])

    with pytest.raises(ServiceValidationError) as refused:
        await _process(hass, {"text": CHAPTER.replace("ODO", "ODDO")}, hass_admin_user)
    assert refused.value.translation_key == "invalid_chapter"
    assert "line 11" in str(refused.value)
    assert "ODDO" in str(refused.value)
    with pytest.raises(ServiceValidationError) as refused:
        await _process(hass, {"file": "../secrets.yaml"}, hass_admin_user)
    assert refused.value.translation_key == "chapter_file_outside_media"
    with pytest.raises(Unauthorized):
        await _process(hass, {"file": "chapters/gate.fountain"}, member)  # type: ignore[arg-type]
    assert not hass.states.async_entity_ids("sensor.creator_chapter")

    # Every image below the threshold: packaged meanwhile, each waiting for a person.
    first = await _process(hass, {"text": CHAPTER}, hass_admin_user)
    attributes = await _finished(hass, SENSOR)
    assert (attributes["auto_accepted"], attributes["pending_review"]) == (0, 4)
    await wait_until(lambda: hass.states.get(REVIEW_IMAGE).attributes.get("waiting") == 4)
    assert hass.states.get(REVIEW_IMAGE).attributes["character"] in (None, "mira", "odo")

    waiting = await _process(
        hass,
        {"file": "chapters/gate.fountain", "name": "The Eastern Gate", "start": "overnight"},
        hass_admin_user,
    )
    assert waiting["state"] == "waiting"
    await wait_until(lambda: hass.states.get(OVERNIGHT_SENSOR) is not None)
    state = hass.states.get(OVERNIGHT_SENSOR)
    # What the first chapter made counts already: only its package is left to make.
    assert state.attributes["state"] == "waiting"
    assert float(state.state) < 100

    result = await conversation.async_converse(
        hass, "start the overnight pipeline", None, Context(), language="en"
    )
    speech = result.response.speech["plain"]["speech"]
    assert speech.endswith("1 chapter waiting for it is queued: The Eastern Gate."), speech
    attributes = await _finished(hass, OVERNIGHT_SENSOR)
    assert attributes["chapter_id"] == waiting["chapter_id"]
    for action, code in (("cancel_chapter", "chapter_finished"), ("retry_chapter", None)):
        with pytest.raises(ServiceValidationError) as refused:
            await _chapter(hass, action, waiting["chapter_id"], hass_admin_user)
        assert refused.value.translation_key == (code or "chapter_not_retryable")

    last = await _process(
        hass, {"text": CHAPTER, "name": "The Last Stand", "start": "overnight"}, hass_admin_user
    )
    assert (await _chapter(hass, "cancel_chapter", last["chapter_id"], hass_admin_user)) == {
        "chapter_id": last["chapter_id"],
        "state": "cancelled",
    }
    assert hass.states.get(LAST_SENSOR).attributes["state"] == "cancelled"
    retried = await _chapter(hass, "retry_chapter", last["chapter_id"], hass_admin_user)
    assert retried["state"] == "queued"
    await _finished(hass, LAST_SENSOR)

    # The bedtime step starts the overnight pipeline too.
    dawn = await _process(
        hass, {"text": CHAPTER, "name": "The Dawn", "start": "overnight"}, hass_admin_user
    )
    bedtime = await hass.services.async_call(
        DOMAIN,
        "bedtime",
        {},
        blocking=True,
        return_response=True,
        context=Context(user_id=hass_admin_user.id),
    )
    assert bedtime is not None
    assert bedtime["chapters_started"] == [dawn["chapter_id"]]
    await _finished(hass, DAWN_SENSOR)

    # A day later: the chapters that ended go, the newest keeps its sensor.
    registry = er.async_get(hass)
    assert registry.async_get(SENSOR) is not None
    creative = entry.runtime_data.parts["creative"]
    later = dt_util.utcnow() + timedelta(hours=25)
    with patch("homeassistant.util.dt.utcnow", return_value=later):
        await creative.async_refresh()
    await hass.async_block_till_done()
    for gone in (SENSOR, OVERNIGHT_SENSOR, LAST_SENSOR):
        assert registry.async_get(gone) is None
        assert hass.states.get(gone) is None
    assert registry.async_get(DAWN_SENSOR) is not None
    assert first["chapter_id"] < waiting["chapter_id"] < last["chapter_id"] < dawn["chapter_id"]
