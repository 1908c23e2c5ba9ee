"""Pre-roll: a command said straight after "Hey Jarvis" reaches Home Assistant whole.

The satellite reads a one-breath clip (tests/satellite/one_breath.py, Kokoro voices) through the
real wake word engine; a Wyoming client plays Home Assistant's part and keeps the command audio
it is sent; Hydra's speech-to-text (Whisper tiny.en) transcribes it, as Home Assistant's pipeline
would have it transcribed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.satellite import RunSatellite
from wyoming.wake import Detection

from hydra_core.satellite import FileMic, SatelliteSettings, VoiceSatellite
from hydra_core.voice.stt import SttEngine
from tests.satellite.one_breath import OneBreath, join
from tests.voice.speech import write_wav
from tests.voice.weights import VoiceWeights, kokoro_say, voice_models_dir, voice_weights, words

__all__ = ["voice_models_dir", "voice_weights"]

pytestmark = pytest.mark.usefixtures("loopback_sockets")
TIMEOUT_S = 30.0


def kokoro_one_breath(
    weights: VoiceWeights, command: str, voice: str, pause_s: float = 0.0
) -> OneBreath:
    wake = kokoro_say(weights, "Hey Jarvis", voice)
    said = kokoro_say(weights, command, voice)
    clip = join(f"kokoro {voice}", command, wake, said)
    if not pause_s:
        return clip
    at = clip.wake_end_ms * 32
    pause = bytes(round(pause_s * 16000) * 2)
    return OneBreath(clip.name, command, clip.audio[:at] + pause + clip.audio[at:], at // 32)


@pytest.fixture(scope="module")
def engine() -> Any:
    from hydra_core.voice.wake import WakeEngine  # noqa: PLC0415

    return WakeEngine()


async def command_heard(
    engine: Any, clip: OneBreath, tmp_path: Path, *, pre_roll_s: float = 2.0
) -> tuple[bytes, list[Event]]:
    """The command audio the satellite sends for ``clip``, and the events that framed it."""
    satellite = VoiceSatellite(
        SatelliteSettings(uri="tcp://127.0.0.1:0", name="Desk", pre_roll_s=pre_roll_s),
        engine=engine,
        mic=FileMic(write_wav(tmp_path / "mic.wav", clip.audio), speed=0),
    )
    await satellite.start()
    try:
        address = satellite.address
        assert address is not None
        client = AsyncTcpClient(*address)
        await client.connect()
        await client.write_event(RunSatellite().event())
        audio = bytearray()
        framing: list[Event] = []
        async with asyncio.timeout(TIMEOUT_S):
            while True:
                event = await client.read_event()
                assert event is not None, "the satellite closed the connection"
                if AudioChunk.is_type(event.type):
                    audio += AudioChunk.from_event(event).audio
                elif event.type in ("detection", "audio-start", "audio-stop"):
                    framing.append(event)
                    if AudioStop.is_type(event.type):
                        break
        await client.disconnect()
    finally:
        await satellite.stop()
    return bytes(audio), framing


async def transcribe(models_dir: Path, audio: bytes, *, strip: bool = False) -> str:
    """What Hydra's speech-to-text (Whisper tiny.en) hears in 16 kHz audio; with ``strip``, as
    the worker's does, without a leading "Hey Jarvis"."""
    stt = SttEngine(models_dir, offline=True, wake_phrases=("Hey Jarvis",) if strip else ())
    try:
        return await stt.transcribe(audio)
    finally:
        await stt.close()


ONE_BREATH = [
    ("What's the GPU temperature?", "jf_alpha"),
    ("How many tasks are waiting?", "jm_kumo"),
]


@pytest.mark.parametrize(("command", "voice"), ONE_BREATH)
async def test_one_breath_command_keeps_its_first_word(
    engine: Any,
    voice_weights: VoiceWeights,
    voice_models_dir: Path,
    tmp_path: Path,
    command: str,
    voice: str,
) -> None:
    clip = kokoro_one_breath(voice_weights, command, voice)
    audio, framing = await command_heard(engine, clip, tmp_path)

    # No pause after the wake phrase: it is sent too ...
    heard = await transcribe(voice_models_dir, audio)
    assert words(heard) != words(command), heard
    # ... and Hydra's speech-to-text removes it.
    heard = await transcribe(voice_models_dir, audio, strip=True)
    assert words(heard) == words(command), heard
    # Timestamps are microphone time: the command's audio starts before the detection.
    detection = Detection.from_event(framing[0])
    start = AudioStart.from_event(framing[1])
    assert start.timestamp is not None
    assert detection.timestamp is not None
    assert start.timestamp < clip.wake_end_ms <= detection.timestamp + 100


async def test_without_pre_roll_the_first_word_is_lost(
    engine: Any, voice_weights: VoiceWeights, voice_models_dir: Path, tmp_path: Path
) -> None:
    """What pre-roll is for: streamed from the detection on, "How" is cut off."""
    command, voice = ONE_BREATH[1]
    clip = kokoro_one_breath(voice_weights, command, voice)
    audio, _ = await command_heard(engine, clip, tmp_path, pre_roll_s=0)

    heard = await transcribe(voice_models_dir, audio)
    assert words(heard)[:1] != words(command)[:1], heard


async def test_after_a_pause_only_the_command_is_sent(
    engine: Any, voice_weights: VoiceWeights, voice_models_dir: Path, tmp_path: Path
) -> None:
    """A short pause after "Hey Jarvis" (as most people make): "Jarvis" never reaches Home
    Assistant, whatever its speech-to-text, and the command is whole."""
    command, voice = ONE_BREATH[0]
    clip = kokoro_one_breath(voice_weights, command, voice, pause_s=0.3)
    audio, framing = await command_heard(engine, clip, tmp_path)

    heard = await transcribe(voice_models_dir, audio)
    assert words(heard) == words(command), heard
    start = AudioStart.from_event(framing[1])
    assert start.timestamp is not None
    assert clip.wake_end_ms <= start.timestamp < clip.wake_end_ms + 300
