"""The worker's Wyoming server: wake word, speech-to-text and text-to-speech on one TCP port.

One handler per connection, the shared engines injected (the layout of OHF-Voice's servers).
What a connection does follows from its first events, as Home Assistant's wyoming integration
sends them: ``transcribe`` then audio is speech-to-text; ``detect`` (or audio alone) is wake word
detection; ``synthesize`` is text-to-speech, and ``synthesize-start`` / ``-chunk`` / ``-stop``
is streaming text-to-speech, answered sentence by sentence as the text comes in (the first
clause at once, so speaking starts early). Speech-to-text starts before the audio stops, while
Home Assistant streams the silence that ends a command (``early_transcript``).

Audio the server cannot use (not 16 kHz 16-bit mono, a chunk that changes format mid-stream, a
torn sample, too long an utterance) and events it cannot read get an ``error`` event with a code
and a message saying what was expected; that connection ends, every other one goes on.

The port has no authentication, so what one connection can cost is bounded, and each bound is
checked before the bytes it concerns are read (``frames.read_frame``): the size of an event's
header, data and payload; 60 s of audio per utterance; wake word audio at most 60 s ahead of the
time the connection has been open (Home Assistant streams to the wake word engine for as long as
it listens, hours on end, so a total would cut it off; real time is what it never exceeds);
text-to-speech text; the time a client may take to send its next event; and the number of
connections. Inference runs on the voice service's own threads, never on the event loop's default
executor, so the worker's API answers while every voice thread is busy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
import logging
import time
from typing import TYPE_CHECKING, TypeVar, cast

from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.info import Describe
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
)
from wyoming.wake import Detect, Detection, NotDetected

from .early_transcript import EarlyTranscriber
from .frames import MAX_HEADER_BYTES, ClientError, read_frame
from .tts import first_clause, piece_budget, split_sentences, spoken_length

if TYPE_CHECKING:
    from .service import VoiceService
    from .wake import WakeStream

_LOGGER = logging.getLogger(__name__)

RATE = 16000
WIDTH = 2
CHANNELS = 1
BYTES_PER_S = RATE * WIDTH * CHANNELS
# A spoken command is seconds long; this bounds what one connection can make the worker hold.
MAX_UTTERANCE_S = 60
MAX_UTTERANCE_BYTES = MAX_UTTERANCE_S * BYTES_PER_S
# How far wake word audio may run ahead of real time (a client may send what it buffered).
MAX_WAKE_AHEAD_S = 60
# Some five minutes of speech; an answer for a loudspeaker is far shorter.
MAX_TTS_CHARS = 5000
# Text-to-speech audio goes out in chunks of about 85 ms at 24 kHz, so playback can start early.
TTS_CHUNK_BYTES = 4096
# Refused connections are logged at most this often, so a flood does not flood the log too.
REFUSAL_LOG_INTERVAL_S = 60.0


class VoiceHandler(AsyncEventHandler):
    """One client connection."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        service: VoiceService,
        *,
        idle_timeout: float,
    ) -> None:
        super().__init__(reader, writer)
        self._service = service
        self._idle_timeout = idle_timeout
        self._peer = _peer(writer)
        self._opened = time.monotonic()
        self._wake_bytes = 0
        self._streaming_chars = 0
        self._mode: str | None = None  # "wake" or "asr" once audio has started
        self._wake_names: list[str] | None = None
        self._wake_stream: WakeStream | None = None
        self._detected = False
        self._transcribe: Transcribe | None = None
        self._audio = bytearray()
        self._audio_ms = 0
        self._early: EarlyTranscriber | None = None
        self._answered = False  # the command's transcript went before its audio stopped
        self._streaming_text: str | None = None
        self._streaming_started = False
        self._said = 0  # letters of speech sent in the current reply (pieces grow from it)

    async def run(self) -> None:
        """Read events until the client leaves; an unreadable event is answered, not raised."""
        try:
            while True:
                try:
                    async with asyncio.timeout(self._idle_timeout):
                        event = await read_frame(self.reader, check_payload=self._check_payload)
                except ClientError as err:
                    await self._send_error(err.code, str(err))
                    break
                except TimeoutError:
                    await self._send_error(
                        "idle_timeout",
                        f"No complete event within {self._idle_timeout:g} s; closing",
                    )
                    break
                if event is None or not await self._handle_safely(event):
                    break
                # An event already buffered is read without waiting: let the other connections
                # and the worker's API have the loop between events, not between buffers.
                await asyncio.sleep(0)
        except (ConnectionError, asyncio.IncompleteReadError):
            _LOGGER.debug("Wyoming client went away")
        finally:
            await self.disconnect()
            self.writer.close()

    async def _handle_safely(self, event: Event) -> bool:
        try:
            return await self.handle_event(event)
        except ClientError as err:
            await self._send_error(err.code, str(err))
            return False

    def _check_payload(self, event_type: str, length: int) -> None:
        """Refuse audio over the connection's limits before it is read."""
        if not AudioChunk.is_type(event_type):
            return
        if self._mode == "asr" or (self._mode is None and self._transcribe is not None):
            if len(self._audio) + length > MAX_UTTERANCE_BYTES:
                raise ClientError(
                    "audio_too_long",
                    f"Speech-to-text takes at most {MAX_UTTERANCE_S} s of audio per request",
                )
            return
        allowed = (time.monotonic() - self._opened + MAX_WAKE_AHEAD_S) * BYTES_PER_S
        if self._wake_bytes + length > allowed:
            raise ClientError(
                "audio_too_fast",
                f"Wake word audio may run at most {MAX_WAKE_AHEAD_S} s ahead of real time",
            )

    async def handle_event(self, event: Event) -> bool:  # noqa: PLR0911 - one branch per event kind
        """Answer one event; False ends the connection."""
        if Describe.is_type(event.type):
            # Describing reads the model folders: not on the event loop.
            info = await asyncio.to_thread(self._service.info)
            await self.write_event(info.event())
            return True
        if Ping.is_type(event.type):
            await self.write_event(Pong(text=_parse(Ping, event, text=_text_or_none).text).event())
            return True
        if Detect.is_type(event.type):
            self._wake_names = _parse(Detect, event, names=_names).names or None
            return True
        if Transcribe.is_type(event.type):
            self._transcribe = _parse(Transcribe, event, name=_text_or_none, language=_text_or_none)
            return True
        if AudioStart.is_type(event.type):
            await self._start_audio(_parse(AudioStart, event, **_FORMAT))
            return True
        if AudioChunk.is_type(event.type):
            await self._audio_chunk(_parse(AudioChunk, event, **_FORMAT))
            return True
        if AudioStop.is_type(event.type):
            await self._stop_audio()
            return True
        return await self._handle_tts(event)

    async def _handle_tts(self, event: Event) -> bool:
        if SynthesizeStart.is_type(event.type):
            self._streaming_text = ""
            self._streaming_chars = 0
            self._streaming_started = False
            self._said = 0
            return True
        if SynthesizeChunk.is_type(event.type):
            if self._streaming_text is None:
                raise ClientError("unexpected_event", "synthesize-chunk before synthesize-start")
            text = _parse(SynthesizeChunk, event, text=_text).text
            self._streaming_chars += len(text)
            _check_text_length(self._streaming_chars)
            self._streaming_text += text
            await self._speak_complete_sentences()
            return True
        if SynthesizeStop.is_type(event.type):
            if self._streaming_text is None:
                raise ClientError("unexpected_event", "synthesize-stop before synthesize-start")
            rest, self._streaming_text = self._streaming_text, None
            if rest.strip():
                await self._speak(rest, voice=None)
            if not self._streaming_started:
                await self._begin_tts_audio()
            await self.write_event(AudioStop().event())
            await self.write_event(SynthesizeStopped().event())
            return True
        if Synthesize.is_type(event.type):
            if self._streaming_text is not None:
                # Clients that stream send the whole text once more for older servers.
                return True
            synthesize = _parse(Synthesize, event, text=_text, voice=_voice)
            _check_text_length(len(synthesize.text))
            voice = synthesize.voice.name if synthesize.voice else None
            self._streaming_started = False
            self._said = 0
            await self._speak(synthesize.text, voice=voice)
            if not self._streaming_started:
                await self._begin_tts_audio()
            await self.write_event(AudioStop().event())
            return True
        _LOGGER.debug("Ignoring Wyoming event %s", event.type)
        return True

    # Audio in: wake word or speech-to-text ----------------------------------------------------

    async def _start_audio(self, start: AudioStart) -> None:
        _check_format(start.rate, start.width, start.channels)
        self._audio.clear()
        self._audio_ms = 0
        self._detected = False
        if self._transcribe is not None:
            self._mode = "asr"
            if (reason := self._service.stt_unavailable()) is not None:
                raise ClientError("stt_unavailable", reason)
            self._start_transcript(self._transcribe.language)
            return
        self._mode = "wake"
        if (reason := self._service.wake_unavailable()) is not None:
            raise ClientError("wake_unavailable", reason)
        if self._wake_stream is not None:
            self._wake_stream.close()
        # Opening loads the models the first time: not on the event loop.
        self._wake_stream = await self._service.run_inference(
            self._service.open_wake_stream, self._wake_names
        )

    async def _audio_chunk(self, chunk: AudioChunk) -> None:
        if self._mode is None:
            # Audio without audio-start: take it as wake word audio, as wyoming-openwakeword does.
            await self._start_audio(AudioStart(rate=chunk.rate, width=chunk.width, channels=1))
        _check_format(chunk.rate, chunk.width, chunk.channels)
        if len(chunk.audio) % (WIDTH * CHANNELS):
            raise ClientError(
                "invalid_audio",
                f"An audio chunk of {len(chunk.audio)} bytes is not whole 16-bit samples",
            )
        if self._mode == "asr":
            if self._answered:
                return  # what the client sends until it reads the transcript
            if len(self._audio) + len(chunk.audio) > MAX_UTTERANCE_BYTES:
                raise ClientError(
                    "audio_too_long",
                    f"Speech-to-text takes at most {MAX_UTTERANCE_S} s of audio per request",
                )
            self._audio += chunk.audio
            assert self._early is not None
            self._early.heard(self._audio, chunk.audio)
            if self._early.speech_ended():
                # Home Assistant takes a transcript before its audio-stop and stops streaming;
                # what it sends until then is not part of the command.
                self._answered = True
                started = time.perf_counter()
                try:
                    text = await self._early.finish(self._audio)
                finally:
                    self._audio.clear()
                await self.write_event(Transcript(text=text, language=self._language()).event())
                self._service.timings.record("stt", time.perf_counter() - started)
            return
        assert self._wake_stream is not None
        self._wake_bytes += len(chunk.audio)
        detections = await self._service.run_inference(self._wake_stream.process, chunk.audio)
        for detection in detections:
            self._detected = True
            await self.write_event(
                Detection(name=detection.name, timestamp=detection.timestamp_ms).event()
            )

    async def _stop_audio(self) -> None:
        mode, self._mode = self._mode, None
        if mode == "asr":
            language = self._language()
            self._transcribe = None
            early, self._early = self._early, None
            assert early is not None
            if self._answered:
                return
            started = time.perf_counter()
            try:
                text = await early.finish(self._audio)
            finally:
                self._audio.clear()
            await self.write_event(Transcript(text=text, language=language).event())
            self._service.timings.record("stt", time.perf_counter() - started)
        elif mode == "wake":
            if not self._detected:
                await self.write_event(NotDetected().event())
            if self._wake_stream is not None:
                self._wake_stream.close()
                self._wake_stream = None

    def _start_transcript(self, language: str | None) -> None:
        """A new utterance: its transcription may start, and end, before its audio stops."""
        if self._early is not None:
            self._early.cancel()
        self._answered = False

        async def transcribe(audio: bytes) -> str:
            return await self._service.transcribe(audio, language=language)

        self._early = EarlyTranscriber(transcribe, end_of_speech_s=self._service.stt_end_of_speech)

    def _language(self) -> str | None:
        return self._transcribe.language if self._transcribe else None

    # Text-to-speech ---------------------------------------------------------------------------

    async def _speak_complete_sentences(self) -> None:
        assert self._streaming_text is not None
        sentences = split_sentences(self._streaming_text)
        # The last piece may still be growing; speak everything before it.
        if len(sentences) < 2:
            await self._speak_first_clause(sentences)
            return
        *complete, last = sentences
        self._streaming_text = last
        for sentence in complete:
            await self._speak(sentence, voice=None)

    async def _speak_first_clause(self, sentences: list[str]) -> None:
        """Speak the growing last sentence's first clause once the words after it have come
        (the head of :func:`first_clause` ends on a whole word), if it is short enough to say
        now: the first piece early, each later one no longer than all said before it."""
        assert self._streaming_text is not None
        if not sentences:
            return
        budget = piece_budget(self._said)
        cut = first_clause(sentences[-1], max_chars=budget, first=not self._said)
        if cut is None:
            return
        head, rest = cut
        text = self._streaming_text
        self._streaming_text = rest + text[len(text.rstrip()) :]  # a newline still ends it
        await self._speak(head, voice=None)

    async def _speak(self, text: str, *, voice: str | None) -> None:
        async for pcm in self._service.synthesize(text, voice=voice, said=self._said):
            if not self._streaming_started:
                await self._begin_tts_audio()
            for start in range(0, len(pcm), TTS_CHUNK_BYTES):
                await self.write_event(
                    AudioChunk(
                        rate=self._service.tts_rate,
                        width=WIDTH,
                        channels=CHANNELS,
                        audio=pcm[start : start + TTS_CHUNK_BYTES],
                    ).event()
                )
        self._said += spoken_length(text)

    async def _begin_tts_audio(self) -> None:
        self._streaming_started = True
        await self.write_event(
            AudioStart(rate=self._service.tts_rate, width=WIDTH, channels=CHANNELS).event()
        )

    async def _send_error(self, code: str, message: str) -> None:
        _LOGGER.info("Closing Wyoming connection from %s (%s): %s", self._peer, code, message)
        await _write_error(self.writer, code, message)

    async def disconnect(self) -> None:
        """Release the connection's wake stream and stop its early transcription."""
        if self._early is not None:
            self._early.cancel()
            self._early = None
        if self._wake_stream is not None:
            self._wake_stream.close()
            self._wake_stream = None


