"""One whole voice turn, real at every step, with the latency of each stage.

Kokoro says "Hey Jarvis, what's the GPU temperature?" into the satellite's microphone (a file
read in real time) → the satellite's wake word fires → Home Assistant's wyoming satellite entity
streams the command into an Assist pipeline → Hydra's speech-to-text (Whisper tiny.en on the
worker's Wyoming server) → Hydra's intent answers from the worker's live GPU readings (the fake
NVML, in °F for a US-customary Home Assistant) → Hydra's text-to-speech (Kokoro) → the reply
plays on the satellite's speaker (a WAV file). Nothing is stubbed but NVML.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from difflib import SequenceMatcher
from pathlib import Path
import re
import time
from typing import Any
import wave

from homeassistant.components.assist_pipeline.const import DOMAIN as PIPELINE_DOMAIN
from homeassistant.components.assist_pipeline.pipeline import (
    KEY_ASSIST_PIPELINE,
    async_create_default_pipeline,
)
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util.unit_system import US_CUSTOMARY_SYSTEM
import numpy as np
import pytest
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from hydra_core.satellite import FileMic, SatelliteSettings, VoiceSatellite, WavFileSpeaker
from hydra_core.voice.stt import SttEngine
from hydra_core.voice.wake import WakeEngine
from tests.fake_nvml import FakeNvml
from tests.voice.speech import write_wav
from tests.voice.weights import VoiceWeights, kokoro_say, pcm16, resample, words

from .conftest import VoiceWorker, entity_of, entry_for, setup_entry, setup_wyoming
from .dashboard_strategy import generated_dashboard

TURN_TIMEOUT_S = 90
QUIET = bytes(16000 * 2)  # a second of silence


class TimedMic(FileMic):
    """The microphone file, noting when the end of the question left it (real-time reads)."""

    def __init__(self, path: Path, speech_end_bytes: int) -> None:
        super().__init__(path, speed=1.0)
        self._speech_end_bytes = speech_end_bytes
        self._read = 0
        self.speech_ended: float | None = None  # time.monotonic()

    async def read_chunk(self) -> bytes:
        chunk = await super().read_chunk()
        self._read += len(chunk)
        if self.speech_ended is None and self._read >= self._speech_end_bytes:
            late = (self._read - self._speech_end_bytes) / (16000 * 2)
            self.speech_ended = time.monotonic() - late
        return chunk


@pytest.fixture
def mic(tmp_path: Path, voice_weights: VoiceWeights) -> TimedMic:
    """What the satellite's microphone hears: the wake word, the short pause people make after
    it (the satellite streams what follows the detection), the question, then a quiet room."""
    pause = bytes(16000)  # half a second
    speech = (
        kokoro_say(voice_weights, "Hey Jarvis!")
        + pause
        + kokoro_say(voice_weights, "What's the GPU temperature?")
    )
    path = write_wav(tmp_path / "mic.wav", QUIET + speech + QUIET * 6)
    return TimedMic(path, len(QUIET + speech))


@pytest.fixture
async def satellite(tmp_path: Path, mic: TimedMic) -> AsyncIterator[VoiceSatellite]:
    sat = VoiceSatellite(
        SatelliteSettings(uri="tcp://127.0.0.1:0", name="Desk satellite"),
        engine=await asyncio.to_thread(WakeEngine),
        mic=mic,
        speaker=WavFileSpeaker(tmp_path / "reply.wav"),
    )
    await asyncio.to_thread(sat.prepare)
    await sat.start()
    yield sat
    await sat.stop()


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _heard(word: str, heard: list[str]) -> bool:
    """Whether ``word`` was heard, allowing a small slip (an ending dropped) or a name run
    together ("a100sxm4" for "A100-SXM4")."""
    return word in "".join(heard) or any(
        SequenceMatcher(None, word, other).ratio() >= 0.75 for other in heard
    )


def reply_matches(answer: str, heard: str) -> list[str]:
    """What of ``answer`` is missing from ``heard`` (empty: the reply said it).

    Whisper slips on small words and writes units its own way ("142 degrees air" for
    "142 °F"), so every number must be heard exactly and most of the longer words (3 letters
    or more) closely: a reply with other numbers or other words fails.
    """
    said, got = words(answer), words(heard)
    numbers_heard = re.findall(r"\d+", heard)  # "4090s" says 4090
    missing = [word for word in said if word.isdigit() and word not in numbers_heard]
    longer = [word for word in said if len(word) >= 3 and not word.isdigit()]
    unheard = [word for word in longer if not _heard(word, got)]
    if len(unheard) > len(longer) // 4:
        missing += unheard
    return missing


def test_reply_matching_refuses_another_reply() -> None:
    """The comparison the turn relies on tells a wrong reply from Whisper's slips."""
    answer = "RTX 4090 is at 142 °F and A100-SXM4-80GB is at 118 °F."
    heard = "RTX 4090 is at 142 degrees air. An A100SXM4-80GB is at 118 degrees air."
    assert reply_matches(answer, heard) == []
    also_heard = "RTX 4090s at 142 degrees f and A100s exam for dash 80GB is at 118 degrees f."
    assert reply_matches(answer, also_heard) == []
    assert reply_matches(answer, heard.replace("142", "124")) == ["142"]
    assert reply_matches(answer, "The queue has three tasks waiting at 142 and 118.") != []


