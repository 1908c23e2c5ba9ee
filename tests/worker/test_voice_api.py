"""The voice services through the worker's API: what is offered, why not, and the settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hydra_core.client import HydraApiError, HydraClient
from hydra_core.events import EventBus
from hydra_core.voice.client import VoiceClient
from hydra_core.voice.models import EVENT_VOICE, VoiceSettings, VoiceStatus
from hydra_core.voice.options import VoiceOptions
from hydra_core.voice.part import VoicePart
from hydra_core.voice.service import SETTINGS_FILE, VoiceService
from hydra_core.wire import dump
from tests.worker_identity import TOKEN

from .conftest import LOOPBACK, ServeWorker

MakeClient = Callable[..., Any]


def voice_service(
    tmp_path: Path, on_change: Callable[[VoiceStatus], None] | None = None, **changes: Any
) -> VoiceService:
    """Offline, with an empty models folder: only the wake word (shipped with its library) runs."""
    options: dict[str, Any] = {"voice_port": 0, "voice_offline": True, "stt_model": "tiny.en"}
    return VoiceService(
        VoiceOptions(**(options | changes)),
        host=LOOPBACK,
        data_dir=tmp_path,
        models_dir=tmp_path / "models",
        on_change=on_change,
    )


@pytest.fixture
def make_client(
    serve_worker: ServeWorker, http: aiohttp.ClientSession, tmp_path: Path
) -> MakeClient:
    async def make(bus: EventBus | None = None, **changes: Any) -> tuple[HydraClient, VoiceService]:
        bus = bus or EventBus()
        service = voice_service(
            tmp_path, lambda status: bus.publish(EVENT_VOICE, dump(status)), **changes
        )
        url = await serve_worker(token=TOKEN, bus=bus, parts=[VoicePart(service)])
        return HydraClient(http, url, TOKEN), service

    return make


async def test_status_says_what_runs_and_why_the_rest_does_not(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client, service = await make_client()

    status = await VoiceClient(client).async_voice()

    assert status.port == service.port != 0
    assert status.wake.available
    assert "hey_jarvis" in status.wake.choices
    assert not status.stt.available
    assert str(tmp_path / "models") in (status.stt.reason or "")
    assert "offline" in (status.stt.reason or "")
    assert not status.tts.available
    assert status.tts.reason
    assert status.settings.stt_model == "tiny.en"


async def test_settings_change_are_checked_and_survive_a_restart(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client, service = await make_client()

    status = await VoiceClient(client).async_update_voice(wake_threshold=0.7, wake_trigger_level=2)

    assert status.settings.wake_threshold == 0.7
    assert service.wake.threshold == 0.7
    assert service.wake.trigger_level == 2
    again, _ = await make_client()
    assert (await VoiceClient(again).async_voice()).settings.wake_threshold == 0.7


@pytest.mark.parametrize(
    ("changes", "mentions"),
    [
        ({"wake_threshold": 1.5}, "wake_threshold"),
        ({"wake_threshold": "high"}, "wake_threshold"),
        ({"wake_threshold": True}, "wake_threshold"),
        ({"wake_trigger_level": 0}, "wake_trigger_level"),
        ({"tts_speed": 9}, "tts_speed"),
        ({"stt_model": ""}, "stt_model"),
        # A name, never a path: with nothing installed there is no list to check it against.
        ({"stt_model": "../../../etc"}, "stt_model"),
        ({"stt_model": "/srv/whisper"}, "stt_model"),
        ({"tts_voice": "../voices/x"}, "voice"),
        ({"volume": 3}, "volume"),
    ],
)
async def test_bad_settings_are_refused_and_change_nothing(
    make_client: MakeClient, changes: dict[str, Any], mentions: str
) -> None:
    client, service = await make_client()
    before = (await VoiceClient(client).async_voice()).settings

    with pytest.raises(HydraApiError) as caught:
        await VoiceClient(client).async_update_voice(**({"wake_threshold": 0.6} | changes))

    assert caught.value.status == 400
    assert caught.value.code == "invalid_setting"
    assert mentions in caught.value.message
    assert (await VoiceClient(client).async_voice()).settings == before
    assert service.wake.threshold == before.wake_threshold


async def test_malformed_body_is_a_clear_error(
    make_client: MakeClient, http: aiohttp.ClientSession
) -> None:
    client, _ = await make_client()

    async with http.put(
        f"{client.url}/api/v1/voice",
        data=b"[1, 2",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as response:
        body = await response.json()

    assert response.status == 400
    assert body["code"] == "invalid_body"


async def test_a_change_is_pushed_as_an_event(make_client: MakeClient) -> None:
    bus = EventBus()
    subscription = bus.subscribe()
    client, _ = await make_client(bus)

    await VoiceClient(client).async_update_voice(wake_threshold=0.35)

    event = await subscription.next(wait_s=2)
    assert event is not None
    assert event.type == EVENT_VOICE
    assert event.data["settings"]["wake_threshold"] == 0.35

    # The same value again changes nothing, so nothing is pushed (events are published before
    # the answer goes out).
    await VoiceClient(client).async_update_voice(wake_threshold=0.35)
    with pytest.raises(TimeoutError):
        await subscription.next(wait_s=0.05)


def test_unreadable_saved_settings_fall_back_to_the_options(tmp_path: Path) -> None:
    (tmp_path / SETTINGS_FILE).write_text("{not json")

    service = voice_service(tmp_path)

    assert service.settings == VoiceSettings(stt_model="tiny.en")