async def _write_error(writer: asyncio.StreamWriter, code: str, message: str) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        async with asyncio.timeout(1):
            await async_write_event(Error(text=message, code=code).event(), writer)


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or "?")


def _check_text_length(length: int) -> None:
    if length > MAX_TTS_CHARS:
        raise ClientError(
            "text_too_long",
            f"Text-to-speech takes at most {MAX_TTS_CHARS} characters per request, not {length}",
        )


# Checks of an event's fields: what each must be.
def _text(value: object) -> bool:
    return isinstance(value, str)


def _text_or_none(value: object) -> bool:
    return value is None or isinstance(value, str)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _names(value: object) -> bool:
    return value is None or (isinstance(value, list) and all(map(_text, value)))


def _voice(value: object) -> bool:
    return value is None or (
        _text_or_none(getattr(value, "name", None))
        and _text_or_none(getattr(value, "language", None))
    )


_FORMAT = {"rate": _whole, "width": _whole, "channels": _whole}
_Parsed = TypeVar("_Parsed")


def _parse(kind: type[_Parsed], event: Event, **fields: Callable[[object], bool]) -> _Parsed:
    """``kind.from_event(event)`` with ``fields`` checked: an event that lacks what its type
    needs, or carries the wrong kind of value, is the client's error, not the server's."""
    try:
        parsed = kind.from_event(event)  # type: ignore[attr-defined]
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ClientError(
            "invalid_event", f"A {event.type} event that lacks what it needs ({err!r})"
        ) from err
    for name, valid in fields.items():
        if not valid(getattr(parsed, name, None)):
            raise ClientError("invalid_event", f"A {event.type} event with a bad {name}")
    return cast(_Parsed, parsed)


