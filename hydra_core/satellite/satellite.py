"""A Wyoming voice satellite with local wake word detection.

Home Assistant's ``wyoming`` integration connects to it, asks for its ``Info`` (``Describe``) and
sends ``RunSatellite``. The satellite then reads the microphone and runs the wake word models on
it. On a detection it sends ``Detection`` and ``RunPipeline(asr -> tts)``, then the microphone
audio (``AudioStart``, ``AudioChunk``..., ``AudioStop``) until Home Assistant says the command has
ended (``VoiceStopped``, ``Transcript`` or ``Error``). The command's audio starts before the
detection, where the pre-roll (``preroll.py``) finds the command's start, so that a command said
straight after the wake word keeps its first word; timestamps are microphone time. The spoken
reply comes back as ``AudioStart``, ``AudioChunk``..., ``AudioStop``; once it has played the
satellite answers ``Played`` and listens for the wake word again. ``PauseSatellite`` (or the
connection closing) stops the microphone; the satellite keeps serving and a new connection takes
over.

The port has no authentication, so, as wyoming-satellite does, the satellite keeps the connection
it runs for: another ``RunSatellite`` gets an ``error`` event and is closed, unless the running
connection has been silent for ``takeover_after_s`` (Home Assistant pings every 2 s, so a silent
one is a connection that died without closing). Events are read within size limits
(``hydra_core.voice.frames``) and the reply audio waiting to play is bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
import contextlib
from dataclasses import dataclass, field
import enum
import itertools
import logging
from pathlib import Path
import threading
import time
from typing import Any, Protocol

from wyoming.asr import Transcript
from wyoming.audio import AudioChunk, AudioFormat, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.info import (
    Attribution,
    Describe,
    Info,
    MicProgram,
    Satellite as SatelliteInfo,
    SndProgram,
    WakeModel,
    WakeProgram,
)
from wyoming.ping import Ping, Pong
from wyoming.pipeline import PipelineStage, RunPipeline
from wyoming.satellite import PauseSatellite, RunSatellite
from wyoming.server import AsyncEventHandler, AsyncServer, AsyncTcpServer
from wyoming.snd import Played
from wyoming.vad import VoiceStarted, VoiceStopped
from wyoming.wake import Detection

from .. import __version__
from ..background import cancel
from ..voice.frames import ClientError, read_frame
from .audio import (
    MIC_CHANNELS,
    MIC_FORMAT,
    MIC_RATE,
    MIC_WIDTH,
    AudioSourceError,
    MicEnded,
    MicSource,
    NullSpeaker,
    PcmFormat,
    Speaker,
    read_wav,
)
from .preroll import PreRoll

_LOGGER = logging.getLogger(__name__)

HYDRA_ATTRIBUTION = Attribution(
    name="Hydra", url="https://www.home-assistant.io/integrations/wyoming/"
)
OPENWAKEWORD_ATTRIBUTION = Attribution(
    name="openWakeWord", url="https://github.com/dscripka/openWakeWord"
)
_BACKOFF_START_S = 1.0
_BACKOFF_STABLE_S = 30.0


# -- the wake word engine, as hydra_core.voice.wake offers it -----------------------------------


class WakeDetectionLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def score(self) -> float: ...

    @property
    def timestamp_ms(self) -> int: ...


class WakeStreamLike(Protocol):
    def process(self, audio: bytes) -> Sequence[WakeDetectionLike]: ...

    def close(self) -> None: ...


class WakeModelLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def phrase(self) -> str: ...


class WakeEngineLike(Protocol):
    def models(self) -> Sequence[WakeModelLike]: ...

    def open_stream(self, names: Sequence[str] | None = None) -> WakeStreamLike: ...


class SatelliteError(Exception):
    """The satellite cannot start with these settings."""


@dataclass(frozen=True)
class SatelliteSettings:
    """How the satellite runs (the command-line options)."""

    uri: str = "tcp://0.0.0.0:10700"
    name: str = "Hydra satellite"
    area: str | None = None
    wake_words: tuple[str, ...] = ("hey_jarvis",)
    # Seconds of microphone audio after which streaming stops if Home Assistant never ends it.
    max_command_s: float = 15.0
    # Restarting a microphone command that died: first and longest wait.
    mic_restart_s: float = _BACKOFF_START_S
    mic_restart_max_s: float = 30.0
    snd_format: PcmFormat = field(default_factory=lambda: PcmFormat(22050, 2, 1))
    # Seconds without a word from the running connection after which another may take over.
    takeover_after_s: float = 10.0
    # Audio waiting to play, all sounds together: some six minutes of a 22 kHz reply.
    max_queued_audio_bytes: int = 16 * 1024 * 1024
    awake_wav: Path | None = None
    done_wav: Path | None = None
    # Seconds of microphone audio kept before a detection, so that a command said straight after
    # the wake word keeps its start (see preroll.py); 0 streams from the detection on.
    pre_roll_s: float = 2.0
    # Audio heard after the detection's timestamp before the command's start is chosen: a pause
    # after the wake phrase that has only begun when the word fires must be seen to be one.
    pre_roll_settle_ms: int = 240


class Mode(enum.Enum):
    """What the satellite does with microphone audio."""

    IDLE = "idle"  # not running: Home Assistant has not asked, paused, or went away
    WAKE = "wake"  # listening for the wake word
    STREAMING = "streaming"  # sending the command to Home Assistant


class _Connection(AsyncEventHandler):
    """One client connection: Home Assistant (or a plain ``Describe`` probe)."""

    _ids = itertools.count(1)

    def __init__(
        self,
        satellite: VoiceSatellite,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        super().__init__(reader, writer)
        self.satellite = satellite
        self.id = next(self._ids)
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or "?")
        self._write_lock = asyncio.Lock()
        self.closed = False
        self.last_heard = time.monotonic()

    def __repr__(self) -> str:
        return f"connection #{self.id} from {self.peer}"

    async def run(self) -> None:
        """Read events until the peer goes away; nothing it sends may end the satellite."""
        _LOGGER.debug("%r opened", self)
        try:
            while not self.closed:
                try:
                    event = await read_frame(self.reader)
                except (asyncio.IncompleteReadError, ConnectionError, OSError):
                    break
                except ClientError as err:
                    _LOGGER.warning("%r sent %s; closing it", self, err)
                    break
                if event is None:
                    break
                self.last_heard = time.monotonic()
                if not await self.handle_event(event):
                    break
        finally:
            self.closed = True
            _LOGGER.debug("%r closed", self)
            with contextlib.suppress(Exception):
                await self.satellite.connection_closed(self)
            self.writer.close()

    async def handle_event(self, event: Event) -> bool:
        try:
            return await self.satellite.handle_event(self, event)
        except Exception:
            _LOGGER.warning("%r: cannot handle event %r", self, event.type, exc_info=True)
            return True

    async def send(self, event: Event) -> bool:
        """Write one event; False when the connection is gone."""
        if self.closed:
            return False
        try:
            async with self._write_lock:
                await async_write_event(event, self.writer)
        except (ConnectionError, OSError, RuntimeError):
            _LOGGER.debug("%r: write failed", self)
            self.closed = True
            self.reader.feed_eof()
            return False
        return True

    async def close(self) -> None:
        self.closed = True
        self.reader.feed_eof()
        self.writer.close()


class VoiceSatellite:
    """The satellite: one Wyoming server, one microphone, one speaker, one wake word stream."""

    def __init__(
        self,
        settings: SatelliteSettings,
        *,
        engine: WakeEngineLike,
        mic: MicSource,
        speaker: Speaker | None = None,
        speaker_configured: bool | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.mic = mic
        self.speaker: Speaker = speaker or NullSpeaker()
        self.has_speaker = speaker is not None if speaker_configured is None else speaker_configured
        self.mode = Mode.IDLE
        self.active: _Connection | None = None
        self.server: AsyncServer | None = None
        self._stream: WakeStreamLike | None = None
        self._stream_lock = threading.Lock()
        self._models: dict[str, WakeModelLike] = {}
        self._mic_task: asyncio.Task[None] | None = None
        self._mic_ms = 0  # microphone clock: milliseconds of audio read since the start
        self._stream_ms = 0  # microphone time of the command audio sent so far
        self._stream_started_ms = 0
        self._preroll = PreRoll(settings.pre_roll_s)
        # While streaming: the detection's microphone time until the command's start is chosen.
        self._detected_ms: int | None = None
        self._play_lock = asyncio.Lock()
        self._playing = 0  # sounds playing or queued: the wake word is not listened to then
        self._tts_queue: asyncio.Queue[bytes | None] | None = None
        self._queued_bytes = 0  # audio waiting in the play queues
        self._reply_truncated = False
        # Whether the reply being received has brought audio yet (the first chunk is "reply-audio").
        self._reply_audio = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopped = asyncio.Event()
        self._sounds: dict[str, tuple[PcmFormat, bytes]] = {}
        # Observers for tests and logs: called with ("detection", name), ("mic-ended", reason)...
        self.listeners: list[Callable[[str, Any], None]] = []

    # -- life cycle ---------------------------------------------------------------------------

    def prepare(self) -> None:
        """Check the wake words and sounds before serving; raises SatelliteError."""
        available = {model.name: model for model in self.engine.models()}
        missing = [name for name in self.settings.wake_words if name not in available]
        if missing:
            raise SatelliteError(
                f"unknown wake word {', '.join(missing)}; available: "
                f"{', '.join(sorted(available)) or 'none'}"
            )
        self._models = {name: available[name] for name in self.settings.wake_words}
        try:
            self._stream = self.engine.open_stream(list(self.settings.wake_words))
        except Exception as err:
            raise SatelliteError(f"cannot load the wake word models: {err}") from err
        for key, path in (("awake", self.settings.awake_wav), ("done", self.settings.done_wav)):
            if path is not None:
                try:
                    self._sounds[key] = read_wav(path)
                except AudioSourceError as err:
                    raise SatelliteError(str(err)) from err

    async def start(self) -> None:
        """Prepare (if not yet) and start serving without blocking."""
        if self._stream is None:
            self.prepare()
        try:
            self.server = AsyncServer.from_uri(self.settings.uri)
        except ValueError as err:
            raise SatelliteError(f"bad --uri {self.settings.uri!r}: {err}") from err
        await self.server.start(lambda reader, writer: _Connection(self, reader, writer))
        _LOGGER.info(
            "Satellite %r listening on %s; wake word %s",
            self.settings.name,
            self.address or self.settings.uri,
            ", ".join(self.settings.wake_words),
        )

    @property
    def address(self) -> tuple[str, int] | None:
        """The TCP address actually served (useful with port 0)."""
        if isinstance(self.server, AsyncTcpServer):
            server = getattr(self.server, "_server", None)
            if server is not None and server.sockets:
                host, port = server.sockets[0].getsockname()[:2]
                return host, port
        return None

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    async def stop(self) -> None:
        """Stop serving, the microphone and any sound."""
        self._stopped.set()
        await self._stop_mic()
        if self.server is not None:
            with contextlib.suppress(Exception):
                await self.server.stop()
        if self.active is not None:
            await self.active.close()
            self.active = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.mic.close()
        # A cancelled to_thread call may still be inside process(): close after it.
        await asyncio.to_thread(self._close_stream)

    def _close_stream(self) -> None:
        with self._stream_lock:
            stream, self._stream = self._stream, None
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.close()

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _notify(self, what: str, value: Any = None) -> None:
        for listener in list(self.listeners):
            with contextlib.suppress(Exception):
                listener(what, value)

    # -- Info -----------------------------------------------------------------------------------

    def info(self) -> Info:
        """What ``Describe`` answers: a satellite with local wake word detection."""
        version = __version__
        models = [
            WakeModel(
                name=name,
                attribution=OPENWAKEWORD_ATTRIBUTION,
                installed=True,
                description=model.phrase or name,
                version=None,
                languages=[],
                phrase=model.phrase or name,
            )
            for name, model in self._models.items()
        ]
        info = Info(
            wake=[
                WakeProgram(
                    name="hydra-wake",
                    attribution=OPENWAKEWORD_ATTRIBUTION,
                    installed=True,
                    description="Local wake word detection (openWakeWord)",
                    version=version,
                    models=models,
                )
            ],
            mic=[
                MicProgram(
                    name="hydra-mic",
                    attribution=HYDRA_ATTRIBUTION,
                    installed=True,
                    description="Microphone",
                    version=version,
                    mic_format=AudioFormat(MIC_RATE, MIC_WIDTH, MIC_CHANNELS),
                )
            ],
            satellite=SatelliteInfo(
                name=self.settings.name,
                attribution=HYDRA_ATTRIBUTION,
                installed=True,
                description="Hydra voice satellite",
                version=version,
                area=self.settings.area,
                has_vad=False,
                active_wake_words=list(self._models),
                max_active_wake_words=len(self._models),
                supports_trigger=False,
            ),
        )
        if self.has_speaker:
            fmt = self.settings.snd_format
            info.snd.append(
                SndProgram(
                    name="hydra-snd",
                    attribution=HYDRA_ATTRIBUTION,
                    installed=True,
                    description="Speaker",
                    version=version,
                    snd_format=AudioFormat(fmt.rate, fmt.width, fmt.channels),
                )
            )
        return info

    # -- events from Home Assistant -------------------------------------------------------------

    async def handle_event(self, conn: _Connection, event: Event) -> bool:
        """One event from a connection; False closes that connection."""
        if Describe.is_type(event.type):
            await conn.send(self.info().event())
            return True
        if Ping.is_type(event.type):
            await conn.send(Pong(text=Ping.from_event(event).text).event())
            return True
        if Pong.is_type(event.type):
            return True
        if RunSatellite.is_type(event.type):
            return await self._run(conn)
        if conn is not self.active:
            _LOGGER.debug("%r is not the active connection; ignoring %s", conn, event.type)
            return True
        if PauseSatellite.is_type(event.type):
            _LOGGER.info("Paused by Home Assistant")
            await self._pause()
        elif Transcript.is_type(event.type) or VoiceStopped.is_type(event.type):
            if Transcript.is_type(event.type):
                _LOGGER.info("Transcript: %s", Transcript.from_event(event).text)
            await self._end_streaming("end of speech", done_sound=True)
        elif Error.is_type(event.type):
            error = Error.from_event(event)
            _LOGGER.warning("Home Assistant reports an error: %s (%s)", error.text, error.code)
            await self._end_streaming("error")
        else:
            self._handle_audio_event(event)
        return True

    def _handle_audio_event(self, event: Event) -> None:
        """The spoken reply: AudioStart, AudioChunk..., AudioStop."""
        if AudioStart.is_type(event.type):
            self._tts_start(AudioStart.from_event(event))
        elif AudioChunk.is_type(event.type):
            chunk = AudioChunk.from_event(event)
            if self._tts_queue is None:  # audio without a start: take the chunk's format
                self._tts_start(AudioStart(chunk.rate, chunk.width, chunk.channels))
            assert self._tts_queue is not None
            if not self._enqueue(self._tts_queue, chunk.audio):
                return
            if not self._reply_audio:
                self._reply_audio = True
                self._notify("reply-audio")
        elif AudioStop.is_type(event.type):
            if self._tts_queue is not None:
                self._tts_queue.put_nowait(None)
                self._tts_queue = None
        elif VoiceStarted.is_type(event.type):
            _LOGGER.debug("Home Assistant hears speech")
        else:
            _LOGGER.debug("Event ignored: %s", event.type)

    async def _run(self, conn: _Connection) -> bool:
        """``RunSatellite``: this connection becomes the active one; listen for the wake word.

        False (close it) when another connection runs the satellite and is still alive.
        """
        previous = self.active
        if previous is not None and previous is not conn:
            silent_s = time.monotonic() - previous.last_heard
            if not previous.closed and silent_s < self.settings.takeover_after_s:
                _LOGGER.warning("Refused %r: the satellite runs for %r", conn, previous)
                await conn.send(
                    Error(
                        text="This satellite already runs for another connection",
                        code="satellite_busy",
                    ).event()
                )
                return False
            _LOGGER.warning("%r replaces %r, silent for %.0f s", conn, previous, silent_s)
            await self._pause()
            self.active = conn
            await previous.close()
        self.active = conn
        _LOGGER.info("Running for %r", conn)
        if self.mode is Mode.IDLE:
            self.mode = Mode.WAKE
        if self._mic_task is None or self._mic_task.done():
            self._mic_task = self._spawn(self._mic_loop(), "satellite microphone")
        self._notify("running", conn.id)
        return True

    async def _pause(self) -> None:
        await self._end_streaming("paused")
        self.mode = Mode.IDLE
        await self._stop_mic()
        self._notify("paused")

    async def connection_closed(self, conn: _Connection) -> None:
        if conn is self.active:
            _LOGGER.info("Home Assistant disconnected (%r); waiting for it to connect again", conn)
            self.active = None
            self._end_tts()
            await self._pause()

    async def _stop_mic(self) -> None:
        task, self._mic_task = self._mic_task, None
        if task is not asyncio.current_task():
            await cancel(task)
        await self.mic.pause()
        self._preroll.clear()

    # -- microphone -----------------------------------------------------------------------------

    async def _mic_loop(self) -> None:
        backoff = self.settings.mic_restart_s
        while self.mode is not Mode.IDLE:
            started = time.monotonic()
            try:
                await self.mic.open()
                while True:
                    chunk = await self.mic.read_chunk()
                    await self._on_mic_chunk(chunk)
            except (MicEnded, AudioSourceError) as err:
                restartable = isinstance(err, AudioSourceError) or err.restartable
                await self._end_streaming("microphone stopped")
                if not restartable:
                    _LOGGER.info("Microphone input ended: %s", err)
                    self._notify("mic-ended", str(err))
                    return
                if time.monotonic() - started > _BACKOFF_STABLE_S:
                    backoff = self.settings.mic_restart_s
                _LOGGER.error("Microphone failed: %s; restarting in %.0f s", err, backoff)
                self._notify("mic-failed", str(err))
                await self.mic.pause()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.mic_restart_max_s)

    async def _on_mic_chunk(self, chunk: bytes) -> None:
        chunk_ms = len(chunk) * 1000 // MIC_FORMAT.bytes_per_second
        self._preroll.add(self._mic_ms, chunk)
        self._mic_ms += chunk_ms
        # The models see all audio, so their state stays continuous; detections count only
        # while listening and while no sound plays (the microphone hears the speaker).
        detections = await asyncio.to_thread(self._process, chunk)
        if self.mode is Mode.STREAMING:
            if self._detected_ms is None:
                await self._send_audio(chunk)
            elif self._mic_ms >= self._detected_ms + self.settings.pre_roll_settle_ms:
                await self._send_pre_roll(self._detected_ms)
            return
        if self.mode is Mode.WAKE and detections:
            if self._playing:
                _LOGGER.debug("Wake word while a sound plays: ignored")
                return
            await self._wake(detections[0])

    def _process(self, chunk: bytes) -> Sequence[WakeDetectionLike]:
        # A cancelled to_thread call goes on running: never let two feed the stream at once.
        with self._stream_lock:
            if self._stream is None:  # stopped meanwhile
                return []
            return self._stream.process(chunk)

    async def _wake(self, detection: WakeDetectionLike) -> None:
        conn = self.active
        if conn is None:
            return
        _LOGGER.info("Wake word %s detected (score %.2f)", detection.name, detection.score)
        self._notify("detection", detection.name)
        end_stage = PipelineStage.TTS if self.has_speaker else PipelineStage.HANDLE
        self.mode = Mode.STREAMING
        # Timestamps are microphone time: the detection's is where the wake word's window ended.
        self._stream_started_ms = self._stream_ms = self._mic_ms
        pre_roll = self.settings.pre_roll_s > 0
        self._detected_ms = min(detection.timestamp_ms, self._mic_ms) if pre_roll else None
        ok = await conn.send(
            Detection(name=detection.name, timestamp=detection.timestamp_ms).event()
        )
        ok = ok and await conn.send(
            RunPipeline(
                start_stage=PipelineStage.ASR,
                end_stage=end_stage,
                wake_word_name=detection.name,
                restart_on_end=False,
            ).event()
        )
        if not pre_roll:
            ok = ok and await conn.send(
                AudioStart(MIC_RATE, MIC_WIDTH, MIC_CHANNELS, self._stream_ms).event()
            )
        if not ok:
            self.mode = Mode.WAKE
            self._detected_ms = None
            return
        if "awake" in self._sounds:
            self._play_sound("awake")

    async def _send_pre_roll(self, detected_ms: int) -> None:
        """Start the command where the pre-roll says it starts and send the audio since."""
        self._detected_ms = None
        conn = self.active
        if conn is None:
            return
        cut = self._preroll.cut(detected_ms)
        start_ms = self._mic_ms if cut is None else cut.start_ms
        _LOGGER.debug(
            "Command starts %d ms before the detection (%s)",
            detected_ms - start_ms,
            "after a pause" if cut is not None and cut.after_pause else "with the wake phrase",
        )
        self._stream_started_ms = self._stream_ms = start_ms
        self._notify("pre-roll", start_ms)
        await conn.send(AudioStart(MIC_RATE, MIC_WIDTH, MIC_CHANNELS, start_ms).event())
        for _, piece in self._preroll.audio_from(start_ms):
            await self._send_audio(piece)
            if self.mode is not Mode.STREAMING:
                return

    async def _send_audio(self, chunk: bytes) -> None:
        conn = self.active
        if conn is None:
            return
        event = AudioChunk(MIC_RATE, MIC_WIDTH, MIC_CHANNELS, chunk, timestamp=self._stream_ms)
        self._stream_ms += len(chunk) * 1000 // MIC_FORMAT.bytes_per_second
        await conn.send(event.event())
        if self._stream_ms - self._stream_started_ms >= self.settings.max_command_s * 1000:
            _LOGGER.warning(
                "Home Assistant did not end the command after %.0f s; stopping",
                self.settings.max_command_s,
            )
            await self._end_streaming("time limit")

    async def _end_streaming(self, reason: str, *, done_sound: bool = False) -> None:
        if self.mode is not Mode.STREAMING:
            return
        self.mode = Mode.WAKE
        seconds = (self._stream_ms - self._stream_started_ms) / 1000
        _LOGGER.info("Command audio ends (%s) after %.1f s", reason, seconds)
        self._notify("streaming-stopped", reason)
        if self.active is not None:
            if self._detected_ms is not None:  # ended before its start was chosen
                self._detected_ms = None
                await self.active.send(
                    AudioStart(MIC_RATE, MIC_WIDTH, MIC_CHANNELS, self._stream_ms).event()
                )
            await self.active.send(AudioStop(timestamp=self._stream_ms).event())
        if done_sound and "done" in self._sounds:
            self._play_sound("done")

    # -- speaker --------------------------------------------------------------------------------

    def _tts_start(self, start: AudioStart) -> None:
        self._end_tts()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._tts_queue = queue
        self._reply_audio = False
        self._reply_truncated = False
        fmt = PcmFormat(start.rate, start.width, start.channels)
        self._playing += 1
        self._spawn(self._play(fmt, queue, reply_to=self.active), "satellite reply")

    def _end_tts(self) -> None:
        if self._tts_queue is not None:
            self._tts_queue.put_nowait(None)
            self._tts_queue = None

    def _play_sound(self, key: str) -> None:
        fmt, data = self._sounds[key]
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._enqueue(queue, data)
        queue.put_nowait(None)
        self._playing += 1
        self._spawn(self._play(fmt, queue, reply_to=None), f"satellite {key} sound")

    def _enqueue(self, queue: asyncio.Queue[bytes | None], audio: bytes) -> bool:
        """Queue audio to play, unless the queues hold their limit already (it is dropped)."""
        if self._queued_bytes + len(audio) > self.settings.max_queued_audio_bytes:
            if not self._reply_truncated:
                self._reply_truncated = True
                _LOGGER.warning(
                    "Dropping reply audio: %d bytes already wait to play",
                    self._queued_bytes,
                )
                self._notify("reply-truncated", self._queued_bytes)
            return False
        self._queued_bytes += len(audio)
        queue.put_nowait(audio)
        return True

    async def _drain(self, queue: asyncio.Queue[bytes | None]) -> AsyncIterator[bytes]:
        """The queue's audio until its ``None``, counted out of the queued total."""
        while (item := await queue.get()) is not None:
            self._queued_bytes -= len(item)
            yield item

    async def _play(
        self, fmt: PcmFormat, queue: asyncio.Queue[bytes | None], reply_to: _Connection | None
    ) -> None:
        """Play one sound (serialised with the others); answer ``Played`` for a reply."""
        try:
            async with self._play_lock:
                try:
                    await self.speaker.play(fmt, self._drain(queue))
                except OSError as err:
                    _LOGGER.error("Cannot play sound: %s", err)
                    async for _ in self._drain(queue):  # let the stream finish
                        pass
        finally:
            self._playing -= 1
        if reply_to is not None:
            self._notify("played")
            if reply_to is self.active:
                await reply_to.send(Played().event())
