"""The review loop in a real Home Assistant against a real worker process that scores with CLIP
(tests/integration/worker_process.py) on the tiny CLIP built from ``tests/quality/clip_configs``
(random weights, fixed seed)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import aiohttp
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from PIL import Image
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.hydra.const import (
    ACTION_ACCEPT,
    ACTION_REJECT,
    CONF_REVIEW,
    CONF_REVIEW_TARGETS,
    DOMAIN,
)
from hydra_core.client import HydraClient
from hydra_core.models import Actor
from hydra_core.quality.client import QualityClient
from hydra_core.quality.models import Asset
from tests.quality.conftest import encode, picture, tiny_worker_command
from tests.worker.test_cli import free_port

from .conftest import wait_until
from .test_routine import PHONE, Sent, sent  # noqa: F401 - the notify fixture
from .worker_process import WORKER_PYTHON, worker_process

TOKEN = "review-process-token-0123456789"
IMAGE = "image.scorer_image_awaiting_review"
WAITING = "sensor.scorer_images_awaiting_review"
ACCEPT = "button.scorer_accept_image"
REJECT = "button.scorer_reject_image"
PROMPT = "portrait of Ada, red scarf, watercolour"


@pytest.fixture
async def scorer(tmp_path: Path) -> AsyncIterator[str]:
    """A worker process with quality on the tiny CLIP, whose default auto-accept threshold (99)
    sends everything to review; yields its URL."""
    port = free_port()
    command = tiny_worker_command(
        WORKER_PYTHON,
        port,
        TOKEN,
        tmp_path / "data",
        *("--name", "scorer", "--quality-threshold", "99"),
    )
    async with worker_process(command, port, tmp_path / "worker.log") as url:
        yield url


async def _setup(hass: HomeAssistant, url: str, options: dict[str, Any]) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN, title="scorer", data={CONF_URL: url, CONF_TOKEN: TOKEN}, options=options
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


@pytest.fixture
async def worker_client(hass: HomeAssistant, scorer: str) -> HydraClient:
    """The worker's API, as the generation pipeline uses it."""
    return HydraClient(async_get_clientsession(hass), scorer, TOKEN)


