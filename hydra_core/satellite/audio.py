"""Microphone sources and speaker sinks for the voice satellite.

Every microphone source yields 16 kHz, 16-bit, mono PCM in fixed chunks (80 ms) whatever it reads:
a command's stdout (``arecord ... -t raw``), a file or stdin, raw or WAV (a RIFF header is
recognised and its format converted). Speakers take the text-to-speech audio Home Assistant
streams and hand it to a command's stdin (``aplay ...``), write it to a WAV file, or drop it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence
import contextlib
from dataclasses import dataclass
import logging
import os
from pathlib import Path
import shlex
import stat
import struct
import sys
import time
from typing import BinaryIO, Protocol
import wave

from wyoming.audio import AudioChunk, AudioChunkConverter

from ..background import cancel

_LOGGER = logging.getLogger(__name__)

MIC_RATE = 16000
MIC_WIDTH = 2
MIC_CHANNELS = 1
MIC_SAMPLES_PER_CHUNK = 1280  # 80 ms: what the wake word models take per step
MIC_CHUNK_BYTES = MIC_SAMPLES_PER_CHUNK * MIC_WIDTH * MIC_CHANNELS
_STDERR_LINES = 20
_STOP_GRACE_S = 2.0


class AudioSourceError(Exception):
    """A microphone source cannot be opened."""


class MicEnded(Exception):
    """The microphone source stopped delivering audio.

    ``restartable`` says whether opening it again may bring audio back (a command that died),
    as opposed to the end of a file.
    """

    def __init__(self, message: str, *, restartable: bool) -> None:
        super().__init__(message)
        self.restartable = restartable


@dataclass(frozen=True)
class PcmFormat:
    """Rate (Hz), sample width (bytes) and channels of raw PCM audio."""

    rate: int
    width: int
    channels: int

    @property
    def bytes_per_second(self) -> int:
        return self.rate * self.width * self.channels


MIC_FORMAT = PcmFormat(MIC_RATE, MIC_WIDTH, MIC_CHANNELS)


def split_command(command: str | Sequence[str]) -> list[str]:
    """A command line as an argument list (a string is split as a POSIX shell would)."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if not argv:
        raise ValueError("empty command")
    return argv


# -- reading ------------------------------------------------------------------------------------


class _ByteReader(Protocol):
    async def read(self, size: int) -> bytes:
        """Exactly ``size`` bytes, fewer only at the end of the stream."""
        ...


class _FileReader:
    """A regular file (local disk: reads do not block for long)."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle

    async def read(self, size: int) -> bytes:
        return self._handle.read(size)


class _StreamReader:
    """An asyncio stream (a pipe); cancelling a read loses no data."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    async def read(self, size: int) -> bytes:
        try:
            return await self._reader.readexactly(size)
        except asyncio.IncompleteReadError as err:
            return err.partial


