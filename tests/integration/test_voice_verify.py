"""The wake word verification from Home Assistant: its mode (a select) and threshold (a number)."""

from __future__ import annotations

from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er
import pytest

from custom_components.hydra.parts.voice import async_update_voice

from .conftest import WORKER_ID, VoiceWorker, entry_for, setup_entry


async def test_wake_verification_mode_and_threshold_are_entities_on_the_worker(
    hass: HomeAssistant, voice_worker: VoiceWorker
) -> None:
    await setup_entry(hass, entry_for(voice_worker))
    registry = er.async_get(hass)
    mode = registry.async_get_entity_id("select", "hydra", f"{WORKER_ID}_wake_verify")
    threshold = registry.async_get_entity_id(
        "number", "hydra", f"{WORKER_ID}_wake_verify_threshold"
    )
    assert mode is not None
    assert threshold is not None
    assert hass.states.get(mode).state == "whisper"
    assert hass.states.get(mode).attributes["options"] == ["off", "whisper"]
    assert hass.states.get(threshold).state == "0.5"
    assert voice_worker.voice is not None
    assert voice_worker.voice.wake.verifier is not None

    await hass.services.async_call(
        "number", "set_value", {ATTR_ENTITY_ID: threshold, "value": 0.7}, blocking=True
    )
    await hass.services.async_call(
        "select", "select_option", {ATTR_ENTITY_ID: mode, "option": "off"}, blocking=True
    )

    # The worker's engine announces every firing now; the threshold waits for the next "whisper".
    assert voice_worker.voice.wake.verifier is None
    assert voice_worker.voice.settings.wake_verify_threshold == 0.7
    assert hass.states.get(mode).state == "off"
    assert hass.states.get(threshold).state == "0.7"

    await hass.services.async_call(
        "select", "select_option", {ATTR_ENTITY_ID: mode, "option": "whisper"}, blocking=True
    )
    verifier = voice_worker.voice.wake.verifier
    assert verifier is not None
    assert verifier.threshold == 0.7


async def test_an_unknown_verification_mode_is_refused_by_the_worker(
    hass: HomeAssistant, voice_worker: VoiceWorker
) -> None:
    entry = entry_for(voice_worker)
    await setup_entry(hass, entry)
    voice = entry.runtime_data.parts["voice"]
    assert voice is not None

    with pytest.raises(ServiceValidationError) as refused:
        await async_update_voice(voice, wake_verify="always")
    assert "wake_verify" in str(refused.value.translation_placeholders)
    with pytest.raises(ServiceValidationError) as refused:
        await async_update_voice(voice, wake_verify_threshold=1.5)
    assert "wake_verify_threshold" in str(refused.value.translation_placeholders)
    assert voice_worker.voice is not None
    assert voice_worker.voice.wake.verifier is not None
