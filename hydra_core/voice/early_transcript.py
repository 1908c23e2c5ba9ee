"""Speech-to-text that has its answer ready when the audio stops.

Home Assistant ends a spoken command only after its voice activity detector has heard a stretch
of silence (0.7 s by default, the satellite's "finished speaking detection"); until then it
streams that silence to the speech-to-text server. Whisper needs some 0.3 s (tiny.en, 2-core CPU)
once it has the audio, so a server that starts at audio-stop answers well over a second after
the user stopped speaking. This one transcribes what came so far as soon as the speech in it has
been followed by ``KEEP_S`` of quiet, in the background, while the silence is still coming.

Correctness comes first: what is transcribed is always the audio up to ``KEEP_S`` after its last
loud 10 ms frame (quiet = ``QUIET_DB`` below the loudest frame so far), at audio-stop as before
it. If nothing loud came after the early transcription's audio, the audio at audio-stop cuts to
the very same bytes, so the early answer is the one a transcription at audio-stop would give; if
anything loud came (the user went on after a pause) the early answer is dropped and the whole is
transcribed. At most one early transcription runs per connection; a stale one is cancelled (its
thread finishes the decode it is in, which is all Whisper allows).

Home Assistant's detector hears the end of speech late: microVAD's score falls some 0.5 s after
the voice does, and the silence it then waits for comes on top (``benchmarks/stt_wait``). Home
Assistant takes a transcript that comes before its audio-stop, so with ``end_of_speech_s`` set the
server ends the command itself once ``MIN_SPEECH_S`` of speech has been followed by that much
quiet, and answers with the early transcript (ready by then, or nearly). A pause longer than that
in the middle of a command ends it, as Home Assistant's "aggressive" setting does; in a room too
noisy for quiet to be heard, Home Assistant's own detector still ends the command.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
import contextlib
import logging
from typing import Any

import numpy as np

_LOGGER = logging.getLogger(__name__)

RATE = 16000
FRAME_BYTES = 320  # 10 ms of 16 kHz 16-bit mono
#: Quiet after the speech that is kept: Whisper hears the end of the last word whole.
KEEP_S = 0.2
KEEP_FRAMES = round(KEEP_S * RATE * 2 / FRAME_BYTES)
#: A frame this far below the loudest one so far is quiet (room tone, the end of a breath).
QUIET_DB = 35.0
#: Frames quieter than this RMS (about -70 dBFS) are quiet whatever the speech's level.
QUIET_FLOOR_RMS = 10.0
#: Loud audio a command needs before quiet can end it (a click does not).
MIN_SPEECH_S = 0.3


class SpeechEnd:
    """Where the speech in a growing utterance ends, kept up to date chunk by chunk."""

    def __init__(self) -> None:
        self._rms: list[float] = []
        self._tail = b""

    def add(self, audio: bytes) -> None:
        """Take the next audio of the utterance (16-bit mono PCM, any length)."""
        data = self._tail + audio
        whole = len(data) - len(data) % FRAME_BYTES
        if whole:
            frames = np.frombuffer(data[:whole], dtype="<i2").astype(np.float32)
            rms = np.sqrt(np.mean(frames.reshape(-1, FRAME_BYTES // 2) ** 2, axis=1))
            self._rms.extend(rms.tolist())
        self._tail = data[whole:]

    def quiet_s(self) -> float:
        """Seconds since the last loud frame (0 with no loud frame yet)."""
        loud = self._loud()
        return 0.0 if loud is None else (len(self._rms) - loud - 1) * FRAME_BYTES / (2 * RATE)

    def loud_s(self) -> float:
        """Seconds of loud frames so far."""
        if not self._rms:
            return 0.0
        rms = np.asarray(self._rms)
        return int(np.count_nonzero(rms >= self._threshold(rms))) * FRAME_BYTES / (2 * RATE)

    @staticmethod
    def _threshold(rms: np.ndarray) -> float:
        return max(float(rms.max()) * 10 ** (-QUIET_DB / 20), QUIET_FLOOR_RMS)

    def _loud(self) -> int | None:
        """The last loud frame's index."""
        if not self._rms:
            return None
        rms = np.asarray(self._rms)
        loud = np.flatnonzero(rms >= self._threshold(rms))
        return int(loud[-1]) if loud.size else None

    def cut(self) -> int | None:
        """Bytes of the utterance to transcribe: up to ``KEEP_S`` after its last loud frame;
        None while that much has not come yet, 0 for an utterance without a loud frame."""
        loud = self._loud()
        if loud is None:
            return 0
        end = loud + 1 + KEEP_FRAMES
        return end * FRAME_BYTES if end <= len(self._rms) else None

    def final_cut(self, length: int) -> int:
        """Bytes to transcribe once the utterance (``length`` bytes) has ended."""
        cut = self.cut()
        return length if cut is None else cut


class EarlyTranscriber:
    """One utterance's transcription, started before its audio stops where that is safe."""

    def __init__(
        self,
        transcribe: Callable[[bytes], Coroutine[Any, Any, str]],
        *,
        end_of_speech_s: float = 0.0,
    ) -> None:
        """``end_of_speech_s``: quiet after speech that ends the command (0: wait for the
        client's audio-stop)."""
        self._transcribe = transcribe
        self._end_of_speech_s = end_of_speech_s
        self._speech = SpeechEnd()
        self._partial: asyncio.Task[str] | None = None
        self._partial_cut = 0

    def heard(self, audio: bytes | bytearray, new: bytes) -> None:
        """``new`` was appended to the utterance, now ``audio``: transcribe it early if its
        speech has ended, no early transcription is running, and it is not the one done."""
        self._speech.add(new)
        if self._partial is not None and not self._partial.done():
            return
        cut = self._speech.cut()
        if not cut or cut == self._partial_cut:
            return
        self._drop()
        self._partial_cut = cut
        self._partial = asyncio.get_running_loop().create_task(
            self._transcribe(bytes(audio[:cut])), name="hydra early transcript"
        )
        self._partial.add_done_callback(_retrieve)

    def speech_ended(self) -> bool:
        """Whether the command has ended: ``end_of_speech_s`` of quiet after at least
        ``MIN_SPEECH_S`` of speech (in the audio's time, so the answer does not depend on how
        fast the audio came or how fast Whisper is)."""
        return bool(
            self._end_of_speech_s
            and self._speech.quiet_s() >= self._end_of_speech_s
            and self._speech.loud_s() >= MIN_SPEECH_S
        )

    async def finish(self, audio: bytes | bytearray) -> str:
        """The utterance's text once its audio has stopped: the early answer if only quiet came
        after it, else a transcription of the speech now."""
        cut = self._speech.final_cut(len(audio))
        partial = self._partial
        if partial is not None and cut == self._partial_cut:
            self._partial = None
            _LOGGER.debug("Answering with the transcript made before the audio stopped")
            return await partial
        self._drop()
        return await self._transcribe(bytes(audio[:cut]))

    def cancel(self) -> None:
        """Stop the early transcription (the connection is going)."""
        self._drop()

    def _drop(self) -> None:
        partial, self._partial = self._partial, None
        if partial is not None:
            partial.cancel()


def _retrieve(task: asyncio.Task[str]) -> None:
    """A stale early transcription's failure is no one's: read it so it is not logged."""
    with contextlib.suppress(asyncio.CancelledError):
        task.exception()
