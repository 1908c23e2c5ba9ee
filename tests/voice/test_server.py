"""The worker's Wyoming server, driven over loopback TCP with the real protocol and real models."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event, async_read_event
from wyoming.info import Describe, Info
from wyoming.ping import Ping, Pong
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop
from wyoming.wake import Detect, Detection, NotDetected

from hydra_core.voice.options import VoiceOptions
from hydra_core.voice.service import VoiceService
from hydra_core.voice.stt import SttEngine

from .weights import SPEAKER, VoiceWeights, kokoro_say, pcm24k_to_16k, words

# Loopback TCP only; Home Assistant's test plugin would block it otherwise.
pytestmark = pytest.mark.usefixtures("loopback_sockets")

LOOPBACK = "127.0.0.1"
CHUNK = 2560  # 80 ms of 16 kHz 16-bit mono, what Home Assistant sends
SILENCE = bytes(16000 * 2)  # one second

StartServer = Callable[..., Awaitable[VoiceService]]


@pytest.fixture(scope="session")
def wake_speech(voice_weights: VoiceWeights) -> bytes:
    """Kokoro saying the wake word, with a second of silence either side."""
    return SILENCE + kokoro_say(voice_weights, "Hey Jarvis!") + SILENCE


@pytest.fixture(scope="session")
def other_speech(voice_weights: VoiceWeights) -> bytes:
    """Kokoro saying things that are not the wake word."""
    speech = kokoro_say(voice_weights, "The service is running and the backup is done.")
    return SILENCE + speech + SILENCE


@pytest.fixture
async def start_server(tmp_path: Path, voice_models_dir: Path) -> AsyncIterator[StartServer]:
    services: list[VoiceService] = []

    async def start(models_dir: Path = voice_models_dir, **settings: Any) -> VoiceService:
        service = VoiceService(
            VoiceOptions(
                voice_port=0,
                voice_offline=True,
                model_idle_unload=0,
                **({"stt_model": "tiny.en", "tts_voice": SPEAKER} | settings),
            ),
            host=LOOPBACK,
            data_dir=tmp_path,
            models_dir=models_dir,
        )
        await service.async_start()
        services.append(service)
        return service

    yield start
    for service in services:
        await service.async_stop()


async def _until(client: AsyncTcpClient, *types: str, within: float = 60) -> list[Event]:
    """Events up to and including the first of ``types`` (or an error)."""
    events: list[Event] = []
    async with asyncio.timeout(within):
        while True:
            event = await client.read_event()
            assert event is not None, f"the server closed the connection after {events}"
            events.append(event)
            if event.type in types or Error.is_type(event.type):
                return events


async def _send_audio(client: AsyncTcpClient, audio: bytes, rate: int = 16000) -> None:
    await client.write_event(AudioStart(rate=rate, width=2, channels=1).event())
    for start in range(0, len(audio), CHUNK):
        await client.write_event(
            AudioChunk(rate=rate, width=2, channels=1, audio=audio[start : start + CHUNK]).event()
        )
    await client.write_event(AudioStop().event())


async def _detect(service: VoiceService, audio: bytes, names: list[str] | None) -> list[Event]:
    """Everything the server answers to a detection stream (events are handled in order, so the
    pong after the audio comes once all of the audio has been through the detector)."""
    async with AsyncTcpClient(LOOPBACK, service.port) as client:
        await client.write_event(Detect(names=names).event())
        await _send_audio(client, audio)
        await client.write_event(Ping().event())
        return (await _until(client, Pong().event().type))[:-1]


async def test_describe_advertises_wake_stt_and_tts(start_server: StartServer) -> None:
    service = await start_server()

    async with AsyncTcpClient(LOOPBACK, service.port) as client:
        await client.write_event(Describe().event())
        info = Info.from_event((await _until(client, "info"))[-1])

    wake_models = {model.name: model for model in info.wake[0].models}
    assert {"hey_jarvis", "alexa", "hey_mycroft", "hey_rhasspy", "okay_nabu"} <= set(wake_models)
    assert wake_models["hey_jarvis"].phrase == "Hey Jarvis"
    assert [model.name for model in info.asr[0].models] == ["tiny.en"]
    assert info.asr[0].models[0].languages == ["en"]
    assert info.tts[0].supports_synthesize_streaming
    assert SPEAKER in {voice.name for voice in info.tts[0].voices}


async def test_a_missing_model_is_not_advertised_and_the_rest_still_serves(
    start_server: StartServer, tmp_path: Path, command_speech: bytes
) -> None:
    service = await start_server(models_dir=tmp_path / "empty")

    async with AsyncTcpClient(LOOPBACK, service.port) as client:
        await client.write_event(Describe().event())
        info = Info.from_event((await _until(client, "info"))[-1])
    assert info.wake
    assert not info.asr
    assert not info.tts
    assert "offline" in (service.status().stt.reason or "")

    async with AsyncTcpClient(LOOPBACK, service.port) as client:
        await client.write_event(Transcribe().event())
        await _send_audio(client, command_speech)
        error = Error.from_event((await _until(client, "transcript"))[-1])
    assert error.code == "stt_unavailable"
    assert str(tmp_path / "empty") in error.text

    async with AsyncTcpClient(LOOPBACK, service.port) as client:
        await client.write_event(Ping(text="still there").event())
        assert Pong.from_event((await _until(client, "pong"))[-1]).text == "still there"


async def test_the_wake_word_is_detected_once(
    start_server: StartServer, wake_speech: bytes
) -> None:
    service = await start_server()

    events = await _detect(service, wake_speech, ["hey_jarvis"])

    detections = [Detection.from_event(event) for event in events if Detection.is_type(event.type)]
    assert [detection.name for detection in detections] == ["hey_jarvis"]
    assert detections[0].timestamp is not None
    assert 1000 <= detections[0].timestamp <= len(wake_speech) // 32


async def test_speech_without_the_wake_word_is_not_detected(
    start_server: StartServer, other_speech: bytes
) -> None:
    service = await start_server()

    events = await _detect(service, other_speech, None)

    assert [event.type for event in events] == [NotDetected().event().type]


async def test_many_streams_at_once_each_get_their_answer(
    start_server: StartServer, wake_speech: bytes, other_speech: bytes
) -> None:
    service = await start_server()

    results = await asyncio.gather(
        *(_detect(service, speech, None) for speech in [wake_speech, other_speech] * 3)
    )

    for index, events in enumerate(results):
        detected = any(Detection.is_type(event.type) for event in events)
        assert detected == (index % 2 == 0)


@pytest.mark.parametrize(
    ("events", "code"),
    [
        ([AudioStart(rate=44100, width=2, channels=1).event()], "unsupported_audio"),
        ([AudioStart(rate=16000, width=2, channels=2).event()], "unsupported_audio"),
        (
            [
                AudioStart(rate=16000, width=2, channels=1).event(),
                AudioChunk(rate=8000, width=2, channels=1, audio=bytes(320)).event(),
            ],
            "unsupported_audio",
        ),
        (
            [
                AudioStart(rate=16000, width=2, channels=1).event(),
                AudioChunk(rate=16000, width=2, channels=1, audio=bytes(321)).event(),
            ],
            "invalid_audio",
        ),
        (
            [Detect(names=["hey_nobody"]).event(), AudioStart(16000, 2, 1).event()],
            "unknown_wake_word",
        ),
        ([SynthesizeChunk(text="no start").event()], "unexpected_event"),
    ],
)
async def test_bad_audio_gets_a_clear_error_and_others_are_served(
    start_server: StartServer, wake_speech: bytes, events: list[Event], code: str
) -> None:
    service = await start_server()

    async with AsyncTcpClient(LOOPBACK, service.port) as bad:
        for event in events:
            await bad.write_event(event)
        error = Error.from_event((await _until(bad, "never"))[-1])
        assert error.code == code
        assert error.text
        assert await bad.read_event() is None  # that connection is over

    detections = await _detect(service, wake_speech, ["hey_jarvis"])
    assert any(Detection.is_type(event.type) for event in detections)


async def test_an_unreadable_event_gets_an_error(start_server: StartServer) -> None:
    service = await start_server()

    reader, writer = await asyncio.open_connection(LOOPBACK, service.port)
    writer.write(b'{"type": "audio-chunk", "data_length": "lots"}\n')
    await writer.drain()
    answer = await asyncio.wait_for(async_read_event(reader), 10)
    writer.close()

    assert answer is not None
    assert Error.from_event(answer).code == "invalid_event"


async def test_speech_to_text_returns_what_was_said(
    start_server: StartServer, command_speech: bytes
) -> None:
    service = await start_server()
    stages: list[tuple[str, float]] = []
    service.timings.listen(lambda stage, seconds: stages.append((stage, seconds)))

    async with AsyncTcpClient(LOOPBACK, service.port) as client:
        await client.write_event(Transcribe(language="en").event())
        await _send_audio(client, command_speech)
        transcript = Transcript.from_event((await _until(client, "transcript"))[-1])

    assert words(transcript.text) == words("What's the GPU temperature?")
    # What /api/v1/metrics shows as the turn's speech-to-text latency.
    ((stage, seconds),) = stages
    assert stage == "stt"
    assert 0 < seconds < 60


async def test_a_command_said_with_the_wake_word_comes_back_without_it(
    start_server: StartServer, voice_weights: VoiceWeights
) -> None:
    """A satellite's pre-roll sends "Hey Jarvis" with a command said in one breath: the
    transcript Home Assistant gets is the command alone."""
    service = await start_server()
    speech = kokoro_say(voice_weights, "Hey Jarvis, what's the GPU temperature?")

    async with AsyncTcpClient(LOOPBACK, service.port) as client:
        await client.write_event(Transcribe(language="en").event())
        await _send_audio(client, SILENCE + speech + SILENCE)
        transcript = Transcript.from_event((await _until(client, "transcript"))[-1])

    assert words(transcript.text) == words("What's the GPU temperature?")


async def test_text_to_speech_is_audible_16_bit_at_the_advertised_rate(
    start_server: StartServer,
) -> None:
    service = await start_server()
    stages: list[str] = []
    service.timings.listen(lambda stage, _seconds: stages.append(stage))

    async with AsyncTcpClient(LOOPBACK, service.port) as client:
        await client.write_event(Synthesize(text="The GPUs are cool.").event())
        events = await _until(client, "audio-stop")
    assert stages == ["tts_first_audio"]

    start = AudioStart.from_event(events[0])
    assert (start.rate, start.width, start.channels) == (24000, 2, 1)
    audio = b"".join(
        AudioChunk.from_event(event).audio for event in events if AudioChunk.is_type(event.type)
    )
    samples = np.frombuffer(audio, dtype="<i2")
    assert len(samples) > 24000 * 0.5
    assert np.abs(samples).max() > 3000


async def test_streamed_text_is_spoken_a_sentence_at_a_time(start_server: StartServer) -> None:
    service = await start_server()

    async with AsyncTcpClient(LOOPBACK, service.port) as client:
        await client.write_event(SynthesizeStart().event())
        await client.write_event(
            SynthesizeChunk(text="The first GPU is at fifty degrees. ").event()
        )
        await client.write_event(SynthesizeChunk(text="The second").event())
        # The first sentence is complete: its audio comes before the text has ended.
        first = await _until(client, "audio-chunk")
        assert [event.type for event in first] == ["audio-start", "audio-chunk"]
        await client.write_event(SynthesizeChunk(text=" one is idle.").event())
        full = "The first GPU is at fifty degrees. The second one is idle."
        await client.write_event(Synthesize(text=full).event())  # sent again for old servers
        await client.write_event(SynthesizeStop().event())
        rest = await _until(client, "synthesize-stopped")

    types = [event.type for event in rest]
    assert types[-2:] == ["audio-stop", "synthesize-stopped"]
    assert "audio-start" not in types  # one stream, not one per sentence
    chunks = first[1:] + rest
    audio = b"".join(AudioChunk.from_event(e).audio for e in chunks if AudioChunk.is_type(e.type))
    # Both sentences (and the repeated full text only once): some 3 to 8 seconds of speech.
    assert 3 * 24000 * 2 < len(audio) < 8 * 24000 * 2


async def test_streamed_text_starts_speaking_at_its_first_clause(
    start_server: StartServer, whisper_models_dir: Path
) -> None:
    service = await start_server()

    async with AsyncTcpClient(LOOPBACK, service.port) as client:
        await client.write_event(SynthesizeStart().event())
        for word in ["Okay", "then,", "the", "backup", "of", "the", "database"]:
            await client.write_event(SynthesizeChunk(text=word + " ").event())
        # No sentence has ended yet, and the first clause is already being said.
        first = await _until(client, "audio-chunk")
        assert [event.type for event in first] == ["audio-start", "audio-chunk"]
        await client.write_event(SynthesizeChunk(text="finished at noon.").event())
        await client.write_event(SynthesizeStop().event())
        rest = await _until(client, "synthesize-stopped")

    chunks = first[1:] + rest
    audio = b"".join(AudioChunk.from_event(e).audio for e in chunks if AudioChunk.is_type(e.type))
    stt = SttEngine(whisper_models_dir, offline=True)
    heard = words(await stt.transcribe(pcm24k_to_16k(audio)))
    await stt.close()
    # Whisper tiny.en hears Kokoro's voices loosely ("finish" for "finished", "ok" for "okay",
    # on one platform "nut" for "noon"): every piece the reply was cut into must be heard, and
    # most of the words.
    pieces = (("okay", "then"), ("backup", "database"), ("finished", "noon"))
    for piece in pieces:
        assert any(_heard(word, heard) for word in piece), (piece, heard)
    expected = ("okay", "then", "the", "backup", "of", "database", "finished", "at", "noon")
    assert sum(_heard(word, heard) for word in expected) >= 6, heard


def _heard(word: str, heard: list[str]) -> bool:
    """Whether ``word`` is among the words heard, allowing a small slip (an ending dropped)."""
    return any(SequenceMatcher(None, word, other).ratio() >= 0.6 for other in heard)
