"""Speech-to-text that starts while Home Assistant still streams the silence after a command,
over loopback TCP with the real protocol and the real Whisper tiny.en weights."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.ping import Ping, Pong

from hydra_core.voice.options import VoiceOptions
from hydra_core.voice.service import VoiceService
from tests.voice.speech import Speech, noise, overlay, silence, to_array
from tests.voice.weights import COMMAND, wait_until, words

pytestmark = pytest.mark.usefixtures("loopback_sockets")

LOOPBACK = "127.0.0.1"
CHUNK = 2560  # 80 ms of 16 kHz 16-bit mono, what Home Assistant sends
# Home Assistant's default "finished speaking detection": 0.7 s of silence ends the command.
VAD_TAIL_S = 0.7
EARLY = "hydra early transcript"


class Recorder:
    """The service's transcriptions: each one's audio length and text, as they finish."""

    def __init__(self, service: VoiceService) -> None:
        self.done: list[tuple[int, str]] = []
        self.started = 0
        real = service.transcribe

        async def transcribe(audio: bytes, *, language: str | None) -> str:
            self.started += 1
            text = await real(audio, language=language)
            self.done.append((len(audio), text))
            return text

        service.transcribe = transcribe  # type: ignore[method-assign]


async def _start(tmp_path: Path, models_dir: Path, end_of_speech: float) -> VoiceService:
    service = VoiceService(
        VoiceOptions(
            voice_port=0,
            voice_offline=True,
            model_idle_unload=0,
            stt_model="tiny.en",
            stt_end_of_speech=end_of_speech,
        ),
        host=LOOPBACK,
        data_dir=tmp_path,
        models_dir=models_dir,
    )
    await service.async_start()
    await service.stt.load()
    return service


@pytest.fixture
async def service(tmp_path: Path, voice_models_dir: Path) -> AsyncIterator[VoiceService]:
    """A server that waits for the client's audio-stop to end a command."""
    service = await _start(tmp_path, voice_models_dir, 0.0)
    yield service
    await service.async_stop()


@pytest.fixture
async def ending(tmp_path: Path, voice_models_dir: Path) -> AsyncIterator[VoiceService]:
    """A server that ends a command itself after some quiet (the default)."""
    service = await _start(tmp_path, voice_models_dir, VoiceOptions().stt_end_of_speech)
    yield service
    await service.async_stop()


async def _send(client: AsyncTcpClient, audio: bytes) -> None:
    for start in range(0, len(audio), CHUNK):
        chunk = audio[start : start + CHUNK]
        await client.write_event(AudioChunk(rate=16000, width=2, channels=1, audio=chunk).event())


async def _answer(client: AsyncTcpClient) -> Event:
    async with asyncio.timeout(60):
        while True:
            event = await client.read_event()
            assert event is not None, "the server closed the connection"
            if Transcript.is_type(event.type) or Error.is_type(event.type):
                return event


async def _answer_or_pong(client: AsyncTcpClient) -> Event:
    async with asyncio.timeout(60):
        while True:
            event = await client.read_event()
            assert event is not None, "the server closed the connection"
            if event.type in {"transcript", "error", "pong"}:
                return event


def _trim_end(audio: bytes) -> bytes:
    """``audio`` without the quiet espeak-ng leaves after the last word."""
    loud = np.flatnonzero(np.abs(to_array(audio)) > 300)
    return audio[: 2 * (int(loud[-1]) + 1)]


def _early_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == EARLY and not t.done()]