async def _read_wav_header(reader: _ByteReader) -> PcmFormat:
    """Parse a RIFF/WAVE header after its first 4 bytes (``RIFF``); returns the format.

    Works on streams (it never seeks), so ``arecord -t wav`` output and WAV on stdin work too.
    """
    rest = await reader.read(8)
    if len(rest) < 8 or rest[4:8] != b"WAVE":
        raise AudioSourceError("input starts with RIFF but is not a WAVE file")
    fmt: PcmFormat | None = None
    while True:
        head = await reader.read(8)
        if len(head) < 8:
            raise AudioSourceError("WAV input ended before its data chunk")
        chunk_id, size = head[:4], struct.unpack("<I", head[4:])[0]
        if chunk_id == b"data":
            if fmt is None:
                raise AudioSourceError("WAV input has no fmt chunk before its data")
            return fmt
        body = await reader.read(size + (size & 1))
        if chunk_id == b"fmt ":
            if len(body) < 16:
                raise AudioSourceError("WAV fmt chunk is too short")
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag not in (1, 0xFFFE):  # PCM, or WAVE_FORMAT_EXTENSIBLE (PCM in practice)
                raise AudioSourceError(f"WAV input is not PCM (format tag {tag})")
            if bits not in (8, 16, 24, 32) or channels < 1 or rate < 1:
                raise AudioSourceError("WAV input has an unsupported sample format")
            fmt = PcmFormat(rate, bits // 8, channels)


class _PcmChunker:
    """Turns a byte reader (raw 16 kHz s16le mono, or any PCM WAV) into 80 ms mic chunks."""

    def __init__(self, reader: _ByteReader, label: str) -> None:
        self._reader = reader
        self._label = label
        self._fmt: PcmFormat | None = None
        self._converter: AudioChunkConverter | None = None
        self._pending = b""

    async def _start(self) -> None:
        first = await self._reader.read(4)
        if first == b"RIFF":
            self._fmt = await _read_wav_header(self._reader)
            if self._fmt != MIC_FORMAT:
                _LOGGER.info(
                    "%s: converting WAV audio from %s Hz/%s-bit/%s ch to 16 kHz/16-bit/mono",
                    self._label,
                    self._fmt.rate,
                    self._fmt.width * 8,
                    self._fmt.channels,
                )
                self._converter = AudioChunkConverter(MIC_RATE, MIC_WIDTH, MIC_CHANNELS)
        else:
            self._fmt = MIC_FORMAT
            self._pending = first

    async def read_chunk(self) -> bytes:
        """The next 80 ms chunk; a shorter final chunk; b"" at the end."""
        if self._fmt is None:
            await self._start()
        assert self._fmt is not None
        if self._converter is None:
            need = MIC_CHUNK_BYTES - len(self._pending)
            data = self._pending + (await self._reader.read(need) if need > 0 else b"")
            self._pending = b""
            return _whole_samples(data, MIC_WIDTH)
        # Convert: read the same duration in the source format.
        frame = self._fmt.width * self._fmt.channels
        want = MIC_SAMPLES_PER_CHUNK * self._fmt.rate // MIC_RATE * frame
        data = self._pending + await self._reader.read(want - len(self._pending))
        self._pending = b""
        data = data[: len(data) - len(data) % frame]
        if not data:
            return b""
        chunk = AudioChunk(self._fmt.rate, self._fmt.width, self._fmt.channels, data)
        return self._converter.convert(chunk).audio


def _whole_samples(data: bytes, width: int) -> bytes:
    return data[: len(data) - len(data) % width]


class MicSource(Protocol):
    """Where microphone audio comes from."""

    label: str

    async def open(self) -> None:
        """Start delivering audio (again). Raises AudioSourceError."""
        ...

    async def read_chunk(self) -> bytes:
        """The next chunk of 16 kHz s16le mono audio. Raises MicEnded."""
        ...

    async def pause(self) -> None:
        """Home Assistant paused the satellite: release what can be released."""
        ...

    async def close(self) -> None:
        """The satellite stops."""
        ...


class CommandMic:
    """A command that writes raw (or WAV) audio to stdout, such as ``arecord``.

    It is started when Home Assistant runs the satellite and stopped when it pauses or goes
    away, so the sound device is free while nobody listens. When it dies the caller restarts it.
    """

    def __init__(self, command: str | Sequence[str]) -> None:
        self.argv = split_command(command)
        self.label = f"microphone command {self.argv[0]!r}"
        self._proc: asyncio.subprocess.Process | None = None
        self._chunker: _PcmChunker | None = None
        self._stderr: deque[str] = deque(maxlen=_STDERR_LINES)
        self._stderr_task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            return
        await self._reap()
        self._stderr.clear()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as err:
            raise AudioSourceError(f"cannot start {shlex.join(self.argv)}: {err}") from err
        assert self._proc.stdout is not None
        assert self._proc.stderr is not None
        self._chunker = _PcmChunker(_StreamReader(self._proc.stdout), self.label)
        self._stderr_task = asyncio.create_task(self._collect_stderr(self._proc.stderr))
        _LOGGER.info("Microphone started: %s (pid %s)", shlex.join(self.argv), self._proc.pid)

    async def _collect_stderr(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip()
            if text:
                self._stderr.append(text)
                _LOGGER.debug("mic: %s", text)

    async def read_chunk(self) -> bytes:
        if self._proc is None or self._chunker is None:
            raise MicEnded("microphone is not running", restartable=True)
        try:
            chunk = await self._chunker.read_chunk()
        except AudioSourceError as err:
            raise MicEnded(f"{self.label}: {err}", restartable=True) from err
        if len(chunk) == MIC_CHUNK_BYTES:
            return chunk
        # Fewer bytes than a chunk: stdout closed, the command is ending.
        proc = self._proc
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), _STOP_GRACE_S)
        if self._stderr_task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._stderr_task), 0.5)
        detail = " | ".join(self._stderr) or "no error output"
        code = proc.returncode
        raise MicEnded(
            f"{self.label} stopped (exit code {code}): {detail}",
            restartable=True,
        )

    async def _reap(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), _STOP_GRACE_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        task, self._stderr_task = self._stderr_task, None
        await cancel(task)
        if proc is not None:
            # The process has exited, but its stdout pipe may still hold unread audio: close
            # the transport, or it is left for the garbage collector (after the loop closed).
            transport = getattr(proc, "_transport", None)
            if transport is not None:
                transport.close()

    async def pause(self) -> None:
        if self._proc is not None:
            _LOGGER.info("Microphone stopped (satellite paused)")
        await self._reap()

    async def close(self) -> None:
        await self._reap()


