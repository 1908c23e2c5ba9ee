"""Test speech, synthesized at test time with espeak-ng and sox (16 kHz, 16-bit, mono PCM).

``Speech(folder).clip(text, voice, speed)`` speaks ``text`` with one second of silence on both
sides and caches the result. The session fixtures give positives ("Hey Jarvis" in several voices
and speeds) and negatives (near misses and read sentences). If espeak-ng or sox is missing the
fixtures fail with a message saying what to install: these tests are never skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
import shutil
import subprocess
import tempfile
import wave

import numpy as np
import pytest

SAMPLE_RATE = 16000
BYTES_PER_SECOND = 2 * SAMPLE_RATE

WAKE_PHRASE = "Hey Jarvis"
# espeak-ng voices (``espeak-ng --voices=en``) and speeds (words per minute) for positives.
POSITIVE_VOICES = (
    "en-us",
    "en-gb",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-029",
    "en-us-nyc",
    "en-us+f3",
    "en-gb+m3",
)
POSITIVE_SPEEDS = (120, 150, 180)
# The voice@speed pairs the hey_jarvis model misses or scores under 0.9 (pyopen-wakeword's classes
# alike): en-029 at 120 words per minute scores 0.31, en-us+f3 at 180 scores 0.83. Benchmarks
# count them; tests leave them out of the positives that must score above 0.9.
WEAK_POSITIVES = frozenset({"en-029@120", "en-us+f3@180"})
# Phrases the hey_jarvis model scores below 0.2 (checked with pyopen-wakeword's own classes).
NEGATIVE_PHRASES = (
    "jarvis",
    "hey marvin",
    "a harvest",
    "have this",
    "hello there",
    "turn on the lights",
)
NEGATIVE_PHRASE_VOICES = ("en-us", "en-gb", "en-us+f3")
# Near misses the model scores between 0.2 and the threshold: they must not fire.
NEAR_MISSES = (("hey travis", "en-us"), ("hey service", "en-us"), ("hey service", "en-us+f3"))
# Near misses the model itself takes for the wake word (0.8-0.95, pyopen-wakeword's classes
# alike): benchmarks report them, tests do not expect them to stay quiet.
CONFUSABLE = (("hey travis", "en-gb"), ("hey jar", "en-us"), ("hey jar", "en-us+f3"))
SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "It was a bright cold day in April, and the clocks were striking thirteen.",
    "Please turn off the lights in the kitchen and lock the front door.",
    "What is the weather going to be like tomorrow morning in the city?",
    "Set a timer for ten minutes and remind me to check the oven.",
    "Some years ago, never mind how long precisely, I thought I would sail about a little.",
    "The meeting was moved to Thursday afternoon because the room was double booked.",
    "Add milk, eggs, flour and two lemons to the shopping list.",
    "The train to the airport leaves every fifteen minutes from platform four.",
    "Can you play some quiet music in the living room while I read?",
    "He said that the harvest was late this year because of all the rain in June.",
    "Turn the thermostat down two degrees before everyone goes to bed tonight.",
    "The children built a castle of sand and watched the tide wash it away.",
    "Our neighbour Travis fixed the fence after the storm knocked it over.",
    "The service department called to say the car will be ready on Monday.",
    "Every evening the old man walked his dog along the river to the bridge.",
    "Remember to water the plants on the balcony, they look a little dry.",
    "The museum opens at nine and the guided tour starts half an hour later.",
    "She ordered a large coffee with oat milk and a slice of carrot cake.",
    "How many kilometres is it from here to the next petrol station?",
    "The quarterly report shows that sales grew faster than anyone expected.",
    "Hey, did you remember to feed the cat before you left the house?",
    "A jar of honey fell off the shelf and broke on the kitchen floor.",
    "Harvey and Jarrett argued about the football match all evening long.",
)
NEGATIVE_VOICES = ("en-us", "en-gb", "en-gb-x-rp", "en-029", "en-us+f3", "en-gb-scotland")


class SpeechError(RuntimeError):
    """espeak-ng or sox is missing or failed."""


def require_tools() -> None:
    """Raise SpeechError naming what to install when espeak-ng or sox is missing."""
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        raise SpeechError(
            f"{' and '.join(missing)} not found: the wake word tests synthesize their speech "
            "with them (Debian: apt-get install espeak-ng sox)"
        )


class Speech:
    """Speech clips synthesized into ``folder`` and cached there (and in memory)."""

    def __init__(self, folder: Path) -> None:
        require_tools()
        self.folder = folder
        self._cache: dict[tuple[str, str, int, float], bytes] = {}

    def clip(self, text: str, voice: str = "en-us", speed: int = 150, pad_s: float = 1.0) -> bytes:
        """``text`` spoken with ``pad_s`` seconds of silence on both sides, as PCM bytes."""
        key = (text, voice, speed, pad_s)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        stem = f"{len(self._cache):04d}"
        raw = self.folder / f"{stem}-espeak.wav"
        out = self.folder / f"{stem}.wav"
        _run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text])
        pad = f"{pad_s:g}"
        # -D: no dither, so that a clip is the same on every run.
        _run(
            ["sox", "-D", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out), "pad", pad, pad]
        )
        with wave.open(str(out), "rb") as wav:
            if (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) != (16000, 2, 1):
                raise SpeechError(f"sox wrote {out} in an unexpected format")
            audio = wav.readframes(wav.getnframes())
        self._cache[key] = audio
        return audio


def _run(command: list[str]) -> None:
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as err:
        detail = getattr(err, "stderr", b"") or b""
        raise SpeechError(f"{command[0]} failed: {err} {detail.decode(errors='replace')}") from err


_DEFAULT: Speech | None = None


def espeak_clip(text: str, voice: str = "en-us", speed: int = 150, pad_s: float = 1.0) -> bytes:
    """``text`` spoken by espeak-ng (16 kHz s16le mono, ``pad_s`` s of silence on both sides)."""
    global _DEFAULT  # noqa: PLW0603  (one cache per process, for scripts)
    if _DEFAULT is None:
        _DEFAULT = Speech(Path(tempfile.mkdtemp(prefix="hydra-speech-")))
    return _DEFAULT.clip(text, voice, speed, pad_s)


def write_wav(path: Path, audio: bytes) -> Path:
    """16 kHz s16le mono PCM as a WAV file (a microphone file for the satellite)."""
    with wave.open(str(path), "wb") as wav:
        wav.setframerate(16000)
        wav.setsampwidth(2)
        wav.setnchannels(1)
        wav.writeframes(audio)
    return path


# Audio arithmetic ----------------------------------------------------------------------------


def to_array(audio: bytes) -> np.ndarray:
    """PCM bytes as float64 samples."""
    return np.frombuffer(audio, dtype="<i2").astype(np.float64)


def to_bytes(samples: np.ndarray) -> bytes:
    """Float samples as PCM bytes (clipped to 16 bits)."""
    return np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()


def silence(seconds: float) -> bytes:
    """Digital silence."""
    return bytes(2 * round(seconds * SAMPLE_RATE))


def noise(seconds: float, dbfs: float, seed: int = 0) -> bytes:
    """Gaussian noise at ``dbfs`` RMS (dB below a full-scale sine's peak: 32768)."""
    rng = np.random.default_rng(seed)
    samples = rng.normal(0.0, 32768.0 * 10 ** (dbfs / 20), round(seconds * SAMPLE_RATE))
    return to_bytes(samples)


def gain(audio: bytes, db: float) -> bytes:
    """``audio`` made ``db`` louder (negative: quieter)."""
    return to_bytes(to_array(audio) * 10 ** (db / 20))


def overlay(base: bytes, clip: bytes, at_s: float) -> bytes:
    """``clip`` added onto ``base`` starting ``at_s`` seconds in (``base`` keeps its length)."""
    samples = to_array(base)
    add = to_array(clip)
    start = round(at_s * SAMPLE_RATE)
    end = min(len(samples), start + len(add))
    samples[start:end] += add[: end - start]
    return to_bytes(samples)


def seconds(audio: bytes) -> float:
    """Duration of PCM bytes."""
    return len(audio) / BYTES_PER_SECOND


def chunks(audio: bytes, size: int = 2048) -> Iterable[bytes]:
    """``audio`` in pieces of ``size`` bytes (the last may be shorter)."""
    for start in range(0, len(audio), size):
        yield audio[start : start + size]


# Fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Speech:
    """The session's speech synthesizer; fails (never skips) without espeak-ng and sox."""
    try:
        return Speech(tmp_path_factory.mktemp("speech"))
    except SpeechError as err:
        pytest.fail(str(err))


@pytest.fixture(scope="session")
def positives(speech: Speech) -> dict[str, bytes]:
    """ "Hey Jarvis" in several voices and speeds, keyed "voice@speed"."""
    return {
        f"{voice}@{speed}": speech.clip(WAKE_PHRASE, voice, speed)
        for voice in POSITIVE_VOICES
        for speed in POSITIVE_SPEEDS
        if f"{voice}@{speed}" not in WEAK_POSITIVES
    }


@pytest.fixture(scope="session")
def negatives(speech: Speech) -> dict[str, bytes]:
    """Phrases without the wake word in a few voices, keyed "text/voice"."""
    return {
        f"{text}/{voice}": speech.clip(text, voice)
        for text in NEGATIVE_PHRASES
        for voice in NEGATIVE_PHRASE_VOICES
    }


@pytest.fixture(scope="session")
def near_misses(speech: Speech) -> dict[str, bytes]:
    """ "hey travis", "hey service": close to the wake word, below the threshold."""
    return {f"{text}/{voice}": speech.clip(text, voice) for text, voice in NEAR_MISSES}


@pytest.fixture(scope="session")
def read_speech(speech: Speech) -> bytes:
    """About a minute and a half of read sentences without the wake word, back to back."""
    parts = [
        speech.clip(sentence, NEGATIVE_VOICES[index % len(NEGATIVE_VOICES)], pad_s=0.3)
        for index, sentence in enumerate(SENTENCES)
    ]
    return b"".join(parts)