async def test_the_answer_is_ready_at_audio_stop_and_equals_a_full_transcription(
    service: VoiceService, command_speech: bytes
) -> None:
    audio = silence(0.3) + command_speech + silence(VAD_TAIL_S)
    expected = await service.stt.transcribe(audio)
    recorder = Recorder(service)

    async with AsyncTcpClient(LOOPBACK, service.port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        await _send(client, audio)
        # The speech was followed by silence: it is transcribed before the audio stops.
        await wait_until(lambda: len(recorder.done) == 1, within=30)
        await client.write_event(AudioStop().event())
        transcript = Transcript.from_event(await _answer(client))

    assert words(transcript.text) == words(expected) == words(COMMAND)
    # The early transcription was the answer: nothing was transcribed again at audio-stop.
    assert recorder.started == 1
    assert recorder.done[0][0] < len(audio)


@pytest.mark.parametrize(
    ("text", "voice", "speed"),
    [
        ("Pause autonomous work", "en-us", 150),
        ("What's the queue status", "en-gb", 170),
        ("Turn off the lights in the kitchen", "en-us+f3", 140),
    ],
)
async def test_early_answers_equal_full_transcriptions_in_room_noise(
    service: VoiceService, speech: Speech, text: str, voice: str, speed: int
) -> None:
    clip = speech.clip(text, voice, speed, 0.3) + silence(VAD_TAIL_S)
    audio = overlay(clip, noise(len(clip) / 32000, -60, seed=speed), 0.0)
    expected = await service.stt.transcribe(audio)
    recorder = Recorder(service)

    async with AsyncTcpClient(LOOPBACK, service.port) as client:
        await client.write_event(Transcribe().event())
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        await _send(client, audio)
        await wait_until(lambda: len(recorder.done) == 1, within=30)
        await client.write_event(AudioStop().event())
        transcript = Transcript.from_event(await _answer(client))

    assert words(transcript.text) == words(expected)
    assert recorder.started == 1


async def test_speech_after_a_pause_is_not_lost(service: VoiceService, speech: Speech) -> None:
    first = speech.clip("Queue research", "en-us", 150, 0.3)
    # An aggressive end-of-speech detector stops the audio soon after the last word: no early
    # transcription of the whole can have started, only the stale one of the first words.
    second = _trim_end(speech.clip("on solar batteries", "en-us", 150, 0.0)) + silence(0.1)
    audio = first + second
    expected = await service.stt.transcribe(audio)
    recorder = Recorder(service)

    async with AsyncTcpClient(LOOPBACK, service.port) as client:
        await client.write_event(Transcribe().event())
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        await _send(client, first)
        # The pause is long enough for an early transcription of the first words.
        await wait_until(lambda: len(recorder.done) == 1, within=30)
        await _send(client, second)
        await client.write_event(AudioStop().event())
        transcript = Transcript.from_event(await _answer(client))

    assert "solar" not in words(recorder.done[0][1])
    assert words(transcript.text) == words(expected)
    assert {"research", "solar"} <= set(words(transcript.text))


async def test_a_connection_closed_mid_transcription_leaves_nothing_running(
    service: VoiceService, command_speech: bytes
) -> None:
    recorder = Recorder(service)
    client = AsyncTcpClient(LOOPBACK, service.port)
    await client.connect()
    await client.write_event(Transcribe().event())
    await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
    await _send(client, command_speech + silence(VAD_TAIL_S))
    await wait_until(lambda: service.stt.lazy.in_use == 1, within=30)
    await client.disconnect()

    await wait_until(lambda: service.stt.lazy.in_use == 0 and not _early_tasks(), within=30)
    assert recorder.started == 1
    assert not recorder.done  # the early transcription was cancelled, not answered

    # The server goes on serving.
    async with AsyncTcpClient(LOOPBACK, service.port) as client:
        await client.write_event(Transcribe().event())
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        await _send(client, command_speech)
        await client.write_event(AudioStop().event())
        transcript = Transcript.from_event(await _answer(client))
    assert words(transcript.text) == words(COMMAND)


@pytest.mark.parametrize(
    ("chunk", "code"),
    [
        (AudioChunk(rate=16000, width=2, channels=1, audio=b"\x00\x01\x02"), "invalid_audio"),
        (AudioChunk(rate=22050, width=2, channels=1, audio=bytes(CHUNK)), "unsupported_audio"),
    ],
)
async def test_bad_audio_after_speech_is_refused_and_stops_the_early_transcription(
    service: VoiceService, command_speech: bytes, chunk: AudioChunk, code: str
) -> None:
    recorder = Recorder(service)
    async with AsyncTcpClient(LOOPBACK, service.port) as client:
        await client.write_event(Transcribe().event())
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        await _send(client, command_speech + silence(VAD_TAIL_S))
        await wait_until(lambda: recorder.started == 1, within=30)
        await client.write_event(chunk.event())
        error = Error.from_event(await _answer(client))
    assert error.code == code
    await wait_until(lambda: service.stt.lazy.in_use == 0 and not _early_tasks(), within=30)


async def test_the_server_ends_the_command_before_home_assistant_does(
    ending: VoiceService, command_speech: bytes
) -> None:
    audio = silence(0.3) + command_speech + silence(VAD_TAIL_S)
    expected = await ending.stt.transcribe(audio)
    recorder = Recorder(ending)

    async with AsyncTcpClient(LOOPBACK, ending.port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        await _send(client, audio)
        # No audio-stop: the transcript comes once the speech has been followed by quiet.
        transcript = Transcript.from_event(await _answer(client))
        # What the client still sends until it reads the transcript is not answered again.
        await _send(client, silence(0.5))
        await client.write_event(AudioStop().event())
        await client.write_event(Ping().event())
        assert (await _answer_or_pong(client)).type == Pong().event().type

    assert words(transcript.text) == words(expected) == words(COMMAND)
    assert recorder.started == 1


async def test_a_short_pause_or_a_click_does_not_end_the_command(
    ending: VoiceService, speech: Speech
) -> None:
    first = _trim_end(speech.clip("Queue research", "en-us", 150, 0.3))
    second = speech.clip("on solar batteries", "en-us", 150, 0.0)
    click = bytes(1000) + b"\xff\x7f" * 80 + bytes(1000)  # 5 ms at full scale
    audio = click + silence(0.6) + first + silence(0.3) + second + silence(VAD_TAIL_S)
    expected = await ending.stt.transcribe(audio)

    async with AsyncTcpClient(LOOPBACK, ending.port) as client:
        await client.write_event(Transcribe().event())
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        await _send(client, audio)
        transcript = Transcript.from_event(await _answer(client))

    assert words(transcript.text) == words(expected)
    assert {"research", "solar"} <= set(words(transcript.text))
