"""A misheard command still runs Hydra's intent: Kokoro says "Pause autonomous work", Whisper
tiny.en on the worker hears "Paul's autonomous work", Hydra's speech-to-text hands Home Assistant
the sentence it was taken for, and the Assist pipeline's default agent pauses the worker's queue.
Real at every step: Home Assistant's Assist pipeline and wyoming integration, the worker's
Wyoming server with Whisper, and a second worker's task queue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
import re

from hassil import Intents, recognize
from homeassistant.components import stt
from homeassistant.components.assist_pipeline import (
    PipelineEvent,
    PipelineEventType,
    PipelineStage,
    async_pipeline_from_audio_stream,
)
from homeassistant.components.assist_pipeline.const import DOMAIN as PIPELINE_DOMAIN
from homeassistant.components.assist_pipeline.pipeline import async_create_default_pipeline
from homeassistant.core import Context, HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
import yaml

from hydra_core.voice.commands import SENTENCES_DIR, CommandMatcher
from hydra_core.voice.stt import SttEngine
from tests.voice.command_set import COMMANDS, NEGATIVES, PARAPHRASES, render
from tests.voice.weights import VoiceWeights

from .conftest import TaskWorker, VoiceWorker, entity_of, setup_entry, setup_wyoming


def test_the_matcher_decides_as_home_assistants_agent_does() -> None:
    """hassil (what the default agent matches with) and the matcher's exact match agree on
    every expansion of en.yaml and on the commands set: the sentence a transcript is rewritten
    to runs the intent the matcher chose, and speech it leaves alone runs none of Hydra's."""
    templates = yaml.safe_load((SENTENCES_DIR / "en.yaml").read_text(encoding="utf-8"))
    intents = Intents.from_dict(templates)
    matcher = CommandMatcher.from_sentences()
    texts = [re.sub(r"\{\w+\}", "solar batteries", sentence.text) for sentence in matcher.sentences]
    texts += [said.text for said in (*COMMANDS, *PARAPHRASES, *NEGATIVES)]
    for text in texts:
        hassil = recognize(text, intents)
        mine = matcher.exact(text)
        assert (hassil and hassil.intent.name) == (mine and mine.intent), text
        if hassil is not None and mine is not None:
            assert {name: slot.text for name, slot in hassil.entities.items()} == mine.slots


async def _stream(audio: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(audio), 2048):
        yield audio[start : start + 2048]


async def test_a_misheard_command_runs_hydras_intent(
    hass: HomeAssistant,
    voice_worker: VoiceWorker,
    task_worker: TaskWorker,
    tasks_entry: MockConfigEntry,
    voice_weights: VoiceWeights,
    voice_models_dir: Path,
) -> None:
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "conversation", {})
    assert await async_setup_component(hass, PIPELINE_DOMAIN, {})
    await setup_entry(hass, tasks_entry)
    voice = await setup_wyoming(hass, "Hydra voice", voice_worker.voice_port)
    pipeline = await async_create_default_pipeline(
        hass,
        stt_engine_id=entity_of(hass, voice, "stt"),
        tts_engine_id=entity_of(hass, voice, "tts"),
        pipeline_name="Hydra",
    )
    assert pipeline is not None
    assert voice_worker.voice is not None
    assert voice_worker.voice.stt.commands is not None
    # Without Hydra's prompt (off by default), tiny.en hears the issue's "Paul's autonomous
    # work"; with it, it would hear this one right.
    assert voice_worker.voice.stt.prompt is None
    audio = render(voice_weights, "Pause autonomous work.", "kokoro:jm_kumo")
    # What Whisper itself writes is not one of Hydra's sentences.
    whisper = SttEngine(voice_models_dir, model="tiny.en", offline=True)
    heard = await whisper.transcribe(audio)
    await whisper.close()
    assert voice_worker.voice.stt.commands.exact(heard) is None, heard

    events: list[PipelineEvent] = []
    await async_pipeline_from_audio_stream(
        hass,
        context=Context(),
        event_callback=events.append,
        stt_metadata=stt.SpeechMetadata(
            language="en",
            format=stt.AudioFormats.WAV,
            codec=stt.AudioCodecs.PCM,
            bit_rate=stt.AudioBitRates.BITRATE_16,
            sample_rate=stt.AudioSampleRates.SAMPLERATE_16000,
            channel=stt.AudioChannels.CHANNEL_MONO,
        ),
        stt_stream=_stream(audio),
        pipeline_id=pipeline.id,
        start_stage=PipelineStage.STT,
        end_stage=PipelineStage.INTENT,
    )

    by_type = {event.type: event.data for event in events}
    assert PipelineEventType.ERROR not in by_type, by_type.get(PipelineEventType.ERROR)
    assert by_type[PipelineEventType.STT_END]["stt_output"]["text"] == "pause autonomous work"
    response = by_type[PipelineEventType.INTENT_END]["intent_output"]["response"]
    assert response["speech"]["plain"]["speech"] == "Autonomous work is paused."
    assert task_worker.scheduler is not None
    assert task_worker.scheduler.settings.paused
