"""A whole voice turn at the satellite: end of speech → first reply audio at its speaker.

Run: .venv/bin/python -m pytest benchmarks/voice_turn.py -s -q -p no:cacheprovider
     (HYDRA_BENCH_TURNS=N turns, default 10; HYDRA_BENCH_VAD=default|aggressive|relaxed: Home
     Assistant's "finished speaking detection" of the satellite, default "default" = 0.7 s;
     HYDRA_BENCH_PIECES=clear|keep: Hydra's text-to-speech forgets the pieces it said before
     each turn (default, a reply never said before) or keeps them, as it does in use, where a
     templated reply's opening has been said before)

Everything is real but NVML: the Hydra satellite (``VoiceSatellite`` with the real wake word
engine) hears a microphone that speaks in real time (80 ms chunks, paced by the clock) and plays
the reply into a WAV speaker; Home Assistant's own ``wyoming`` integration runs it and its
Assist pipeline; Hydra's worker (in-process, on loopback) gives speech-to-text (Whisper tiny.en),
the GPU-temperature intent (through the Hydra integration) and text-to-speech (Kokoro).

Each turn is "Hey Jarvis!", half a second's pause, then a command (Kokoro voices, rendered here
from the texts below; the end of the command's speech is known to the sample). Measured per
turn, from the moment the microphone delivered the last sample of speech:

* transcript: ``stt-end``, the command's end and its transcription: Hydra's speech-to-text ends
  a command itself after ``stt_end_of_speech`` of quiet (0.5 s by default) and answers then;
  where Home Assistant's own detector ended it first, its ``stt-vad-end`` is shown too;
* intent: ``intent-start`` → ``intent-end``;
* TTS first audio: ``intent-end`` → the first reply audio chunk at the satellite, split at the
  first ``audio-chunk`` out of Hydra's Wyoming server (a relay in front of it notes the time)
  into Hydra's text-to-speech and Home Assistant's part (its ffmpeg conversion to the
  satellite's 22 kHz and the relay to the satellite);
* the turn: end of speech → the first reply audio chunk at the satellite (goal ≤ 1.0 s,
  moonshot 0.6 s).

Home Assistant's text-to-speech cache is cleared before each turn (the reply is the same every
time, and a cached reply would not measure Hydra's text-to-speech); a first turn, not counted, loads
Whisper and Kokoro in the worker.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from datetime import datetime
import os
from pathlib import Path
import statistics
import time
from typing import Any

from homeassistant.components.assist_pipeline.const import DOMAIN as PIPELINE_DOMAIN
from homeassistant.components.assist_pipeline.pipeline import (
    KEY_ASSIST_PIPELINE,
    async_create_default_pipeline,
)
from homeassistant.components.assist_pipeline.vad import VadSensitivity
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
import pytest

from hydra_core.satellite import SatelliteSettings, VoiceSatellite, WavFileSpeaker
from hydra_core.satellite.audio import MIC_CHUNK_BYTES, MicEnded
from hydra_core.voice.wake import WakeEngine
from tests.fake_nvml import FakeNvml
from tests.integration.conftest import (
    VoiceWorker,
    entity_of,
    entry_for,
    setup_entry,
    setup_wyoming,
    voice_worker,
)
from tests.satellite.one_breath import trim
from tests.voice.weights import VoiceWeights, kokoro_say, voice_models_dir, voice_weights, words

__all__ = ["voice_models_dir", "voice_weights", "voice_worker"]

TURNS = int(os.environ.get("HYDRA_BENCH_TURNS", "10"))
VAD = VadSensitivity(os.environ.get("HYDRA_BENCH_VAD", VadSensitivity.DEFAULT.value))
PIECES = os.environ.get("HYDRA_BENCH_PIECES", "clear")
if PIECES not in ("clear", "keep"):
    raise ValueError(f"HYDRA_BENCH_PIECES must be clear or keep, not {PIECES!r}")
# (command, Kokoro voice): Hydra's GPU temperature intent, said several ways.
COMMANDS = (
    ("What's the GPU temperature?", "jf_alpha"),
    ("How hot are the graphics cards?", "jf_nezumi"),
    ("What's the temperature of the GPUs?", "jm_kumo"),
)
GOAL_S = 1.0
MOONSHOT_S = 0.6
_BYTES_PER_S = 32000
_CHUNK_S = MIC_CHUNK_BYTES / _BYTES_PER_S


class TimingProxy:
    """A loopback TCP relay in front of Hydra's Wyoming server that notes when audio comes out.

    Home Assistant's wyoming entries talk to the relay; it forwards bytes both ways untouched
    and records the wall-clock time of every ``audio-chunk`` event header the server sends (only
    text-to-speech sends audio that way), so the reply's first audio can be timed at Hydra's door
    as well as at the satellite.
    """

    _MARK = b'"type": "audio-chunk"'

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.audio_out: list[float] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        await asyncio.gather(
            self._pipe(reader, up_writer, watch=False),
            self._pipe(up_reader, writer, watch=True),
            return_exceptions=True,
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, watch: bool
    ) -> None:
        tail = b""
        try:
            while data := await reader.read(65536):
                if watch:
                    seen = tail + data
                    if self._MARK in seen:
                        self.audio_out.extend([time.time()] * seen.count(self._MARK))
                    tail = seen[-len(self._MARK) :]
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()


class ScriptedMic:
    """A microphone in a quiet room that says what it is given, in real time.

    ``say`` queues speech; ``read_chunk`` delivers 80 ms at the pace of the clock (silence when
    nothing is queued) and notes the wall-clock time at which the last sample of each utterance
    was delivered: the end of speech, as the satellite's microphone would have heard it.
    """

    label = "scripted microphone"

    def __init__(self) -> None:
        self._audio = bytearray()
        self._ends: deque[tuple[int, asyncio.Future[float]]] = deque()  # (byte offset, end)
        self._delivered = 0  # bytes since the start
        self._t0: float | None = None
        self.closed = False

    def say(self, speech: bytes, then_quiet_s: float = 0.0) -> asyncio.Future[float]:
        """Queue ``speech``; the future gets the wall-clock time its last sample was delivered."""
        end = asyncio.get_running_loop().create_future()
        start = self._delivered + len(self._audio)
        self._audio += speech
        self._ends.append((start + len(speech), end))
        self._audio += bytes(round(then_quiet_s * 16000) * 2)
        return end

    async def open(self) -> None:
        if self._t0 is None:
            self._t0 = time.monotonic()

    async def read_chunk(self) -> bytes:
        if self.closed:
            raise MicEnded("closed", restartable=False)
        assert self._t0 is not None
        due = self._t0 + (self._delivered + MIC_CHUNK_BYTES) / _BYTES_PER_S
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        chunk = bytes(self._audio[:MIC_CHUNK_BYTES])
        del self._audio[:MIC_CHUNK_BYTES]
        chunk += bytes(MIC_CHUNK_BYTES - len(chunk))
        self._delivered += MIC_CHUNK_BYTES
        now = time.time()
        while self._ends and self._ends[0][0] <= self._delivered:
            offset, future = self._ends.popleft()
            if not future.done():
                future.set_result(now - (self._delivered - offset) / _BYTES_PER_S)
        return chunk

    async def pause(self) -> None:
        return

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
async def rig(
    tmp_path: Path,
) -> AsyncIterator[tuple[VoiceSatellite, ScriptedMic, list[tuple[str, float]]]]:
    mic = ScriptedMic()
    satellite = VoiceSatellite(
        SatelliteSettings(uri="tcp://127.0.0.1:0", name="Bench satellite"),
        engine=await asyncio.to_thread(WakeEngine),
        mic=mic,
        speaker=WavFileSpeaker(tmp_path / "reply.wav"),
    )
    notes: list[tuple[str, float]] = []
    satellite.listeners.append(lambda what, _: notes.append((what, time.time())))
    await asyncio.to_thread(satellite.prepare)
    await satellite.start()
    yield satellite, mic, notes
    await satellite.stop()


def _wall(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _next_note(notes: list[tuple[str, float]], what: str, after: int) -> float:
    async with asyncio.timeout(60):
        while True:
            for name, at in notes[after:]:
                if name == what:
                    return at
            await asyncio.sleep(0.01)


async def _set_up(
    hass: HomeAssistant, voice_worker: VoiceWorker, satellite: VoiceSatellite, proxy: TimingProxy
) -> str:
    """Hydra, its voice services (through the relay), a pipeline with them, the satellite with
    the finished-speaking detection asked for; returns the pipeline's id."""
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "conversation", {})
    assert await async_setup_component(hass, PIPELINE_DOMAIN, {})
    await setup_entry(hass, entry_for(voice_worker))
    voice = await setup_wyoming(hass, "Hydra voice", await proxy.start())
    pipeline = await async_create_default_pipeline(
        hass,
        stt_engine_id=entity_of(hass, voice, "stt"),
        tts_engine_id=entity_of(hass, voice, "tts"),
        pipeline_name="Hydra",
    )
    assert pipeline is not None
    hass.data[KEY_ASSIST_PIPELINE].pipeline_store.async_set_preferred_item(pipeline.id)
    address = satellite.address
    assert address is not None
    desk = await setup_wyoming(hass, "Desk", address[1])
    # Home Assistant's "finished speaking detection" for this satellite (a select entity).
    [vad_select] = [
        entity.entity_id
        for entity in er.async_entries_for_config_entry(er.async_get(hass), desk.entry_id)
        if entity.unique_id.endswith("-vad_sensitivity")
    ]
    await hass.services.async_call(
        "select", "select_option", {"entity_id": vad_select, "option": VAD.value}, blocking=True
    )
    await asyncio.sleep(1.0)  # Home Assistant runs the satellite
    return pipeline.id


