"""The wake word measurement sets: defined here, rendered at run time, cached (never committed).

Each clip is a definition (engine, voice, speed, text, room noise); ``render`` speaks it with
espeak-ng (+ sox) or Kokoro-82M (the int8 weights the test packages ship, see weights.py), pads
it with one second of silence on both sides, adds seeded noise where asked, and caches the PCM
under ``HYDRA_WAKE_SETS`` (default ``~/.cache/hydra/wake-sets``) keyed by the definition, so a
second run reads files. The same definition always gives the same audio.

* ``POSITIVES``: "Hey Jarvis" in 5 Kokoro voices x 3 speeds and 8 espeak-ng voices x 3 speeds,
  clean and in room noise, and followed by a command in one breath (91 clips).
* ``HARD_NEGATIVES``: sound-alikes ("Hey Travis", "Hey Jasper", "Hey Marvin", "Hey Jar",
  "Harvest", "Jarvis" inside a sentence, ...) in the same 13 voices (104 clips).
* ``ordinary_speech``: 10 minutes of espeak-ng read sentences (benchmarks/wake.py's stream) and
  the same sentences read by the Kokoro voices.
* ``TEST_POSITIVES`` / ``TEST_NEGATIVES``: the fixed small subset the tests use (espeak-ng only).
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
import os
from pathlib import Path
import tempfile
from typing import Any

import numpy as np

from .speech import (
    CONFUSABLE,
    NEGATIVE_VOICES,
    POSITIVE_SPEEDS,
    POSITIVE_VOICES,
    SENTENCES,
    WAKE_PHRASE,
    espeak_clip,
    noise,
    overlay,
    seconds,
    silence,
)

KOKORO_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
KOKORO_SPEEDS = (0.85, 1.0, 1.2)
ROOM_NOISE_DBFS = -45.0  # a fan or a street through a window: audible hiss under the speech
COMMAND_AFTER = "Hey Jarvis, what's the GPU temperature?"
_TRIM = 2 * 11200  # bytes: 0.7 s
SOUND_ALIKES = (
    "Hey Travis",
    "Hey Jasper",
    "Hey Marvin",
    "Hey Jar",
    "Harvest",
    "Have this",
    "I asked Jarvis about it yesterday",
    "Hey service",
)


@dataclass(frozen=True, slots=True)
class WakeClip:
    """One clip of a set: who says what, how fast, in which room."""

    text: str
    engine: str  # "espeak" (speed in words per minute) or "kokoro" (speed as a factor)
    voice: str
    speed: float
    noise_dbfs: float | None = None

    @property
    def key(self) -> str:
        room = "" if self.noise_dbfs is None else f" +noise{self.noise_dbfs:g}"
        return f"{self.text} / {self.engine}:{self.voice}@{self.speed:g}{room}"


def _voices(speeds: bool) -> list[tuple[str, str, float]]:
    kokoro = [
        ("kokoro", v, s) for v in KOKORO_VOICES for s in (KOKORO_SPEEDS if speeds else (1.0,))
    ]
    espeak = [
        ("espeak", v, float(s))
        for v in POSITIVE_VOICES
        for s in (POSITIVE_SPEEDS if speeds else (150,))
    ]
    return kokoro + espeak


def _positives() -> tuple[WakeClip, ...]:
    clean = [WakeClip(WAKE_PHRASE, e, v, s) for e, v, s in _voices(speeds=True)]
    noisy = [WakeClip(c.text, c.engine, c.voice, c.speed, ROOM_NOISE_DBFS) for c in clean]
    command = [WakeClip(COMMAND_AFTER, e, v, s) for e, v, s in _voices(speeds=False)]
    return (*clean, *noisy, *command)


POSITIVES = _positives()
HARD_NEGATIVES = tuple(
    WakeClip(text, e, v, s) for text in SOUND_ALIKES for e, v, s in _voices(speeds=False)
)
# The tests' fixed subset: positives the bare model scores above 0.9, and the sound-alikes it
# takes for the wake word (speech.CONFUSABLE).
TEST_POSITIVES = tuple(
    WakeClip(WAKE_PHRASE, "espeak", voice, speed)
    for voice, speed in (("en-us", 120), ("en-gb", 180), ("en-gb-x-rp", 150), ("en-us-nyc", 120))
)
TEST_NEGATIVES = tuple(WakeClip(text, "espeak", voice, 150) for text, voice in CONFUSABLE)


def cache_dir() -> Path:
    """Where rendered clips are kept."""
    configured = os.environ.get("HYDRA_WAKE_SETS")
    folder = Path(configured) if configured else Path.home() / ".cache" / "hydra" / "wake-sets"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Renderer:
    """Speaks clips (cached on disk); Kokoro loads only if a clip is not cached yet."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or cache_dir()
        self._kokoro: Any = None

    def render(self, clip: WakeClip) -> bytes:
        digest = hashlib.sha256(repr((1, clip)).encode()).hexdigest()[:20]
        path = self.folder / f"{digest}.pcm"
        if path.is_file():
            return path.read_bytes()
        if clip.engine == "kokoro":
            audio = (
                silence(1.0) + self._kokoro_say(clip.text, clip.voice, clip.speed) + silence(1.0)
            )
        else:
            audio = espeak_clip(clip.text, clip.voice, int(clip.speed))
        if clip.noise_dbfs is not None:
            seed = int(digest[:8], 16)
            audio = overlay(noise(seconds(audio), clip.noise_dbfs, seed=seed), audio, 0)
        partial = path.with_suffix(".tmp")
        partial.write_bytes(audio)
        partial.replace(path)
        return audio

    def _kokoro_say(self, text: str, voice: str, speed: float) -> bytes:
        from .weights import pcm16, resample  # noqa: PLC0415 (only when Kokoro speaks)

        if self._kokoro is None:
            from kokoro_onnx import Kokoro  # noqa: PLC0415

            from .weights import assemble_weights  # noqa: PLC0415

            weights = assemble_weights(Path(tempfile.mkdtemp(prefix="hydra-kokoro-")))
            self._kokoro = Kokoro(str(weights.kokoro_model), str(weights.kokoro_voices))
        audio, rate = self._kokoro.create(text, voice=voice, speed=speed, lang="en-us")
        return pcm16(resample(np.asarray(audio, dtype=np.float32), rate, 16000))


def ordinary_speech(renderer: Renderer, target_s: float) -> bytes:
    """Read sentences without the wake word: espeak-ng's, then Kokoro's, ``target_s`` of them."""
    parts: list[bytes] = []
    total = 0.0
    kokoro = [WakeClip(s, "kokoro", KOKORO_VOICES[i % 5], 1.0) for i, s in enumerate(SENTENCES)]
    espeak = [
        WakeClip(sentence, "espeak", voice, float(speed))
        for speed in (140, 170, 200)
        for voice in NEGATIVE_VOICES
        for sentence in SENTENCES
    ]
    # Kokoro first: the quick runs hear both engines.
    for clip in [*kokoro, *espeak]:
        audio = renderer.render(clip)
        parts.append(audio[_TRIM : len(audio) - _TRIM])  # 0.3 s of each 1 s pad
        total += seconds(parts[-1])
        if total >= target_s:
            break
    return b"".join(parts)
