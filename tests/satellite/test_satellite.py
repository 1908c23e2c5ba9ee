"""The voice satellite over loopback TCP, with a Wyoming client playing Home Assistant's part.

The microphone is a WAV file of synthetic speech made at test time (espeak-ng and sox), the wake
word engine is the real one (openWakeWord's hey_jarvis), the speaker a WAV file or a command.
Runs on Python 3.11 (the worker's venv) and 3.14 (Home Assistant's).
"""

from __future__ import annotations

import array
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
from dataclasses import dataclass, field
import itertools
import math
from pathlib import Path
import socket
import subprocess
import sys
import time
from typing import Any
import wave

import pytest
from wyoming.asr import Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.ping import Ping, Pong
from wyoming.pipeline import PipelineStage, RunPipeline
from wyoming.satellite import PauseSatellite, RunSatellite
from wyoming.snd import Played
from wyoming.vad import VoiceStopped
from wyoming.wake import Detection

from hydra_core.satellite import (
    CommandMic,
    CommandSpeaker,
    FileMic,
    Mode,
    PcmFormat,
    SatelliteSettings,
    VoiceSatellite,
    WavFileSpeaker,
)
from hydra_core.satellite.audio import MIC_CHUNK_BYTES, MicEnded
from tests.voice.speech import Speech, silence, write_wav

LOOPBACK = "127.0.0.1"
WAKE_PHRASE = "Hey Jarvis, what time is it"
NEGATIVE_PHRASE = "What time is it in Paris? Turn on the kitchen lights."
EVENT_TIMEOUT_S = 15.0
REPO = Path(__file__).resolve().parents[2]


# Home Assistant's test plugin blocks sockets; loopback is all these tests use.
pytestmark = pytest.mark.usefixtures("loopback_sockets")


# -- test audio -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def speech(speech_dir: Path) -> Speech:
    """espeak-ng and sox speech, made at test time (a clear error if the tools are missing)."""
    return Speech(speech_dir)


@pytest.fixture(scope="session")
def wake_wav(speech: Speech, speech_dir: Path) -> Path:
    return write_wav(speech_dir / "wake.wav", speech.clip(WAKE_PHRASE))


@pytest.fixture(scope="session")
def negative_wav(speech: Speech, speech_dir: Path) -> Path:
    return write_wav(speech_dir / "negative.wav", speech.clip(NEGATIVE_PHRASE))


@pytest.fixture(scope="session")
def engine() -> Any:
    """The real wake word engine (loaded once: its models take a moment)."""
    from hydra_core.voice.wake import WakeEngine  # noqa: PLC0415

    return WakeEngine()


