"""Commands said in one breath after the wake word: the set the satellite's pre-roll is tuned on.

Each clip is "Hey Jarvis" followed by a command with no pause at all: the wake phrase and the
command are synthesized apart, their silence trimmed, and joined end to start, so the clip says
exactly where the wake phrase ends (``wake_end_ms``) and the command begins. The set is kept
here as definitions (texts, voices, speeds) and rendered at test or benchmark time: espeak-ng
voices always, Kokoro voices where the test weights are given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tests.voice.speech import SAMPLE_RATE, espeak_clip, silence

WAKE_TEXT = "Hey Jarvis"
# Commands starting with a short word that pre-roll must keep.
COMMANDS = (
    "What's the GPU temperature?",
    "Pause autonomous work.",
    "How many tasks are waiting?",
)
ESPEAK_VOICES = (
    ("en-us", 150),
    ("en-us", 180),
    ("en-gb", 150),
    ("en-gb-x-rp", 170),
    ("en-us+f3", 150),
    ("en-gb+m3", 160),
    ("en-us-nyc", 140),
)
KOKORO_VOICES = ("jf_alpha", "jf_nezumi", "jm_kumo")
_FRAME = SAMPLE_RATE // 100  # 10 ms
# Where speech starts and ends: the first and last 10 ms frame this loud (RMS, dBFS).
SPEECH_FLOOR_DBFS = -45.0
LEAD_S = 1.0
TAIL_S = 3.0


@dataclass(frozen=True)
class OneBreath:
    """A one-breath clip: 16 kHz s16le mono, a second of quiet first and three after."""

    name: str
    command: str
    audio: bytes
    wake_end_ms: int  # where "Hey Jarvis" ends and the command begins


def trim(audio: bytes, floor_dbfs: float = SPEECH_FLOOR_DBFS) -> bytes:
    """``audio`` from its first to its last 10 ms frame above ``floor_dbfs``."""
    samples = np.frombuffer(audio, dtype="<i2").astype(np.float64)
    frames = samples[: len(samples) // _FRAME * _FRAME].reshape(-1, _FRAME)
    rms = np.sqrt((frames**2).mean(axis=1))
    loud = np.flatnonzero(rms >= 32768.0 * 10 ** (floor_dbfs / 20))
    if not len(loud):
        return b""
    return audio[loud[0] * _FRAME * 2 : (loud[-1] + 1) * _FRAME * 2]


def join(name: str, command: str, wake: bytes, said: bytes) -> OneBreath:
    """The wake phrase and the command, trimmed and joined without a pause."""
    wake, said = trim(wake), trim(said)
    lead = silence(LEAD_S)
    return OneBreath(
        name=name,
        command=command,
        audio=lead + wake + said + silence(TAIL_S),
        wake_end_ms=(len(lead) + len(wake)) * 1000 // (2 * SAMPLE_RATE),
    )


def espeak_set(commands: Iterable[str] = COMMANDS) -> list[OneBreath]:
    """Every command in every espeak-ng voice and speed."""
    return [
        join(
            f"espeak {voice}@{speed}",
            command,
            espeak_clip(WAKE_TEXT, voice, speed, pad_s=0),
            espeak_clip(command, voice, speed, pad_s=0),
        )
        for voice, speed in ESPEAK_VOICES
        for command in commands
    ]


def kokoro_set(weights: object, commands: Iterable[str] = COMMANDS) -> list[OneBreath]:
    """Every command in every Kokoro voice (``weights``: tests.voice.weights.VoiceWeights)."""
    from tests.voice.weights import kokoro_say  # noqa: PLC0415 - needs kokoro_onnx

    clips = []
    for voice in KOKORO_VOICES:
        wake = kokoro_say(weights, WAKE_TEXT, voice)  # type: ignore[arg-type]
        clips.extend(
            join(f"kokoro {voice}", command, wake, kokoro_say(weights, command, voice))  # type: ignore[arg-type]
            for command in commands
        )
    return clips
