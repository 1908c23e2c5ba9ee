"""Second-stage wake word verification: Whisper weighs the wake phrase against its sound-alikes.

openWakeWord's ``hey_jarvis`` model accepts some sound-alikes ("Hey Travis" in some voices, a
clipped "Hey Jar") with scores as high as real detections, so raising its threshold loses real
ones. When it fires, the stream hands the last 2 s of audio to a verifier before it announces
the detection. ``WhisperWakeVerifier`` runs Whisper tiny.en's encoder once over that audio
(4 s: the window and silence after it) and scores a closed set of sentences with the decoder,
forced (CTranslate2's ``align`` gives each forced token's probability): the wake phrase and the
phrases that sound like it. The score is the wake phrase's share of the set's probability (a
softmax over their log-likelihoods); the candidate is announced when it reaches the threshold.
The prompt lists every phrase of the set, so that Whisper expects one of them without favouring
any: a prompt of the wake phrase alone made tiny.en hear "Hey Jarvis" in "Hey Jar"; free
decoding without a prompt heard espeak's "Hey Jarvis" as "Hey, novice" or "Hey John, miss".

Measured with benchmarks/wake_verify.py on tests/voice/wake_sets.py (Kokoro and espeak-ng
voices, 2-core CPU): at the default threshold of 0.5 it keeps all 89 of the 91 positives the
model fires on and lets through 1 of the 16 hard negatives it fires on (of 104). It costs about
0.15 CPU-s per candidate and nothing between candidates. Wake models without a list of
sound-alikes are not verified (their candidates are announced as before).
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
import math
from pathlib import Path
import threading
import time
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from .models import DEFAULT_VERIFY_THRESHOLD

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

_LOGGER = logging.getLogger(__name__)

#: The Whisper model the verifier runs, in ``<models_dir>/whisper/<name>/``.
VERIFY_WHISPER_MODEL: Final = "tiny.en"
#: Audio the verifier hears, ending ``VERIFY_TAIL_MS`` after the window the model fired on.
VERIFY_WINDOW_MS: Final = 2000
#: How long after the firing window the stream waits for the end of the phrase.
VERIFY_TAIL_MS: Final = 200
# Below this peak (about -50 dBFS) there is nothing to verify: the candidate is refused.
_QUIET_PEAK: Final = 100
_SAMPLE_RATE: Final = 16000
# Mel frames (10 ms each) the encoder hears: the 2 s window and silence after it. Whisper is
# trained on 30 s inputs, but CTranslate2's encoder takes fewer: 4 s cost 0.02 CPU-s instead of
# 0.55 and told the wake phrase from its sound-alikes better (tests/voice/wake_sets.py).
_ENCODER_FRAMES: Final = 400

#: Phrases each wake word model's phrase is weighed against. A model missing here is not verified.
SOUND_ALIKES: Final[dict[str, tuple[str, ...]]] = {
    "hey_jarvis": ("Hey Travis", "Hey Jasper", "Hey Jar", "Hey Marvin", "Harvest", "Jarvis"),
}


@dataclass(frozen=True, slots=True)
class WakeVerdict:
    """What the verifier decided about one candidate."""

    accepted: bool
    score: float  # the wake phrase's share of the probability, 0..1
    heard: str  # the likeliest phrase of the set
    cpu_s: float  # CPU seconds the process spent while it verified (Whisper has own threads)


class WhisperWakeVerifier:
    """Verifies wake word candidates with Whisper (loaded on the first candidate, then kept).

    ``verify`` is synchronous CPU work run on the stream's thread; a lock makes concurrent
    streams take turns (candidates are rare). If the model cannot load, candidates are accepted
    unverified (a warning says why), so a missing model never silences the wake word.
    """

    def __init__(
        self, folder: Path, *, threshold: float = DEFAULT_VERIFY_THRESHOLD, threads: int = 1
    ) -> None:
        """``folder``: Whisper tiny.en in CTranslate2 format (``<models_dir>/whisper/tiny.en``)."""
        self.folder = folder
        self.threshold = threshold
        self.threads = threads
        self._lock = threading.Lock()
        self._model: WhisperModel | None = None
        self._tokenizer: Any = None
        self._failed: str | None = None
        self._warned: str | None = None

    @property
    def loaded(self) -> bool:
        """Whether the Whisper model is in memory."""
        return self._model is not None

    def unavailable_reason(self) -> str | None:
        """Why the verifier cannot run (the model is missing or failed to load), or None."""
        if self._failed is not None:
            return self._failed
        folder = self.folder
        if not (
            all(
                (folder / name).is_file() for name in ("model.bin", "config.json", "tokenizer.json")
            )
            and any((folder / f"vocabulary.{ext}").is_file() for ext in ("txt", "json"))
        ):
            return f"Whisper {VERIFY_WHISPER_MODEL} is not in {self.folder}"
        return None

    def verify(self, name: str, phrase: str, audio: npt.NDArray[np.int16]) -> WakeVerdict:
        """Decide on a candidate of model ``name`` from its last ~2 s of 16 kHz audio."""
        started = time.process_time()
        alikes = SOUND_ALIKES.get(name)
        if not alikes:
            return WakeVerdict(True, 1.0, phrase, 0.0)
        if audio.size == 0 or int(np.abs(audio.astype(np.int32)).max()) < _QUIET_PEAK:
            return WakeVerdict(False, 0.0, "", time.process_time() - started)
        with self._lock:
            model = self._load()
            if model is None:
                return WakeVerdict(True, 1.0, phrase, time.process_time() - started)
            scores = self._scores(model, (phrase, *alikes), audio)
        top = max(scores)
        total = sum(math.exp(value - top) for value in scores)
        score = math.exp(scores[0] - top) / total
        heard = (phrase, *alikes)[scores.index(top)]
        return WakeVerdict(score >= self.threshold, score, heard, time.process_time() - started)

    def _load(self) -> WhisperModel | None:
        if self._model is not None:
            return self._model
        reason = self.unavailable_reason()
        if reason is None:
            try:
                import faster_whisper  # noqa: PLC0415 (heavy, on first use)

                model = faster_whisper.WhisperModel(
                    str(self.folder), device="cpu", compute_type="int8", cpu_threads=self.threads
                )
                # faster-whisper's own tokenizer (its package imports the module).
                self._tokenizer = faster_whisper.tokenizer.Tokenizer(
                    model.hf_tokenizer,
                    model.model.is_multilingual,
                    task="transcribe",
                    language="en",
                )
                self._model = model
                return model
            except Exception as err:  # any load failure: verify nothing, say why
                # A model that fails to load stays failed; a missing one may still arrive.
                reason = self._failed = f"Whisper {VERIFY_WHISPER_MODEL} failed to load: {err}"
        if reason != self._warned:
            self._warned = reason
            _LOGGER.warning("Wake word candidates are announced unverified: %s", reason)
        return None

    def _scores(
        self, model: WhisperModel, phrases: tuple[str, ...], audio: npt.NDArray[np.int16]
    ) -> list[float]:
        """Log-likelihood of each phrase (ending in a full stop) as the transcript of ``audio``."""
        import ctranslate2  # noqa: PLC0415 (loaded with faster-whisper)

        tokenizer = self._tokenizer
        samples = audio.astype(np.float32) / 32768.0
        mels = model.feature_extractor(samples)
        frames = min(mels.shape[-1], _ENCODER_FRAMES)
        padded = np.zeros((mels.shape[0], _ENCODER_FRAMES), np.float32)
        padded[:, :frames] = mels[:, :frames]
        encoded = model.model.encode(ctranslate2.StorageView.from_array(padded[None]))
        prompt = " " + " ".join(f"{text}." for text in phrases)
        start = [
            tokenizer.sot_prev,
            *tokenizer.encode(prompt),
            *tokenizer.sot_sequence,
            tokenizer.no_timestamps,
        ]
        texts = [tokenizer.encode(f" {text}.") for text in phrases]
        results = [model.model.align(encoded, start, [tokens], frames // 2)[0] for tokens in texts]
        return [sum(math.log(max(p, 1e-9)) for p in result.text_token_probs) for result in results]
