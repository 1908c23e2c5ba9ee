"""Home Assistant's own Wyoming integration connected to the Hydra voice satellite.

The satellite runs on 127.0.0.1 with the real wake word engine and a microphone file of synthetic
"Hey Jarvis, what time is it". Home Assistant's ``wyoming`` config entry points at it: an
``assist_satellite`` entity appears, and when the satellite hears the wake word Home Assistant
runs an Assist pipeline from speech-to-text with the satellite's audio. The pipeline itself is
replaced by a recorder (the full run with real speech-to-text and text-to-speech is another
test's): it takes the audio, reports a transcript, and ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.components.assist_pipeline import (
    PipelineEvent,
    PipelineEventType,
    PipelineStage,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from hydra_core.satellite import FileMic, SatelliteSettings, VoiceSatellite, WavFileSpeaker
from hydra_core.voice.wake import WakeEngine
from tests.voice.speech import Speech, write_wav

TIMEOUT_S = 20.0
MIC_AUDIO_BYTES_PER_S = 16000 * 2


@dataclass
class PipelineRecorder:
    """Stands in for Assist's pipeline: records how the satellite's entity started it."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray)
    ran: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(
        self,
        hass: HomeAssistant,
        *,
        event_callback: Any,
        stt_stream: AsyncIterable[bytes],
        wake_word_phrase: str | None = None,
        start_stage: PipelineStage = PipelineStage.STT,
        end_stage: PipelineStage = PipelineStage.TTS,
        **kwargs: Any,
    ) -> None:
        self.runs.append(
            {
                "wake_word_phrase": wake_word_phrase,
                "start_stage": start_stage,
                "end_stage": end_stage,
                "satellite_id": kwargs.get("satellite_id"),
                "device_id": kwargs.get("device_id"),
            }
        )
        event_callback(PipelineEvent(PipelineEventType.RUN_START, {}))
        event_callback(
            PipelineEvent(
                PipelineEventType.STT_START, {"engine": "test", "metadata": {"language": "en"}}
            )
        )
        # One second of the command, as speech-to-text would take it until the end of speech.
        async for chunk in stt_stream:
            self.audio += chunk
            if len(self.audio) >= MIC_AUDIO_BYTES_PER_S:
                break
        event_callback(PipelineEvent(PipelineEventType.STT_VAD_END, {"timestamp": 1000}))
        event_callback(
            PipelineEvent(PipelineEventType.STT_END, {"stt_output": {"text": "what time is it"}})
        )
        event_callback(PipelineEvent(PipelineEventType.RUN_END, {}))
        self.ran.set()


@pytest.fixture
async def satellite(tmp_path: Path) -> AsyncIterator[tuple[VoiceSatellite, list[tuple[str, Any]]]]:
    speech = Speech(tmp_path)
    mic = write_wav(tmp_path / "mic.wav", speech.clip("Hey Jarvis, what time is it"))
    sat = VoiceSatellite(
        SatelliteSettings(uri="tcp://127.0.0.1:0", name="Kitchen satellite", area="Kitchen"),
        engine=await asyncio.to_thread(WakeEngine),
        mic=FileMic(mic, speed=1.0),
        speaker=WavFileSpeaker(tmp_path / "reply.wav"),
    )
    notes: list[tuple[str, Any]] = []
    sat.listeners.append(lambda what, value: notes.append((what, value)))
    await asyncio.to_thread(sat.prepare)
    await sat.start()
    yield sat, notes
    await sat.stop()


async def _until(predicate: Any) -> None:
    async with asyncio.timeout(TIMEOUT_S):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_home_assistant_runs_a_pipeline_on_the_satellites_wake_word(
    hass: HomeAssistant, satellite: tuple[VoiceSatellite, list[tuple[str, Any]]]
) -> None:
    sat, notes = satellite
    address = sat.address
    assert address is not None
    recorder = PipelineRecorder()

    # Conversation (an Assist dependency) needs the core integration's exposed-entities store.
    assert await async_setup_component(hass, "homeassistant", {})
    entry = MockConfigEntry(
        domain="wyoming", data={"host": "127.0.0.1", "port": address[1]}, title="Kitchen"
    )
    entry.add_to_hass(hass)
    with patch(
        "homeassistant.components.assist_satellite.entity.async_pipeline_from_audio_stream",
        recorder,
    ):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()

        # A satellite device with its assist_satellite entity.
        [device] = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
        assert device.name == "Kitchen satellite"
        entities = er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        satellite_ids = [e.entity_id for e in entities if e.domain == "assist_satellite"]
        assert len(satellite_ids) == 1
        entity_id = satellite_ids[0]
        state = hass.states.get(entity_id)
        assert state is not None
        assert state.state == "idle"

        # Home Assistant told the satellite to run; the wake word starts a pipeline at STT.
        await _until(lambda: ("running", sat.active.id if sat.active else None) in notes)
        async with asyncio.timeout(TIMEOUT_S):
            await recorder.ran.wait()
        await hass.async_block_till_done()

        assert ("detection", "hey_jarvis") in notes
        [run] = recorder.runs
        assert run["wake_word_phrase"] == "Hey Jarvis"
        assert run["start_stage"] == PipelineStage.STT
        assert run["end_stage"] == PipelineStage.TTS
        assert run["satellite_id"] == entity_id
        assert run["device_id"] == device.id
        assert len(recorder.audio) >= MIC_AUDIO_BYTES_PER_S

        # The transcript Home Assistant sends back ends the command's audio on the satellite.
        await _until(lambda: ("streaming-stopped", "end of speech") in notes)
        state = hass.states.get(entity_id)
        assert state is not None
        assert state.state == "idle"

        # Unloading the entry pauses the satellite, which keeps serving.
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
        await _until(lambda: ("paused", None) in notes)
        assert sat.active is None
