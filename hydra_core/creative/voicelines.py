"""Voice line files: Kokoro's 24 kHz mono PCM, loudness-normalised, as Ogg/Opus or 16-bit WAV.

Normalisation is RMS-based: every line is scaled to ``TARGET_RMS_DBFS`` (-20 dBFS RMS), then
scaled down where needed so that no sample peaks above ``PEAK_CEILING_DBFS`` (-1 dBFS), so
lines from different voices play at one level and none clips. It is not an LUFS (ITU-R
BS.1770) measurement: for one speaker's dry speech RMS tracks perceived loudness closely enough.

Ogg/Opus (48 kbit/s, the size of a speech line at about a tenth of WAV's) is written with PyAV,
which faster-whisper already brings into the worker; where PyAV or its libopus encoder is
missing the files are 16-bit WAV from the standard library instead. Ren'Py plays both.

``VoiceLineCache`` keeps one file per (text, voice profile) in a folder, named by a hash of
both, so a line that was spoken once is never synthesised again, even by concurrent callers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
import hashlib
import io
import json
from pathlib import Path
import wave

import numpy as np

from ..errors import Refusal
from ..state_files import write_atomic

SAMPLE_RATE = 24_000
TARGET_RMS_DBFS = -20.0
PEAK_CEILING_DBFS = -1.0
OPUS_BIT_RATE = 48_000
#: The sample rates Opus encodes natively (others would need resampling).
OPUS_RATES = frozenset((8_000, 12_000, 16_000, 24_000, 48_000))
#: Part of every cache key: bump it when what a file holds for the same line changes.
_FORMAT_VERSION = 1


class VoiceLineError(Refusal, code="invalid_payload"):
    """Audio or a line that cannot become a voice file (empty, silent, not finite, unreadable)."""


@dataclass(frozen=True, kw_only=True)
class VoiceProfile:
    """How a character speaks: a Kokoro voice name (or the engine's blend spec) and a speed."""

    voice: str
    speed: float = 1.0


def pcm_to_float(audio: np.ndarray | bytes) -> np.ndarray:
    """Mono samples as float32 in [-1, 1]: int16 (array or s16le bytes) or float arrays."""
    if isinstance(audio, bytes | bytearray):
        if len(audio) % 2:
            raise VoiceLineError("16-bit PCM must have an even number of bytes")
        audio = np.frombuffer(audio, dtype="<i2")
    array = np.asarray(audio)
    if array.ndim != 1:
        raise VoiceLineError(f"Voice audio must be mono (one dimension), not shape {array.shape}")
    if array.size == 0:
        raise VoiceLineError("The voice audio is empty")
    if array.dtype == np.int16:
        return array.astype(np.float32) / 32768.0
    if not np.issubdtype(array.dtype, np.floating):
        raise VoiceLineError(f"Voice audio must be int16 or float samples, not {array.dtype}")
    samples = array.astype(np.float32)
    if not np.isfinite(samples).all():
        raise VoiceLineError("The voice audio holds samples that are not finite (NaN or inf)")
    return samples


def normalise(audio: np.ndarray | bytes) -> np.ndarray:
    """Scale to ``TARGET_RMS_DBFS`` RMS, but never above ``PEAK_CEILING_DBFS`` peak."""
    samples = pcm_to_float(audio)
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    peak = float(np.max(np.abs(samples)))
    if rms < 1e-6:
        raise VoiceLineError("The voice audio is silent: there is nothing to normalise")
    gain = min(10 ** (TARGET_RMS_DBFS / 20) / rms, 10 ** (PEAK_CEILING_DBFS / 20) / peak)
    return (samples * gain).astype(np.float32)


def opus_available() -> bool:
    """Whether PyAV with a libopus encoder is installed (else voice files are WAV)."""
    try:
        import av  # noqa: PLC0415
    except ImportError:
        return False
    return "libopus" in av.codecs_available


def _int16(samples: np.ndarray) -> np.ndarray:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")


def encode_ogg_opus(samples: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """Float mono samples as an Ogg/Opus file."""
    import av  # noqa: PLC0415

    if rate not in OPUS_RATES:
        raise VoiceLineError(f"Opus cannot encode {rate} Hz audio; use one of {sorted(OPUS_RATES)}")
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="ogg") as output:
        stream = output.add_stream("libopus", rate=rate, layout="mono")
        stream.bit_rate = OPUS_BIT_RATE
        frame = av.AudioFrame.from_ndarray(_int16(samples)[None, :], format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return buffer.getvalue()


def encode_wav(samples: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """Float mono samples as a 16-bit PCM WAV file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as output:
        output.setnchannels(1)
        output.setsampwidth(2)
        output.setframerate(rate)
        output.writeframes(_int16(samples).tobytes())
    return buffer.getvalue()


def voice_file(audio: np.ndarray | bytes, *, rate: int = SAMPLE_RATE, opus: bool = True) -> bytes:
    """A normalised voice file: Ogg/Opus when ``opus`` and PyAV can, else 16-bit WAV."""
    samples = normalise(audio)
    if opus and opus_available():
        return encode_ogg_opus(samples, rate)
    return encode_wav(samples, rate)


def suffix_of(data: bytes) -> str:
    """The file suffix a voice file's bytes call for: ".ogg" or ".wav"."""
    return ".ogg" if data.startswith(b"OggS") else ".wav"


def decoded_seconds(path: Path) -> float:
    """Decode the whole audio file at ``path`` and answer its length in seconds.

    Raises VoiceLineError when it is not a playable audio file (missing, empty, corrupt, no
    audio stream, no samples). Uses PyAV, as Ren'Py's own player uses FFmpeg.
    """
    import av  # noqa: PLC0415

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise VoiceLineError(f"{path.name} has no audio stream")
            stream = container.streams.audio[0]
            samples = sum(frame.samples for frame in container.decode(stream))
            rate = stream.codec_context.sample_rate or stream.rate
    except VoiceLineError:
        raise
    except (OSError, av.FFmpegError, ValueError) as err:
        raise VoiceLineError(f"{path.name} is not a playable audio file: {err}") from err
    if not samples or not rate:
        raise VoiceLineError(f"{path.name} holds no audio samples")
    return samples / rate


#: Speaks a line: 24 kHz mono samples (int16 or float array, or s16le bytes).
Synthesiser = Callable[[str, VoiceProfile], Awaitable[np.ndarray | bytes]]


class VoiceLineCache:
    """Voice files in ``folder``, one per (text, voice profile), synthesised at most once."""

    def __init__(self, folder: Path, synthesise: Synthesiser, *, opus: bool = True) -> None:
        self.folder = Path(folder)
        self.synthesise = synthesise
        self.opus = opus and opus_available()
        self._locks: dict[str, asyncio.Lock] = {}

    def key(self, text: str, profile: VoiceProfile) -> str:
        """The cache key of a line: a hash of its text, voice, speed and file format."""
        fields = [_FORMAT_VERSION, text, profile.voice, profile.speed, self.opus]
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:32]

    def path(self, text: str, profile: VoiceProfile) -> Path:
        """Where the line's file is (or will be)."""
        suffix = ".ogg" if self.opus else ".wav"
        return self.folder / f"{self.key(text, profile)}{suffix}"

    async def line(self, text: str, profile: VoiceProfile) -> Path:
        """The voice file of ``text`` spoken with ``profile``, synthesising it if new."""
        if not text.strip():
            raise VoiceLineError("A voice line needs text to speak")
        path = self.path(text, profile)
        lock = self._locks.setdefault(path.name, asyncio.Lock())
        async with lock:
            if path.is_file():
                return path
            audio = await self.synthesise(text, profile)
            data = await asyncio.to_thread(voice_file, audio, opus=self.opus)
            await asyncio.to_thread(write_atomic, path, data)
        return path