def _check_format(rate: int, width: int, channels: int) -> None:
    if (rate, width, channels) != (RATE, WIDTH, CHANNELS):
        raise ClientError(
            "unsupported_audio",
            f"Audio must be {RATE} Hz, {WIDTH * 8}-bit, mono; got {rate} Hz, {width * 8}-bit, "
            f"{channels} channel(s)",
        )


class WyomingServer:
    """A TCP listener whose connections each get a :class:`VoiceHandler`."""

    def __init__(
        self,
        service: VoiceService,
        host: str,
        port: int,
        *,
        max_connections: int,
        idle_timeout: float,
    ) -> None:
        self._service = service
        self._host = host
        self._port = port
        self._max_connections = max_connections
        self._idle_timeout = idle_timeout
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._refused = 0
        self._refusal_logged = -REFUSAL_LOG_INTERVAL_S

    @property
    def port(self) -> int:
        """The bound port (the one asked for, or the one the system chose for port 0)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Listen; connections are served as they come."""
        self._server = await asyncio.start_server(
            self._serve, self._host, self._port, limit=MAX_HEADER_BYTES
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._connections) >= self._max_connections:
            await self._refuse(writer)
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            handler = VoiceHandler(reader, writer, self._service, idle_timeout=self._idle_timeout)
            await handler.run()
        except Exception:
            _LOGGER.exception("Wyoming connection failed")
        finally:
            self._connections.discard(task)

    async def _refuse(self, writer: asyncio.StreamWriter) -> None:
        self._refused += 1
        now = time.monotonic()
        if now - self._refusal_logged >= REFUSAL_LOG_INTERVAL_S:
            _LOGGER.warning(
                "Refused %d Wyoming connection(s) (the last from %s): %d are open, the most "
                "voice_max_connections allows",
                self._refused,
                _peer(writer),
                self._max_connections,
            )
            self._refused, self._refusal_logged = 0, now
        await _write_error(
            writer,
            "too_many_connections",
            f"This voice server serves at most {self._max_connections} connections at once; "
            "try again later",
        )
        writer.close()

    async def stop(self) -> None:
        """Stop listening and end every open connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