async def test_voice_turn_at_the_satellite(
    hass: HomeAssistant,
    voice_worker: VoiceWorker,
    voice_weights: VoiceWeights,
    nvml: FakeNvml,
    rig: tuple[VoiceSatellite, ScriptedMic, list[tuple[str, float]]],
) -> None:
    satellite, mic, notes = rig

    def render() -> tuple[dict[str, bytes], dict[str, bytes]]:
        wake = {v: trim(kokoro_say(voice_weights, "Hey Jarvis!", v)) for _, v in COMMANDS}
        said = {text: trim(kokoro_say(voice_weights, text, voice)) for text, voice in COMMANDS}
        return wake, said

    # Before Home Assistant runs the satellite, and off its event loop.
    wake, said = await asyncio.to_thread(render)
    proxy = TimingProxy(voice_worker.voice_port)
    pipeline_id = await _set_up(hass, voice_worker, satellite, proxy)

    stages: dict[str, list[float]] = {
        "end of speech → transcript (the command's end, then STT)": [],
        "end of speech → Home Assistant's VAD end (turns it ended)": [],
        "intent": [],
        "intent end → first reply audio (TTS first audio)": [],
        "tts-start → first audio out of Hydra's Wyoming server": [],
        "Hydra's first audio → first reply audio at the satellite (Home Assistant)": [],
        "end of speech → first reply audio at the satellite": [],
    }
    understood = ended_by_hydra = 0
    runs = hass.data[KEY_ASSIST_PIPELINE].pipeline_debug
    for turn in range(-1, TURNS):  # turn -1 warms the worker's models up: not counted
        text, voice = COMMANDS[turn % len(COMMANDS)]
        # Home Assistant keeps spoken replies: without this every reply after the first would
        # come from its cache, not from Hydra's text-to-speech.
        await hass.services.async_call("tts", "clear_cache", {}, blocking=True)
        if PIECES == "clear":
            voice_worker.voice.tts._clear_cache()
        seen = len(notes)
        proxy.audio_out.clear()
        mic.say(wake[voice], then_quiet_s=0.5)
        end_of_speech = await mic.say(said[text], then_quiet_s=0.0)
        first_audio = await _next_note(notes, "reply-audio", seen)
        await _next_note(notes, "played", seen)
        run = list(runs[pipeline_id].values())[-1]
        events: dict[str, Any] = {event.type: event for event in run.events}
        stamp = {name: _wall(event.timestamp) for name, event in events.items()}
        transcript = events["stt-end"].data["stt_output"]["text"]
        answer = events["intent-end"].data["intent_output"]["response"]["speech"]["plain"]
        print(
            f"turn {turn + 1 or 'warm-up'}: {transcript!r} → {answer['speech'][:60]!r}: "
            f"{(first_audio - end_of_speech) * 1000:.0f} ms"
        )
        if turn < 0:
            await asyncio.sleep(2.5)
            continue
        understood += words(transcript) == words(text)
        stages["end of speech → transcript (the command's end, then STT)"].append(
            stamp["stt-end"] - end_of_speech
        )
        # Hydra's server ends a command itself after stt_end_of_speech of quiet (the default):
        # then Home Assistant's detector has not ended it and there is no stt-vad-end.
        if "stt-vad-end" in stamp:
            stages["end of speech → Home Assistant's VAD end (turns it ended)"].append(
                stamp["stt-vad-end"] - end_of_speech
            )
        else:
            ended_by_hydra += 1
        stages["intent"].append(stamp["intent-end"] - stamp["intent-start"])
        stages["intent end → first reply audio (TTS first audio)"].append(
            first_audio - stamp["intent-end"]
        )
        hydra_audio = min(proxy.audio_out)
        stages["tts-start → first audio out of Hydra's Wyoming server"].append(
            hydra_audio - stamp["tts-start"]
        )
        stages["Hydra's first audio → first reply audio at the satellite (Home Assistant)"].append(
            first_audio - hydra_audio
        )
        stages["end of speech → first reply audio at the satellite"].append(
            first_audio - end_of_speech
        )
        await asyncio.sleep(2.5)  # past Home Assistant's wake word cool-down (2 s)

    print(
        f"\nVoice turn at the satellite, {TURNS} turns, Home Assistant finished-speaking "
        f"detection {VAD.value!r} ({VadSensitivity.to_seconds(VAD)} s of silence), "
        f"Hydra's piece cache {PIECES!r}, {understood}/{TURNS} transcripts word for word, "
        f"{ended_by_hydra}/{TURNS} commands ended by Hydra's speech-to-text:"
    )
    for name, values in stages.items():
        if not values:
            continue
        p50, p95 = statistics.median(values), _p(values, 0.95)
        goal = (
            f"  (goal ≤ {GOAL_S:.1f} s, moonshot {MOONSHOT_S:.1f} s)"
            if name.startswith("end of speech → first")
            else ""
        )
        print(f"  {name}: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms{goal}")
    assert len(stages["intent"]) == TURNS
    await proxy.stop()