class FileMic:
    """A file, or stdin for ``-``: raw 16 kHz s16le mono or WAV, read once at ``speed``.

    ``speed`` 1.0 paces the reads in real time, as a microphone would deliver them; 0 reads as
    fast as the satellite processes. The position survives a pause; the end of the input ends
    the microphone for good.
    """

    def __init__(self, path: str | Path, *, speed: float = 1.0) -> None:
        self.path = str(path)
        self.label = "stdin" if self.path == "-" else f"microphone file {self.path}"
        self.speed = speed
        self._handle: BinaryIO | None = None
        self._chunker: _PcmChunker | None = None
        self._t0: float | None = None
        self._sent_s = 0.0
        self._ended = False

    async def open(self) -> None:
        if self._ended:
            raise MicEnded(f"{self.label} has ended", restartable=False)
        if self._chunker is not None:
            return
        if self.path == "-":
            reader = await self._stdin_reader()
        else:
            try:
                self._handle = open(self.path, "rb")  # noqa: ASYNC230, SIM115 - local file
            except OSError as err:
                raise AudioSourceError(f"cannot open {self.path}: {err}") from err
            reader = _FileReader(self._handle)
        self._chunker = _PcmChunker(reader, self.label)
        _LOGGER.info("Microphone: reading %s", self.label)

    async def _stdin_reader(self) -> _ByteReader:
        fd = sys.stdin.fileno()
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return _FileReader(sys.stdin.buffer)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        return _StreamReader(reader)

    async def read_chunk(self) -> bytes:
        if self._chunker is None:
            raise MicEnded(f"{self.label} is not open", restartable=False)
        try:
            chunk = await self._chunker.read_chunk()
        except AudioSourceError as err:
            self._ended = True
            raise MicEnded(f"{self.label}: {err}", restartable=False) from err
        if not chunk:
            self._ended = True
            raise MicEnded(f"end of {self.label}", restartable=False)
        if self.speed > 0:
            now = time.monotonic()
            if self._t0 is None:
                self._t0, self._sent_s = now, 0.0
            self._sent_s += len(chunk) / MIC_FORMAT.bytes_per_second
            due = self._t0 + self._sent_s / self.speed
            if due > now:
                await asyncio.sleep(due - now)
        return chunk

    async def pause(self) -> None:
        self._t0 = None  # restart the pacing clock on resume

    async def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


# -- playing ------------------------------------------------------------------------------------


class Speaker(Protocol):
    """Where sound goes: text-to-speech replies and the awake/done sounds."""

    async def play(self, fmt: PcmFormat, audio: AsyncIterator[bytes]) -> None:
        """Play one sound to its end (the iterator's end). Raises OSError on failure."""
        ...


class NullSpeaker:
    """No speaker configured: sounds are consumed and dropped."""

    async def play(self, fmt: PcmFormat, audio: AsyncIterator[bytes]) -> None:
        async for _ in audio:
            pass


class CommandSpeaker:
    """A command that plays raw PCM from stdin (``aplay -r 22050 -c 1 -f S16_LE -t raw``).

    One process per sound: its stdin is closed at the end and the sound has played when it
    exits. Audio is converted to ``fmt`` (the format the command line states).
    """

    def __init__(
        self, command: str | Sequence[str], fmt: PcmFormat, *, timeout_extra_s: float = 5.0
    ) -> None:
        self.argv = split_command(command)
        self.fmt = fmt
        self.timeout_extra_s = timeout_extra_s

    async def play(self, fmt: PcmFormat, audio: AsyncIterator[bytes]) -> None:
        converter = AudioChunkConverter(self.fmt.rate, self.fmt.width, self.fmt.channels)
        proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None
        assert proc.stderr is not None
        stderr_task = asyncio.create_task(proc.stderr.read())
        seconds = 0.0
        broken: OSError | None = None
        try:
            async for data in audio:
                if broken is not None:
                    continue  # drain the stream so the sender is not blocked
                chunk = converter.convert(AudioChunk(fmt.rate, fmt.width, fmt.channels, data))
                seconds += chunk.seconds
                try:
                    proc.stdin.write(chunk.audio)
                    await proc.stdin.drain()
                except (BrokenPipeError, ConnectionResetError) as err:
                    broken = err
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.close()
                await proc.stdin.wait_closed()
            try:
                await asyncio.wait_for(proc.wait(), seconds + self.timeout_extra_s)
            except TimeoutError:
                _LOGGER.warning("Speaker command did not finish in time; stopping it")
                proc.kill()
                await proc.wait()
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            err_text = (await stderr_task).decode(errors="replace").strip()
        if broken is not None or proc.returncode:
            raise OSError(
                f"speaker command {shlex.join(self.argv)} failed (exit code {proc.returncode}): "
                f"{err_text or broken or 'no error output'}"
            )


class WavFileSpeaker:
    """Writes each sound to a WAV file (replaced atomically when the sound is complete)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    async def play(self, fmt: PcmFormat, audio: AsyncIterator[bytes]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.part")
        data = bytearray()
        async for chunk in audio:
            data += chunk
        await asyncio.to_thread(_write_wav, tmp, fmt, bytes(data))
        os.replace(tmp, self.path)


def _write_wav(path: Path, fmt: PcmFormat, data: bytes) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setframerate(fmt.rate)
        wav.setsampwidth(fmt.width)
        wav.setnchannels(fmt.channels)
        wav.writeframes(data)


def read_wav(path: str | Path) -> tuple[PcmFormat, bytes]:
    """A WAV file's format and frames (for the awake/done sounds)."""
    try:
        with wave.open(str(path), "rb") as wav:
            fmt = PcmFormat(wav.getframerate(), wav.getsampwidth(), wav.getnchannels())
            return fmt, wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as err:
        raise AudioSourceError(f"cannot read WAV file {path}: {err}") from err
