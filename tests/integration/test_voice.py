"""Hydra's voice services in a real Home Assistant: HA's own wyoming integration is the client.

The worker's Wyoming server runs on loopback with real models (Whisper tiny.en, Kokoro-82M int8,
openWakeWord's "Hey Jarvis"); Home Assistant reaches it the way a user's does: through a wyoming
config entry made by hand, by the add-on's Supervisor discovery, or by zeroconf.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import io
from ipaddress import ip_address
import wave

from homeassistant.components import stt, tts, wake_word
from homeassistant.components.wyoming.const import DOMAIN as WYOMING_DOMAIN
from homeassistant.config_entries import SOURCE_HASSIO, SOURCE_ZEROCONF
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from homeassistant.setup import async_setup_component
import numpy as np
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.hydra.parts.voice import async_update_voice
from hydra_core.voice.announce import service_info
from tests.voice.weights import SPEAKER, VoiceWeights, kokoro_say, words

from .conftest import WORKER_ID, VoiceWorker, entity_of, entry_for, setup_entry, setup_wyoming

SILENCE = bytes(16000 * 2)


@pytest.fixture(autouse=True)
async def assist_base(hass: HomeAssistant) -> None:
    """What a real instance has before wyoming loads: the core integration (entity exposure)."""
    assert await async_setup_component(hass, "homeassistant", {})


@pytest.fixture
async def wyoming_entry(hass: HomeAssistant, voice_worker: VoiceWorker) -> MockConfigEntry:
    """HA's wyoming integration set up against Hydra's server."""
    return await setup_wyoming(hass, "Hydra voice", voice_worker.voice_port)


async def test_wyoming_gives_home_assistant_wake_stt_and_tts(
    hass: HomeAssistant, wyoming_entry: MockConfigEntry
) -> None:
    for platform in ("wake_word", "stt", "tts"):
        assert hass.states.get(entity_of(hass, wyoming_entry, platform)) is not None

    wake = wake_word.async_get_wake_word_detection_entity(
        hass, entity_of(hass, wyoming_entry, "wake_word")
    )
    assert wake is not None
    offered = {word.id: word.name for word in await wake.get_supported_wake_words()}
    assert offered["hey_jarvis"] == "Hey Jarvis"


async def _microphone(audio: bytes) -> AsyncIterator[tuple[bytes, int]]:
    """Like a microphone: the audio, then quiet that goes on (paced, as a real stream is) for a
    few seconds, since Home Assistant stops listening for the answer when the stream ends."""
    quiet = bytes(2560)
    chunks = [audio[start : start + 2560] for start in range(0, len(audio), 2560)]
    for index, chunk in enumerate([*chunks, *[quiet] * 50]):
        yield chunk, index * 80
        if index >= len(chunks):
            await asyncio.sleep(0.08)


async def test_home_assistant_hears_the_wake_word(
    hass: HomeAssistant, wyoming_entry: MockConfigEntry, voice_weights: VoiceWeights
) -> None:
    wake = wake_word.async_get_wake_word_detection_entity(
        hass, entity_of(hass, wyoming_entry, "wake_word")
    )
    assert wake is not None
    spoken = SILENCE + kokoro_say(voice_weights, "Hey Jarvis!") + SILENCE
    unrelated = SILENCE + kokoro_say(voice_weights, "The backup is done.") + SILENCE

    heard = await wake.async_process_audio_stream(_microphone(spoken), "hey_jarvis")
    missed = await wake.async_process_audio_stream(_microphone(unrelated), "hey_jarvis")

    assert heard is not None
    assert heard.wake_word_id == "hey_jarvis"
    assert heard.wake_word_phrase == "Hey Jarvis"
    assert missed is None


async def test_home_assistant_transcribes_through_its_stt_api(
    hass: HomeAssistant,
    wyoming_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    command_speech: bytes,
) -> None:
    client = await hass_client()
    entity_id = entity_of(hass, wyoming_entry, "stt")

    response = await client.post(
        f"/api/stt/{entity_id}",
        headers={
            "X-Speech-Content": "format=wav; codec=pcm; sample_rate=16000; bit_rate=16; "
            "channel=1; language=en"
        },
        data=command_speech,
    )

    assert response.status == 200
    body = await response.json()
    assert body["result"] == stt.SpeechResultState.SUCCESS
    assert words(body["text"]) == words("What's the GPU temperature?")


async def test_home_assistant_speaks_through_its_tts_api(
    hass: HomeAssistant, wyoming_entry: MockConfigEntry
) -> None:
    entity_id = entity_of(hass, wyoming_entry, "tts")
    media_id = tts.generate_media_source_id(
        hass,
        "Both GPUs are cool.",
        engine=entity_id,
        language="en-us",
        options={"voice": SPEAKER, tts.ATTR_PREFERRED_FORMAT: "wav"},
    )

    extension, data = await tts.async_get_media_source_audio(hass, media_id)

    assert extension == "wav"
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (24000, 2, 1)
    # Streamed WAV: the header says 0 frames (not known up front) and the audio runs to the end.
    samples = np.frombuffer(data[data.index(b"data") + 8 :], dtype="<i2")
    assert len(samples) > 24000 * 0.5
    assert np.abs(samples).max() > 3000


async def test_addon_discovery_sets_up_hydras_voice(
    hass: HomeAssistant, voice_worker: VoiceWorker
) -> None:
    # What addon/run.sh announces through the Supervisor.
    result = await hass.config_entries.flow.async_init(
        WYOMING_DOMAIN,
        context={"source": SOURCE_HASSIO},
        data=HassioServiceInfo(
            config={"uri": f"tcp://127.0.0.1:{voice_worker.voice_port}"},
            name="Hydra worker",
            slug="hydra",
            uuid="1234",
        ),
    )
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input={})

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {"host": "127.0.0.1", "port": voice_worker.voice_port}


async def test_zeroconf_discovery_sets_up_hydras_voice(
    hass: HomeAssistant, voice_worker: VoiceWorker
) -> None:
    # The record the worker announces, as Home Assistant's zeroconf hands it to the integration.
    record = service_info("gpubox", voice_worker.voice_port, ["127.0.0.1"])
    result = await hass.config_entries.flow.async_init(
        WYOMING_DOMAIN,
        context={"source": SOURCE_ZEROCONF},
        data=ZeroconfServiceInfo(
            ip_address=ip_address(record.parsed_addresses()[0]),
            ip_addresses=[ip_address(address) for address in record.parsed_addresses()],
            port=record.port,
            hostname=str(record.server),
            type=record.type,
            name=record.name,
            properties={},
        ),
    )
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input={})

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {"host": "127.0.0.1", "port": voice_worker.voice_port}
    assert record.type == "_wyoming._tcp.local."


async def test_voice_settings_are_entities_on_the_worker(
    hass: HomeAssistant, voice_worker: VoiceWorker
) -> None:
    await setup_entry(hass, entry_for(voice_worker))
    registry = er.async_get(hass)
    threshold = registry.async_get_entity_id("number", "hydra", f"{WORKER_ID}_wake_threshold")
    model = registry.async_get_entity_id("select", "hydra", f"{WORKER_ID}_stt_model")
    voice = registry.async_get_entity_id("select", "hydra", f"{WORKER_ID}_tts_voice")
    assert threshold is not None
    assert model is not None
    assert voice is not None
    assert hass.states.get(threshold).state == "0.5"
    assert hass.states.get(model).state == "tiny.en"
    # Offline, only installed models can be chosen; every installed voice can.
    assert hass.states.get(model).attributes["options"] == ["tiny.en"]
    assert SPEAKER in hass.states.get(voice).attributes["options"]
    assert "jm_kumo" in hass.states.get(voice).attributes["options"]
    # Both models are on the worker's disk: nothing to download.
    for download, model in (
        ("stt_model_download", "tiny.en"),
        ("tts_model_download", "kokoro-v1.0.int8"),
    ):
        update = registry.async_get_entity_id("update", "hydra", f"{WORKER_ID}_{download}")
        assert update is not None
        state = hass.states.get(update)
        assert state.state == "off"
        assert state.attributes["installed_version"] == model
        assert state.attributes["in_progress"] is False

    await hass.services.async_call(
        "number", "set_value", {ATTR_ENTITY_ID: threshold, "value": 0.7}, blocking=True
    )
    await hass.services.async_call(
        "select", "select_option", {ATTR_ENTITY_ID: voice, "option": "jm_kumo"}, blocking=True
    )

    assert voice_worker.voice is not None
    assert voice_worker.voice.wake.threshold == 0.7
    assert voice_worker.voice.tts.voice == "jm_kumo"
    assert hass.states.get(threshold).state == "0.7"
    assert hass.states.get(voice).state == "jm_kumo"


async def test_a_refused_or_failed_voice_setting_is_a_clear_error(
    hass: HomeAssistant, voice_worker: VoiceWorker
) -> None:
    entry = entry_for(voice_worker)
    await setup_entry(hass, entry)
    voice = entry.runtime_data.parts["voice"]
    assert voice is not None

    # What an automation or another client could ask for, which the worker checks itself.
    with pytest.raises(ServiceValidationError) as refused:
        await async_update_voice(voice, wake_threshold=5)
    assert refused.value.translation_key == "invalid_setting"
    assert "wake_threshold" in str(refused.value.translation_placeholders)

    await voice_worker.stop()
    threshold = er.async_get(hass).async_get_entity_id(
        "number", "hydra", f"{WORKER_ID}_wake_threshold"
    )
    with pytest.raises(HomeAssistantError) as failed:
        await hass.services.async_call(
            "number", "set_value", {ATTR_ENTITY_ID: threshold, "value": 0.6}, blocking=True
        )
    assert failed.value.translation_key == "cannot_connect"