def tone(seconds: float, rate: int = 22050, freq: float = 440.0) -> bytes:
    """A sine tone, 16-bit mono: recognisable reply audio."""
    samples = array.array(
        "h",
        (int(8000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(int(seconds * rate))),
    )
    if sys.byteorder != "little":
        samples.byteswap()
    return samples.tobytes()


# -- the satellite and a client -------------------------------------------------------------------


@dataclass
class Running:
    satellite: VoiceSatellite
    host: str
    port: int
    notes: list[tuple[str, Any]] = field(default_factory=list)
    _waiters: list[tuple[str, asyncio.Future[Any]]] = field(default_factory=list)

    def note(self, what: str, value: Any) -> None:
        self.notes.append((what, value))
        for name, future in list(self._waiters):
            if name == what and not future.done():
                future.set_result(value)

    async def wait_note(self, what: str) -> Any:
        for name, value in self.notes:
            if name == what:
                return value
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append((what, future))
        return await asyncio.wait_for(future, EVENT_TIMEOUT_S)

    async def client(self) -> AsyncTcpClient:
        client = AsyncTcpClient(self.host, self.port)
        await client.connect()
        return client


StartSatellite = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_satellite(engine: Any, tmp_path: Path) -> AsyncIterator[StartSatellite]:
    started: list[VoiceSatellite] = []

    async def start(
        mic: Any,
        *,
        speaker: Any = "file",
        wake_words: tuple[str, ...] = ("hey_jarvis",),
        **settings: Any,
    ) -> Running:
        if speaker == "file":
            speaker = WavFileSpeaker(tmp_path / "reply.wav")
        satellite = VoiceSatellite(
            SatelliteSettings(
                uri=f"tcp://{LOOPBACK}:0", name="Kitchen", wake_words=wake_words, **settings
            ),
            engine=engine,
            mic=mic,
            speaker=speaker,
        )
        await satellite.start()
        started.append(satellite)
        address = satellite.address
        assert address is not None
        running = Running(satellite, address[0], address[1])
        satellite.listeners.append(running.note)
        return running

    yield start
    for satellite in started:
        await satellite.stop()


async def next_event(
    client: AsyncTcpClient,
    wanted: Callable[[Event], bool],
    *,
    seen: list[Event] | None = None,
) -> Event:
    """Read events until one is wanted; the others go to ``seen``."""
    async with asyncio.timeout(EVENT_TIMEOUT_S):
        while True:
            event = await client.read_event()
            assert event is not None, "the satellite closed the connection"
            if wanted(event):
                return event
            if seen is not None:
                seen.append(event)


async def collect(client: AsyncTcpClient, seconds: float) -> list[Event]:
    """Every event that arrives within ``seconds`` (the connection may close)."""
    events: list[Event] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while (event := await client.read_event()) is not None:
                events.append(event)
    return events


async def describe(client: AsyncTcpClient) -> Info:
    await client.write_event(Describe().event())
    return Info.from_event(await next_event(client, lambda e: Info.is_type(e.type)))


# -- protocol -------------------------------------------------------------------------------------


async def test_describe_says_satellite_with_local_wake_word(
    start_satellite: StartSatellite, wake_wav: Path
) -> None:
    running = await start_satellite(FileMic(wake_wav))
    client = await running.client()
    info = await describe(client)
    await client.disconnect()

    assert info.satellite is not None
    assert info.satellite.name == "Kitchen"
    assert info.satellite.installed
    assert info.satellite.has_vad is False
    assert info.satellite.active_wake_words == ["hey_jarvis"]
    assert info.satellite.max_active_wake_words == 1
    assert info.satellite.supports_trigger is False
    assert [model.name for program in info.wake for model in program.models] == ["hey_jarvis"]
    assert info.wake[0].models[0].phrase
    assert (info.mic[0].mic_format.rate, info.mic[0].mic_format.width) == (16000, 2)
    assert info.snd[0].snd_format.rate == 22050
    # Nothing runs until Home Assistant asks.
    assert running.satellite.mode is Mode.IDLE


async def test_wake_word_command_and_reply(
    start_satellite: StartSatellite, wake_wav: Path, tmp_path: Path
) -> None:
    """Hey Jarvis -> Detection, RunPipeline, the command's audio; the reply plays -> Played."""
    running = await start_satellite(FileMic(wake_wav, speed=1.0))
    client = await running.client()
    await describe(client)
    started = time.monotonic()
    await client.write_event(RunSatellite().event())

    detection = Detection.from_event(await next_event(client, lambda e: Detection.is_type(e.type)))
    detected_after = time.monotonic() - started
    assert detection.name == "hey_jarvis"
    run = RunPipeline.from_event(await client.read_event())  # type: ignore[arg-type]
    assert (run.start_stage, run.end_stage) == (PipelineStage.ASR, PipelineStage.TTS)
    assert run.restart_on_end is False
    assert run.wake_word_name == "hey_jarvis"
    start = AudioStart.from_event(await client.read_event())  # type: ignore[arg-type]
    assert (start.rate, start.width, start.channels) == (16000, 2, 1)

    # "what time is it" follows the wake word: Home Assistant gets it as audio chunks.
    chunks: list[AudioChunk] = []
    while len(chunks) < 8:
        event = await next_event(client, lambda e: AudioChunk.is_type(e.type))
        chunks.append(AudioChunk.from_event(event))
    assert all(0 < len(c.audio) <= MIC_CHUNK_BYTES and c.rate == 16000 for c in chunks)
    # Timestamps are microphone time: contiguous from the command's start, which lies before
    # the detection (pre-roll), after the second of silence the file starts with.
    assert start.timestamp == chunks[0].timestamp
    assert detection.timestamp is not None
    assert 1000 < chunks[0].timestamp < detection.timestamp
    for before, after in itertools.pairwise(chunks):
        assert after.timestamp == before.timestamp + len(before.audio) // 32

    # Home Assistant's speech-to-text ends the command: the audio stops.
    await client.write_event(Transcript(text="what time is it").event())
    late = [e.type async for e in _until_events(client, AudioStop)]
    assert set(late) <= {"audio-chunk"}
    assert len(late) < 10
    assert running.satellite.mode is Mode.WAKE

    # The spoken reply streams back (as Home Assistant's _stream_tts does) and is played.
    reply = tone(0.6)
    await client.write_event(AudioStart(rate=22050, width=2, channels=1, timestamp=0).event())
    for offset in range(0, len(reply), 2048):
        piece = reply[offset : offset + 2048]
        await client.write_event(AudioChunk(22050, 2, 1, piece, timestamp=0).event())
    await client.write_event(AudioStop(timestamp=600).event())
    await next_event(client, lambda e: Played.is_type(e.type))
    await client.disconnect()

    with wave.open(str(tmp_path / "reply.wav"), "rb") as wav:
        assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (22050, 2, 1)
        assert wav.readframes(wav.getnframes()) == reply
    # The wake word ends 1 s of silence + ~0.8 s of speech into the file, read in real time.
    assert detected_after < 4.0


async def test_no_wake_word_no_pipeline(
    start_satellite: StartSatellite, negative_wav: Path
) -> None:
    running = await start_satellite(FileMic(negative_wav, speed=0))
    client = await running.client()
    await client.write_event(RunSatellite().event())
    await running.wait_note("mic-ended")
    await client.write_event(Ping(text="still there").event())
    events = await collect(client, 0.5)
    await client.disconnect()

    assert [e.type for e in events] == ["pong"]
    assert Pong.from_event(events[0]).text == "still there"
    assert not any(what == "detection" for what, _ in running.notes)


async def test_pause_stops_streaming(start_satellite: StartSatellite, wake_wav: Path) -> None:
    running = await start_satellite(FileMic(wake_wav, speed=1.0))
    client = await running.client()
    await client.write_event(RunSatellite().event())
    await next_event(client, lambda e: RunPipeline.is_type(e.type))
    await next_event(client, lambda e: AudioChunk.is_type(e.type))

    await client.write_event(PauseSatellite().event())
    [event.type async for event in _until_events(client, AudioStop)]
    after = await collect(client, 1.0)
    assert not any(AudioChunk.is_type(e.type) for e in after)
    assert running.satellite.mode is Mode.IDLE
    await client.disconnect()


async def _until_events(client: AsyncTcpClient, kind: type) -> AsyncIterator[Event]:
    async with asyncio.timeout(EVENT_TIMEOUT_S):
        while True:
            event = await client.read_event()
            assert event is not None
            if kind.is_type(event.type):  # type: ignore[attr-defined]
                return
            yield event


async def test_voice_stopped_or_error_end_the_command(
    start_satellite: StartSatellite, speech: Speech, speech_dir: Path
) -> None:
    """Two wake words in one recording: VoiceStopped ends the first command, Error the second."""
    # Each: 1 s of quiet, the phrase, 3 s of quiet.
    once = speech.clip(WAKE_PHRASE) + silence(2.0)
    twice = write_wav(speech_dir / "twice.wav", once + once)
    running = await start_satellite(FileMic(twice, speed=3.0))
    client = await running.client()
    await client.write_event(RunSatellite().event())

    for ending in (VoiceStopped(timestamp=1000).event(), Error(text="no speech", code="x").event()):
        await next_event(client, lambda e: RunPipeline.is_type(e.type))
        await next_event(client, lambda e: AudioChunk.is_type(e.type))
        await client.write_event(ending)
        [e async for e in _until_events(client, AudioStop)]
        assert running.satellite.mode is Mode.WAKE
    await client.disconnect()


async def test_reconnect_and_a_stranger_cannot_take_over(
    start_satellite: StartSatellite, wake_wav: Path
) -> None:
    """Home Assistant goes away and comes back; while it runs the satellite, another
    ``RunSatellite`` is refused and Home Assistant keeps it (as wyoming-satellite does)."""
    running = await start_satellite(FileMic(wake_wav, speed=1.0))
    first = await running.client()
    await first.write_event(RunSatellite().event())
    await running.wait_note("running")
    await first.disconnect()
    await running.wait_note("paused")
    assert running.satellite.mode is Mode.IDLE

    home_assistant = await running.client()
    assert (await describe(home_assistant)).satellite is not None
    await home_assistant.write_event(RunSatellite().event())
    stranger = await running.client()
    assert (await describe(stranger)).satellite is not None  # anyone may ask what it is
    await stranger.write_event(RunSatellite().event())

    error = Error.from_event(await next_event(stranger, lambda e: Error.is_type(e.type)))
    assert error.code == "satellite_busy"
    async with asyncio.timeout(5):
        while await stranger.read_event() is not None:
            pass
    await next_event(home_assistant, lambda e: Detection.is_type(e.type))
    await home_assistant.disconnect()


async def test_a_silent_connection_is_taken_over(
    start_satellite: StartSatellite, wake_wav: Path
) -> None:
    """A connection that died without closing (no ping for a while) does not lock Home
    Assistant out."""
    running = await start_satellite(FileMic(wake_wav, speed=0.5), takeover_after_s=0.5)
    dead = await running.client()
    await dead.write_event(RunSatellite().event())
    await running.wait_note("running")
    await asyncio.sleep(1.0)

    home_assistant = await running.client()
    await home_assistant.write_event(RunSatellite().event())

    async with asyncio.timeout(5):
        while await dead.read_event() is not None:
            pass
    await next_event(home_assistant, lambda e: Detection.is_type(e.type))
    await home_assistant.disconnect()


class HeldSpeaker:
    """A speaker that starts playing only when released, recording what it played."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.played = bytearray()

    async def play(self, fmt: PcmFormat, audio: AsyncIterator[bytes]) -> None:
        await self.release.wait()
        async for chunk in audio:
            self.played += chunk


async def test_reply_audio_waiting_to_play_is_bounded(
    start_satellite: StartSatellite, wake_wav: Path
) -> None:
    speaker = HeldSpeaker()
    limit = 256 * 1024
    running = await start_satellite(
        FileMic(wake_wav, speed=0), speaker=speaker, max_queued_audio_bytes=limit
    )
    client = await running.client()
    await client.write_event(RunSatellite().event())
    reply = tone(1.0) * 24  # 24 s, about 1 MiB
    await client.write_event(AudioStart(rate=22050, width=2, channels=1).event())
    for offset in range(0, len(reply), 4096):
        await client.write_event(AudioChunk(22050, 2, 1, reply[offset : offset + 4096]).event())
    await client.write_event(AudioStop().event())
    await client.write_event(Ping(text="after").event())
    await next_event(client, lambda e: Pong.is_type(e.type))

    speaker.release.set()
    await next_event(client, lambda e: Played.is_type(e.type))
    await client.disconnect()

    assert len(speaker.played) <= limit
    assert bytes(speaker.played) == reply[: len(speaker.played)]
    assert await running.wait_note("reply-truncated") is not None


async def test_malformed_events_do_not_crash(
    start_satellite: StartSatellite, wake_wav: Path
) -> None:
    running = await start_satellite(FileMic(wake_wav, speed=0))
    client = await running.client()
    await client.write_event(RunSatellite().event())
    # Bad data for known types, then an unknown type: the connection stays up.
    for event in (
        Event(type="audio-chunk", data={"rate": "x"}, payload=b"\x00\x01"),
        Event(type="audio-start", data={}),
        Event(type="transcript", data={}),
        Event(type="error", data={"text": None}),
        Event(type="run-pipeline", data={"start_stage": "nowhere"}),
        Event(type="something-new", data={"x": 1}),
    ):
        await client.write_event(event)
    await client.write_event(Ping(text="ok").event())
    await next_event(client, lambda e: Pong.is_type(e.type))
    await client.disconnect()

    # Garbage that is not an event closes only that connection.
    for garbage in (b"not json\n", b"[1, 2]\n", b'{"type": "ping", "payload_length": 99}\nab'):
        reader, writer = await asyncio.open_connection(running.host, running.port)
        writer.write(garbage)
        await writer.drain()
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    client = await running.client()
    assert (await describe(client)).satellite is not None
    await client.disconnect()


# -- microphone and speaker ------------------------------------------------------------------------


async def test_mic_command_dying_is_restarted(
    start_satellite: StartSatellite, caplog: pytest.LogCaptureFixture
) -> None:
    command = ["sh", "-c", "head -c 16000 /dev/zero; echo 'no such device' >&2; exit 3"]
    running = await start_satellite(CommandMic(command), mic_restart_s=0.05)
    client = await running.client()
    await client.write_event(RunSatellite().event())
    message = await running.wait_note("mic-failed")
    assert "exit code 3" in message
    assert "no such device" in message
    async with asyncio.timeout(EVENT_TIMEOUT_S):
        while sum(what == "mic-failed" for what, _ in running.notes) < 3:
            await asyncio.sleep(0.05)
    assert "restarting in" in caplog.text
    # The connection still works.
    await client.write_event(Ping().event())
    await next_event(client, lambda e: Pong.is_type(e.type))
    await client.disconnect()


async def test_mic_command_audio_reaches_the_wake_word(
    start_satellite: StartSatellite, wake_wav: Path
) -> None:
    """arecord's place taken by a command that writes the WAV (header and all) to stdout."""
    running = await start_satellite(CommandMic(f"cat {wake_wav}"))
    client = await running.client()
    await client.write_event(RunSatellite().event())
    await next_event(client, lambda e: Detection.is_type(e.type))
    await client.disconnect()


async def test_file_mic_converts_wav(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setparams((2, 2, 22050, 0, "NONE", "not compressed"))
        wav.writeframes(tone(1.0, 22050) * 2)
    mic = FileMic(path, speed=0)
    await mic.open()
    sizes = []
    with contextlib.suppress(MicEnded):
        while True:
            sizes.append(len(await mic.read_chunk()))
    await mic.close()
    assert sizes[0] == MIC_CHUNK_BYTES
    assert 31000 < sum(sizes) < 33000  # 1 s at 16 kHz 16-bit mono


async def test_command_speaker_converts_and_plays(tmp_path: Path) -> None:
    out = tmp_path / "played.raw"
    speaker = CommandSpeaker(["sh", "-c", f"cat > {out}"], PcmFormat(22050, 2, 1))
    audio = tone(0.5, 22050)

    async def chunks() -> AsyncIterator[bytes]:
        yield audio[:1000]
        yield audio[1000:]

    await speaker.play(PcmFormat(22050, 2, 1), chunks())
    assert out.read_bytes() == audio

    async def chunks16() -> AsyncIterator[bytes]:
        yield tone(0.5, 16000)

    await speaker.play(PcmFormat(16000, 2, 1), chunks16())
    assert abs(len(out.read_bytes()) - len(audio)) <= 4  # resampled to 22050 Hz

    failing = CommandSpeaker(["sh", "-c", "exit 5"], PcmFormat(22050, 2, 1))
    with pytest.raises(OSError, match="exit code 5"):
        await failing.play(PcmFormat(22050, 2, 1), chunks())


async def test_reply_plays_through_command_then_played(
    start_satellite: StartSatellite, wake_wav: Path, tmp_path: Path
) -> None:
    out = tmp_path / "speaker.raw"
    speaker = CommandSpeaker(["sh", "-c", f"cat > {out}"], PcmFormat(22050, 2, 1))
    running = await start_satellite(FileMic(wake_wav, speed=0), speaker=speaker)
    client = await running.client()
    await client.write_event(RunSatellite().event())
    reply = tone(0.3)
    await client.write_event(AudioStart(rate=22050, width=2, channels=1).event())
    await client.write_event(AudioChunk(22050, 2, 1, reply).event())
    await client.write_event(AudioStop().event())
    await next_event(client, lambda e: Played.is_type(e.type))
    assert out.read_bytes() == reply
    await client.disconnect()


# -- command line ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hydra_core.satellite", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "one of the arguments --mic-command --mic-file is required"),
        (["--mic-command", "no-such-recorder -q"], "program 'no-such-recorder' not found"),
        (["--mic-file", "/nonexistent.wav"], "--mic-file: /nonexistent.wav is not a readable"),
        (["--mic-file", "-", "--uri", "http://127.0.0.1:1"], "use tcp://HOST:PORT"),
        (["--mic-file", "-", "--uri", "tcp://127.0.0.1"], "needs a host and a port"),
        (["--mic-file", "-", "--wake-threshold", "0"], "--wake-threshold must be above 0"),
        (["--mic-file", "-", "--pre-roll-seconds", "-1"], "--pre-roll-seconds must be between"),
        (["--mic-file", "-", "--snd-command", "nope-player"], "program 'nope-player' not found"),
        (["--mic-file", "-", "--wake-word", "hey_nobody"], "unknown wake word hey_nobody"),
        (["--mic-file", "-", "--awake-wav", "/etc/hostname"], "cannot read WAV file"),
        (["--mic-file", "-", "--wake-verify-model", "/nonexistent"], "holds no Whisper model"),
        (["--mic-file", "-", "--wake-verify-threshold", "2"], "must be between 0 and 1"),
    ],
)
def test_cli_rejects_bad_options(args: list[str], message: str) -> None:
    result = _cli(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


async def test_cli_serves_and_detects(wake_wav: Path, tmp_path: Path) -> None:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hydra_core.satellite",
        "--uri",
        f"tcp://{LOOPBACK}:{port}",
        "--name",
        "Kitchen",
        "--mic-file",
        str(wake_wav),
        "--snd-file",
        str(tmp_path / "out.wav"),
        "--wake-word",
        "hey_jarvis",
        cwd=REPO,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        client = None
        async with asyncio.timeout(60):
            while client is None:
                try:
                    client = AsyncTcpClient(LOOPBACK, port)
                    await client.connect()
                except OSError:
                    client = None
                    await asyncio.sleep(0.2)
        info = await describe(client)
        assert info.satellite is not None
        assert info.satellite.name == "Kitchen"
        await client.write_event(RunSatellite().event())
        detection = await next_event(client, lambda e: Detection.is_type(e.type))
        assert Detection.from_event(detection).name == "hey_jarvis"
        await client.disconnect()
    finally:
        proc.terminate()
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, stderr.decode()
    assert b"Wake word hey_jarvis detected" in stderr
