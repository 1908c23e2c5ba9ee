"""Pre-roll: the microphone audio from just before the wake word fired, for the command.

openWakeWord reports "Hey Jarvis" late and by a varying amount: on the one-breath set
(tests/satellite/one_breath.py: espeak-ng and Kokoro voices, the command straight after the
phrase) the detection's timestamp lands 20 ms before to 450 ms after the end of the phrase, and
the satellite learns of it 30-580 ms after that end (the engine scores 160 ms of audio per call).
Streaming from the detection on therefore loses the start of a command said without a pause, and
no fixed lag cuts in the right place: with Whisper tiny.en on that set (``benchmarks.preroll``),
streaming from the detection kept the first word of 2 of 27 commands, cutting at the detection's
timestamp minus 0-500 ms 4-14 of 27, and the rest of "Jarvis" became words ("this", "of this",
"with"). The quietest point near the detection (an energy valley) was as often inside the
command ("What's | the") as between the phrase and it. The cut below kept 19 of 27 (the others
are tiny.en mishearing espeak-ng voices) and 23 of 30 after a 0.3 s pause.

So the cut is made where it can be told from the audio itself:

* When the speaker paused after the wake phrase (a quiet stretch of at least ``gap_ms`` ending
  no earlier than ``search_ms`` before the detection's timestamp), the command starts after the
  first such pause: the audio is sent from ``lead_ms`` before its end (Whisper mishears a word
  that starts the audio with less than 50 ms before it). Nothing of "Jarvis" goes.
* When there is no such pause (one breath), the audio is sent from the start of the utterance
  that holds the wake phrase (the end of the last pause before it), so the transcript reads
  "Hey Jarvis, what's the GPU temperature?" in full rather than a fragment of "Jarvis".
  Home Assistant's pipeline does not remove a wake phrase from a transcript: Hydra's
  speech-to-text removes a leading one (``hydra_core.voice.wake_phrase``).

Quiet is relative to the audio in the buffer (10 ms frames below the buffer's noise floor plus
10 dB, or 40 dB under its loudest frame), so a steady room noise does not hide a pause.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

_FRAME_MS = 10
_RATE = 16000
_FRAME_SAMPLES = _RATE * _FRAME_MS // 1000
_ABS_FLOOR_DBFS = -60.0
_FULL_SCALE = 32768.0


@dataclass(frozen=True)
class Cut:
    """Where the command's audio starts, in microphone time (ms), and why there."""

    start_ms: int
    after_pause: bool  # False: no pause after the wake phrase, it is sent too


class PreRoll:
    """The last ``seconds`` of microphone audio (16 kHz s16le mono), in microphone time."""

    def __init__(
        self,
        seconds: float,
        *,
        gap_ms: int = 120,
        search_ms: int = 300,
        lead_ms: int = 200,
    ) -> None:
        self.max_ms = round(seconds * 1000)
        self.gap_ms = gap_ms
        self.search_ms = search_ms
        self.lead_ms = lead_ms
        self._chunks: deque[tuple[int, bytes]] = deque()  # (start ms, audio)
        self._ms = 0  # held audio, ms

    @property
    def start_ms(self) -> int | None:
        """Microphone time of the oldest audio held."""
        return self._chunks[0][0] if self._chunks else None

    def add(self, start_ms: int, chunk: bytes) -> None:
        """Keep ``chunk`` (starting at ``start_ms``), dropping what is older than the limit."""
        if self.max_ms <= 0:
            return
        if self._chunks and self._end_ms() != start_ms:
            self.clear()  # the microphone restarted: older audio does not lead into this
        self._chunks.append((start_ms, chunk))
        self._ms += _ms(chunk)
        while self._chunks and self._ms - _ms(self._chunks[0][1]) >= self.max_ms:
            self._ms -= _ms(self._chunks.popleft()[1])

    def clear(self) -> None:
        self._chunks.clear()
        self._ms = 0

    def _end_ms(self) -> int:
        start, chunk = self._chunks[-1]
        return start + _ms(chunk)

    def cut(self, detection_ms: int) -> Cut | None:
        """Where to start the command for a wake word whose window ended at ``detection_ms``."""
        if not self._chunks:
            return None
        base = self._chunks[0][0]
        audio = np.frombuffer(b"".join(chunk for _, chunk in self._chunks), dtype="<i2")
        frames = len(audio) // _FRAME_SAMPLES
        if frames == 0:
            return None
        blocks = audio[: frames * _FRAME_SAMPLES].astype(np.float64).reshape(frames, -1)
        level = 10 * np.log10((blocks**2).mean(axis=1) / _FULL_SCALE**2 + 1e-12)
        loudest = float(level.max())
        floor = float(np.percentile(level, 10))
        threshold = min(loudest - 20.0, max(floor + 10.0, loudest - 40.0, _ABS_FLOOR_DBFS))
        pauses = _runs(level < threshold, self.gap_ms // _FRAME_MS)
        search_from = (detection_ms - self.search_ms - base) // _FRAME_MS
        lead = self.lead_ms // _FRAME_MS
        after = [(start, end) for start, end in pauses if end > search_from]
        if after:
            start, end = after[0]
            return Cut(base + max(start, end - lead) * _FRAME_MS, after_pause=True)
        before = [(start, end) for start, end in pauses if end <= search_from]
        if before:
            start, end = before[-1]
            return Cut(base + max(start, end - lead) * _FRAME_MS, after_pause=False)
        return Cut(base, after_pause=False)

    def audio_from(self, start_ms: int) -> list[tuple[int, bytes]]:
        """The held audio from ``start_ms`` on, as (start ms, chunk) pieces."""
        pieces = []
        for chunk_start, chunk in self._chunks:
            chunk_end = chunk_start + _ms(chunk)
            if chunk_end <= start_ms:
                continue
            skip = max(0, start_ms - chunk_start) * _RATE // 1000 * 2
            pieces.append((max(chunk_start, start_ms), chunk[skip:]))
        return pieces


def _ms(chunk: bytes) -> int:
    return len(chunk) * 1000 // (_RATE * 2)


def _runs(quiet: np.ndarray, min_frames: int) -> list[tuple[int, int]]:
    """(first, past-last) frame of each run of True at least ``min_frames`` long."""
    edges = np.diff(np.concatenate(([0], quiet.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True) if e - s >= min_frames]