async def _character(url: str, name: str, reference: bytes) -> str:
    """A character with one reference image, made through the worker's API."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{url}/api/v1/characters", json={"name": name}, headers=headers
        ) as response:
            assert response.status == HTTPStatus.CREATED, await response.text()
            character = (await response.json())["id"]
        async with http.post(
            f"{url}/api/v1/characters/{character}/references",
            json={"data": base64.b64encode(reference).decode()},
            headers=headers,
        ) as response:
            assert response.status < 300, await response.text()
    return character


async def test_review_in_home_assistant(
    hass: HomeAssistant,
    scorer: str,
    worker_client: HydraClient,
    sent: Sent,  # noqa: F811
    hass_client: ClientSessionGenerator,
) -> None:
    """Images waiting for review: the image entity serves the oldest one's bytes, the phone
    gets each with its image and Accept / Reject, and the buttons, the phone and the action
    record decisions the worker learns from."""
    entry = await _setup(hass, scorer, {})
    # The options offer the review's targets since this worker keeps images for review.
    flow = await hass.config_entries.options.async_init(entry.entry_id)
    assert CONF_REVIEW in [str(key) for key in flow["data_schema"].schema]
    flow = await hass.config_entries.options.async_configure(
        flow["flow_id"], {"scan_interval": 30, CONF_REVIEW: {CONF_REVIEW_TARGETS: [PHONE]}}
    )
    assert flow["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    ada = await _character(scorer, "Ada", encode(picture("gradient")))
    images = [encode(picture(kind)) for kind in ("gradient", "stripes", "checker")]
    assets: list[Asset] = [
        await QualityClient(worker_client).async_submit_asset(image, prompt=PROMPT, character=ada)
        for image in images
    ]
    assert [asset.state for asset in assets] == ["pending"] * 3
    await wait_until(lambda: hass.states.get(WAITING).state == "3")

    # The image entity shows the oldest, and serves its exact bytes.
    state = hass.states.get(IMAGE)
    assert state.attributes["asset_id"] == assets[0].id
    assert state.attributes["character"] == ada
    assert state.attributes["score"] == round(assets[0].score.overall, 1)
    http = await hass_client()
    response = await http.get(f"/api/image_proxy/{IMAGE}")
    assert response.status == HTTPStatus.OK
    assert await response.read() == images[0]

    # Each went to the phone with the image (served by Home Assistant) and both buttons.
    await wait_until(lambda: len(sent) == 3)
    _, message, title, data = sent[0]
    assert title == f"Review {ada} (scorer)"
    assert PROMPT in message
    assert [action["title"] for action in data["actions"]] == ["Accept", "Reject"]
    response = await http.get(data["image"])
    assert await response.read() == images[0]

    # The Accept button decides the oldest; the entity moves on to the next.
    await hass.services.async_call("button", "press", {"entity_id": ACCEPT}, blocking=True)
    await wait_until(lambda: hass.states.get(IMAGE).attributes.get("asset_id") == assets[1].id)
    assert (await QualityClient(worker_client).async_assets(state="accepted"))[0].id == assets[0].id

    # The phone's Reject, with the typed reason.
    reject = next(
        a["action"] for a in sent[1][3]["actions"] if a["action"].startswith(ACTION_REJECT)
    )
    assert reject == f"{ACTION_REJECT}:{entry.entry_id}:{assets[1].id}"
    hass.bus.async_fire(
        "mobile_app_notification_action", {"action": reject, "reply_text": "extra fingers"}
    )
    await wait_until(lambda: hass.states.get(WAITING).state == "1")
    rejected = await QualityClient(worker_client).async_assets(state="rejected")
    assert [(asset.id, asset.reason) for asset in rejected] == [(assets[1].id, "extra fingers")]

    # The action, naming the asset; the waiting count and acceptance rate follow.
    answer = await hass.services.async_call(
        DOMAIN,
        "review_asset",
        {"asset_id": assets[2].id, "decision": "accept"},
        blocking=True,
        return_response=True,
    )
    assert answer["state"] == "accepted"
    await wait_until(lambda: hass.states.get(WAITING).state == "0")
    assert hass.states.get(WAITING).attributes["acceptance_rate"] == {ada: 66.7}
    assert hass.states.get(IMAGE).attributes["waiting"] == 0
    assert hass.states.get(ACCEPT).state == "unavailable"

    # Nothing left: a clear error, nothing recorded.
    with pytest.raises(ServiceValidationError, match="No image is waiting"):
        await hass.services.async_call(
            DOMAIN, "review_asset", {"decision": "reject"}, blocking=True
        )
    with pytest.raises(ServiceValidationError, match="already reviewed"):
        await hass.services.async_call(
            DOMAIN,
            "review_asset",
            {"asset_id": assets[0].id, "decision": "reject"},
            blocking=True,
        )
    accept_action = f"{ACTION_ACCEPT}:{entry.entry_id}:999"
    hass.bus.async_fire("mobile_app_notification_action", {"action": accept_action})
    await hass.async_block_till_done()
    assert len(await QualityClient(worker_client).async_assets(state="accepted")) == 2


async def test_calibration_follows_the_decisions(
    hass: HomeAssistant,
    scorer: str,
    worker_client: HydraClient,
    hass_client: ClientSessionGenerator,
) -> None:
    """Accepting the better-scored images and rejecting the worse ones moves the character's
    auto-accept threshold from the default (99) down to between them; a new image above it is
    accepted without review, and a person can still reject it."""
    entry = await _setup(hass, scorer, {})
    ada = await _character(scorer, "Ada", encode(picture("gradient")))
    images = [
        *(encode(picture(kind)) for kind in ("gradient", "stripes", "checker", "noise", "disc")),
        encode(Image.new("RGB", (96, 80), (200, 30, 30))),
    ]
    assets = [
        await QualityClient(worker_client).async_submit_asset(image, prompt=PROMPT, character=ada)
        for image in images
    ]
    ranked = sorted(assets, key=lambda asset: asset.score.overall)
    assert len({asset.score.overall for asset in ranked}) == len(images)
    worse, better = ranked[:3], ranked[3:]
    for asset in worse:
        await hass.services.async_call(
            DOMAIN,
            "review_asset",
            {"asset_id": asset.id, "decision": "reject", "reason": "off model"},
            blocking=True,
        )
    for asset in better:
        await hass.services.async_call(
            DOMAIN, "review_asset", {"asset_id": asset.id, "decision": "accept"}, blocking=True
        )

    def threshold() -> float:
        return hass.states.get(WAITING).attributes["threshold"].get(ada, 99)

    await wait_until(lambda: threshold() < 99)
    calibrated = threshold()
    assert worse[-1].score.overall < calibrated <= better[0].score.overall
    status = await QualityClient(worker_client).async_quality()
    learning = next(item for item in status.learning if item.character == ada)
    assert learning.calibrated
    assert learning.reasons == {"off model": 3}
    # What was learnt shows in diagnostics too.
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    learnt = diagnostics["quality"]["status"]["learning"]
    assert next(item for item in learnt if item["character"] == ada)["threshold"] == calibrated

    # The best image again: above the calibrated threshold, so accepted without review.
    again = await QualityClient(worker_client).async_submit_asset(
        images[assets.index(better[-1])], prompt=PROMPT, character=ada
    )
    assert again.state == "auto_accepted"

    # A person may still reject what was accepted without review: the worker learns from it.
    await QualityClient(worker_client).async_review_asset(
        again.id, "reject", actor=Actor(type="user", name="Ada"), reason="off model"
    )
    status = await QualityClient(worker_client).async_quality()
    learning = next(item for item in status.learning if item.character == ada)
    assert (learning.accepted, learning.rejected, learning.reasons) == (3, 4, {"off model": 4})