async def test_hey_jarvis_whats_the_gpu_temperature(
    hass: HomeAssistant,
    voice_worker: VoiceWorker,
    satellite: VoiceSatellite,
    mic: TimedMic,
    nvml: FakeNvml,
    tmp_path: Path,
    hass_ws_client: WebSocketGenerator,
) -> None:
    hass.config.units = US_CUSTOMARY_SYSTEM
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "conversation", {})
    assert await async_setup_component(hass, PIPELINE_DOMAIN, {})
    # Hydra (for the answer), Hydra's voice services, and the satellite, each as a user adds them.
    await setup_entry(hass, entry_for(voice_worker))
    voice = await setup_wyoming(hass, "Hydra voice", voice_worker.voice_port)
    pipeline = await async_create_default_pipeline(
        hass,
        stt_engine_id=entity_of(hass, voice, "stt"),
        tts_engine_id=entity_of(hass, voice, "tts"),
        pipeline_name="Hydra",
    )
    assert pipeline is not None
    hass.data[KEY_ASSIST_PIPELINE].pipeline_store.async_set_preferred_item(pipeline.id)
    heard: dict[str, float] = {}
    satellite.listeners.append(lambda what, _: heard.setdefault(what, time.monotonic()))
    started = time.monotonic()
    address = satellite.address
    assert address is not None
    await setup_wyoming(hass, "Desk", address[1])

    async with asyncio.timeout(TURN_TIMEOUT_S):
        while "played" not in heard:
            await asyncio.sleep(0.05)

    runs = hass.data[KEY_ASSIST_PIPELINE].pipeline_debug[pipeline.id]
    [run] = runs.values()
    events: dict[str, Any] = {event.type: event for event in run.events}
    transcript = events["stt-end"].data["stt_output"]["text"]
    answer = events["intent-end"].data["intent_output"]["response"]["speech"]["plain"]["speech"]
    # The fake NVML's GPUs are at 61 °C and 48 °C: 142 °F and 118 °F for this user.
    temperatures = [gpu.temperature for gpu in nvml.gpus]
    assert words(transcript) == words("What's the GPU temperature?")
    for celsius in temperatures:
        assert f"{round(celsius * 9 / 5 + 32)} °F" in answer
    with wave.open(str(tmp_path / "reply.wav")) as wav:
        reply = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        reply_rate = wav.getframerate()
    reply_s = len(reply) / reply_rate
    assert reply_s > 1.0
    # What the satellite's speaker said, transcribed back: the answer, not just sound.
    stt = SttEngine(voice_worker.models_dir, offline=True)
    try:
        spoken = await stt.transcribe(
            pcm16(resample(reply.astype(np.float32) / 32768.0, reply_rate, 16000))
        )
    finally:
        await stt.close()
    assert reply_matches(answer, spoken) == [], (answer, spoken)

    stamp = {name: event.timestamp for name, event in events.items()}
    # The end of the question as it left the microphone: Hydra's server may end the command
    # before Home Assistant's end-of-speech detection does (then there is no stt-vad-end).
    assert mic.speech_ended is not None
    speech_end = mic.speech_ended - time.monotonic() + time.time()
    transcript_at = datetime.fromisoformat(stamp["stt-end"]).timestamp()
    stages = {
        "wake word (mic start → detection, incl. 1 s of quiet and the phrase)": heard["detection"]
        - started,
        "end of speech → transcript": transcript_at - speech_end,
        "intent": _seconds(stamp["intent-start"], stamp["intent-end"]),
        "tts start → tts end (stream ready)": _seconds(stamp["tts-start"], stamp["tts-end"]),
    }
    if "stt-vad-end" in stamp:
        stages["end of speech → Home Assistant's end-of-speech event"] = (
            datetime.fromisoformat(stamp["stt-vad-end"]).timestamp() - speech_end
        )
    stages["end of speech → first reply audio at the satellite"] = (
        heard["reply-audio"] - mic.speech_ended
    )
    report = "\n".join(f"  {name}: {seconds * 1000:.0f} ms" for name, seconds in stages.items())
    print(f"\nVoice turn, {transcript!r} → {answer!r} ({reply_s:.1f} s of reply):\n{report}")

    # The Hydra dashboard's Voice view leads an administrator to this turn: Home Assistant's
    # Debug page of the assistant that ran it (the preferred one first) lists the run.
    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": "assist_pipeline/pipeline/list"})
    answers = {"assist_pipeline/pipeline/list": (await client.receive_json())["result"]}
    dashboard = await generated_dashboard(hass, answers=answers)
    [voice_view] = [view for view in dashboard["views"] if view["path"] == "voice"]
    [turns] = [card for card in voice_view["cards"] if card.get("title") == "Recent voice turns"]
    first = turns["entities"][0]
    assert (first["name"], first["action_name"]) == ("Hydra", "Last turns")
    page = first["tap_action"]["navigation_path"]
    assert page == f"/config/voice-assistants/debug/{pipeline.id}"
    await client.send_json_auto_id(
        {"type": "assist_pipeline/pipeline_debug/list", "pipeline_id": page.rpartition("/")[2]}
    )
    listed = (await client.receive_json())["result"]["pipeline_runs"]
    assert [run["pipeline_run_id"] for run in listed] == list(runs)
    # Others may not open the Debug page: the card is left out, the settings stay.
    others = await generated_dashboard(hass, answers=answers, admin=False)
    [their_voice] = [view for view in others["views"] if view["path"] == "voice"]
    assert [card.get("title") for card in their_voice["cards"]] == [
        card.get("title") for card in voice_view["cards"] if card is not turns
    ]
