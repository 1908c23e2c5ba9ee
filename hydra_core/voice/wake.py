"""Wake word detection for many concurrent audio streams: openWakeWord models through TFLite.

The models are openWakeWord's (the ones `pyopen-wakeword` ships, plus any ``*.tflite`` a user
drops into a folder), run through the TFLite C library that package ships, driven with ctypes.
The pipeline is openWakeWord's: a mel spectrogram model turns audio into 32 mel bands every 10 ms;
an embedding model turns 76 mel frames (775 ms) into a 96-feature vector every 80 ms; each wake
word model turns its last 16 embeddings (1.3 s) into a score every 80 ms. Every score is a pure
function of the last 2.03 s of audio (24 steps of 80 ms plus one 110 ms window).

It computes the same scores as `pyopen-wakeword`'s classes (to float rounding, 1e-5) at a
fraction of their cost:

* Each stream's interpreters run on one thread with the XNNPACK delegate: the library's default
  interpreter spreads the embedding model over every core and costs about 4x more CPU per step.
* Steps are computed ``hop_ms`` at a time: the embedding model is fully convolutional (a stride
  of 8 mel frames), so one call on a longer input computes several 80 ms steps, bit for bit the
  same, for little more than the cost of one. (The mel model is still called once per step: it
  clamps its output relative to the loudest frame of its input, so a longer input would change
  it.) Calls always cover the same steps of the stream, so scores do not depend on how the
  caller chunks its audio.
* A new stream starts from features of silence computed once per engine (the library instead
  re-processes 8 s of zeros, ~0.5 CPU-s, on its first chunk and on every reset).
* Energy gate: while the audio stays below ``gate_dbfs`` for longer than the models can see
  (2 s), no model runs. When sound returns, the stream restores the silence features and replays
  the last 2 s of buffered audio, which puts it in exactly the state it would be in had it never
  stopped, so every score that can see the sound is the one an ungated stream computes. Only
  scores of windows that hold nothing but audio below the floor are skipped (taken as 0).

Second stage: with a ``verifier`` set on the engine (see ``wake_verify``), a model firing makes
a candidate, not a detection. The stream waits for ``VERIFY_TAIL_MS`` more audio, hands the last
``VERIFY_WINDOW_MS`` to the verifier and returns the detection only if it is confirmed. The
verifier's cost falls on candidates alone; the announcement comes that much later.

`WakeStream.process` is synchronous CPU work: run it in a worker thread. One stream is used by one
thread at a time; any number of streams run in parallel threads (each has its own interpreters;
the loaded models, which TFLite keeps read-only, are shared).
"""

from __future__ import annotations

from collections.abc import Sequence
import ctypes
from dataclasses import dataclass
import logging
import math
from pathlib import Path
import threading
import time
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from .wake_verify import VERIFY_TAIL_MS, VERIFY_WINDOW_MS

if TYPE_CHECKING:
    from .wake_verify import WhisperWakeVerifier

_LOGGER = logging.getLogger(__name__)

_STEP: Final = 1280  # samples per 80 ms step (one embedding, one score)
_MEL_EXTRA: Final = 480  # a mel window reaches 30 ms past its step: 1760 samples in all
_MELS_PER_STEP: Final = 8
_NUM_MELS: Final = 32
_EMB_MELS: Final = 76  # mel frames per embedding
_MEL_CONTEXT: Final = 72  # mel frames of earlier steps an embedding of a new step needs
_EMB_LAG: Final = 4  # the newest embedding ends 4 mel frames before the newest mel frame
_MEL_HISTORY_STEPS: Final = 9  # an embedding sees the mel frames of its step and 9 before
_FEATURES: Final = 96
_FLOAT: Final = 4
_TFLITE_FLOAT32: Final = 1
_STEP_MS: Final = 80
_HOP_MAX_MS: Final = 800
_FEATURE_MODELS: Final = frozenset({"melspectrogram", "embedding_model"})
# Audio taken per pass (decide, then verify the candidates whose audio is in), so the audio kept
# for the verifier need not grow with what a caller sends at once.
_BLOCK: Final = 8000  # samples: 0.5 s

_Floats = npt.NDArray[np.float32]


# Public API ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WakeModelInfo:
    """A wake word model the engine can run."""

    name: str  # "hey_jarvis" (file stem)
    phrase: str  # "Hey Jarvis"
    source: str  # "builtin" or "custom"
    path: Path


@dataclass(frozen=True, slots=True)
class WakeDetection:
    """A wake word fired."""

    name: str  # model name
    score: float
    timestamp_ms: int  # audio time since the stream started where it fired
    verify_score: float | None = None  # the verifier's score (None: not verified)


@dataclass(slots=True)
class WakeStreamStats:
    """What a stream has computed so far (for benchmarks and diagnostics)."""

    steps: int = 0  # 80 ms steps of audio received and decided on
    steps_inferred: int = 0  # steps whose models ran
    steps_gated: int = 0  # steps skipped by the energy gate
    steps_replayed: int = 0  # steps of buffered audio replayed when sound returned
    candidates: int = 0  # firings handed to the verifier
    rejected: int = 0  # candidates the verifier refused
    verify_cpu_s: float = 0.0  # CPU seconds the verifier spent on this stream's candidates
    verify_wall_s: float = 0.0  # wall seconds from a candidate's audio being in to its verdict


class WakeModelError(Exception):
    """Unknown wake word model name, or a custom model that cannot be used."""


class WakeAudioError(ValueError):
    """Audio the engine cannot take."""


def phrase_for(name: str) -> str:
    """The spoken phrase of a model name: ``okay_nabu`` -> ``Okay Nabu``."""
    return " ".join(part.capitalize() for part in name.replace("-", "_").split("_") if part)


# The TFLite runtime -------------------------------------------------------------------------


def _builtin_dir() -> Path:
    import pyopen_wakeword  # noqa: PLC0415  (loaded on first use, not at import)

    return Path(pyopen_wakeword.__file__).parent / "models"


class _Model:
    """A loaded TfLiteModel: read-only once built, shared by every interpreter made from it."""

    def __init__(self, runtime: _Runtime, path: Path) -> None:
        self._lib = runtime.lib
        self.path = path
        self.ptr: int | None = None
        self.ptr = self._lib.TfLiteModelCreateFromFile(str(path).encode())
        if not self.ptr:
            raise WakeModelError(f"{path.name} is not a TFLite model")

    def __del__(self) -> None:
        if self.ptr:
            self._lib.TfLiteModelDelete(self.ptr)
            self.ptr = None


class _Interpreter:
    """One interpreter (single-threaded, XNNPACK) of a model, with fixed input and output."""

    def __init__(self, runtime: _Runtime, model: _Model, shape: tuple[int, ...] | None) -> None:
        lib = runtime.lib
        self._lib = lib
        self.model = model  # keeps the model alive as long as the interpreter
        self.ptr: int | None = None
        self.delegate: int | None = None
        if runtime.xnnpack:
            self.delegate = lib.TfLiteXNNPackDelegateCreate(None)
        options = lib.TfLiteInterpreterOptionsCreate()
        try:
            lib.TfLiteInterpreterOptionsSetNumThreads(options, 1)
            if self.delegate:
                lib.TfLiteInterpreterOptionsAddDelegate(options, self.delegate)
            self.ptr = lib.TfLiteInterpreterCreate(model.ptr, options)
        finally:
            lib.TfLiteInterpreterOptionsDelete(options)
        if not self.ptr:
            self._delete_delegate()
            raise WakeModelError(f"{model.path.name}: TFLite cannot create an interpreter")
        if shape is not None:
            dims = (ctypes.c_int32 * len(shape))(*shape)
            if lib.TfLiteInterpreterResizeInputTensor(self.ptr, 0, dims, len(shape)) != 0:
                self.close()
                raise WakeModelError(f"{model.path.name}: cannot take input {shape}")
        if lib.TfLiteInterpreterAllocateTensors(self.ptr) != 0:
            self.close()
            raise WakeModelError(f"{model.path.name}: TFLite cannot allocate its tensors")
        self.input: int = lib.TfLiteInterpreterGetInputTensor(self.ptr, 0)
        self.output: int = lib.TfLiteInterpreterGetOutputTensor(self.ptr, 0)

    def dims(self, tensor: int) -> list[int]:
        lib = self._lib
        return [lib.TfLiteTensorDim(tensor, i) for i in range(lib.TfLiteTensorNumDims(tensor))]

    def _delete_delegate(self) -> None:
        if self.delegate:
            self._lib.TfLiteXNNPackDelegateDelete(self.delegate)
            self.delegate = None

    def close(self) -> None:
        if self.ptr:
            self._lib.TfLiteInterpreterDelete(self.ptr)
            self.ptr = None
        self._delete_delegate()

    def __del__(self) -> None:
        self.close()


class _Runtime:
    """The TFLite C library, loaded once per process on first use."""

    def __init__(self, *, xnnpack: bool = True) -> None:
        from pyopen_wakeword.wakeword import TfLiteWakeWord  # noqa: PLC0415

        lib_dir = _builtin_dir().parent / "lib"
        found = sorted(lib_dir.glob("*tensorflowlite_c.*"))
        if not found:
            raise WakeModelError(f"the TFLite C library is missing from {lib_dir}")
        # TfLiteWakeWord declares the argument types of the functions pyopen-wakeword uses.
        lib: Any = TfLiteWakeWord(found[0]).lib
        void_p, int32 = ctypes.c_void_p, ctypes.c_int32
        lib.TfLiteInterpreterOptionsCreate.argtypes = []
        lib.TfLiteInterpreterOptionsCreate.restype = void_p
        lib.TfLiteInterpreterOptionsDelete.argtypes = [void_p]
        lib.TfLiteInterpreterOptionsDelete.restype = None
        lib.TfLiteInterpreterOptionsSetNumThreads.argtypes = [void_p, int32]
        lib.TfLiteInterpreterOptionsSetNumThreads.restype = None
        lib.TfLiteInterpreterOptionsAddDelegate.argtypes = [void_p, void_p]
        lib.TfLiteInterpreterOptionsAddDelegate.restype = None
        lib.TfLiteXNNPackDelegateCreate.argtypes = [void_p]
        lib.TfLiteXNNPackDelegateCreate.restype = void_p
        lib.TfLiteXNNPackDelegateDelete.argtypes = [void_p]
        lib.TfLiteXNNPackDelegateDelete.restype = None
        self.lib = lib
        self.xnnpack = xnnpack


_RUNTIME: _Runtime | None = None
_RUNTIME_LOCK = threading.Lock()


def _runtime() -> _Runtime:
    global _RUNTIME  # noqa: PLW0603  (one library per process)
    with _RUNTIME_LOCK:
        if _RUNTIME is None:
            _RUNTIME = _Runtime()
        return _RUNTIME


@dataclass(frozen=True, slots=True)
class _Entry:
    """A wake word model found on disk, loaded and checked."""

    info: WakeModelInfo
    model: _Model
    windows: int  # embeddings per score (16 for openWakeWord's models)


# The feature pipeline -----------------------------------------------------------------------


class _Features:
    """Mel and embedding models of one stream, computing ``hop`` steps per call.

    ``mels`` holds the mel frames the next call needs (72 of earlier steps, then the newest
    ``8 * hop``); ``embeddings`` the newest ``rows`` embeddings, the last one that of the newest
    step. Both are fixed arrays whose addresses go straight to TFLite: no allocation per call.
    """

    def __init__(self, runtime: _Runtime, mel: _Model, emb: _Model, hop: int, rows: int) -> None:
        self._lib = runtime.lib
        self.hop = hop
        self.rows = rows
        self.mel = _Interpreter(runtime, mel, (1, _STEP + _MEL_EXTRA))
        self.emb = _Interpreter(
            runtime, emb, (1, _MEL_CONTEXT + _MELS_PER_STEP * hop - _EMB_LAG, _NUM_MELS, 1)
        )
        self.mels: _Floats = np.zeros((_MEL_CONTEXT + _MELS_PER_STEP * hop, _NUM_MELS), np.float32)
        self.embeddings: _Floats = np.zeros((rows, _FEATURES), np.float32)
        self._new_mels = self.mels[_MEL_CONTEXT:]
        self._new_embeddings = self.embeddings[rows - hop :]
        self._mels_ptr: int = self.mels.ctypes.data
        self._new_mels_ptr: int = self._new_mels.ctypes.data
        self._new_embeddings_ptr: int = self._new_embeddings.ctypes.data
        self._mel_in_bytes = (_STEP + _MEL_EXTRA) * _FLOAT
        self._emb_in_bytes = (self.mels.shape[0] - _EMB_LAG) * _NUM_MELS * _FLOAT
        self._mel_out_bytes = self._new_mels.nbytes
        self._emb_out_bytes = self._new_embeddings.nbytes
        expected = ((self.mel, self._mel_out_bytes // hop), (self.emb, self._emb_out_bytes))
        for interpreter, size in expected:
            if self._lib.TfLiteTensorByteSize(interpreter.output) != size:
                self.close()
                raise WakeModelError(f"{interpreter.model.path.name} has an unexpected output")

    def compute(self, audio_ptr: int) -> None:
        """Mel frames and embeddings of the next ``hop`` steps, from their float32 audio."""
        lib = self._lib
        hop_mels = _MELS_PER_STEP * self.hop
        self.mels[:_MEL_CONTEXT] = self.mels[hop_mels:]
        # One mel call per step: the mel model clamps its output relative to the loudest frame
        # of its input, so a longer input would change the frames.
        step_out = self._mel_out_bytes // self.hop
        for index in range(self.hop):
            lib.TfLiteTensorCopyFromBuffer(
                self.mel.input, audio_ptr + index * _STEP * _FLOAT, self._mel_in_bytes
            )
            lib.TfLiteInterpreterInvoke(self.mel.ptr)
            lib.TfLiteTensorCopyToBuffer(
                self.mel.output, self._new_mels_ptr + index * step_out, step_out
            )
        # As openWakeWord: scale the mel model's output to what the embedding model expects.
        np.divide(self._new_mels, 10, out=self._new_mels)
        np.add(self._new_mels, 2, out=self._new_mels)
        lib.TfLiteTensorCopyFromBuffer(self.emb.input, self._mels_ptr, self._emb_in_bytes)
        lib.TfLiteInterpreterInvoke(self.emb.ptr)
        if self.rows > self.hop:
            self.embeddings[: self.rows - self.hop] = self.embeddings[self.hop :]
        lib.TfLiteTensorCopyToBuffer(self.emb.output, self._new_embeddings_ptr, self._emb_out_bytes)

    def load(self, mels: _Floats, embeddings: _Floats) -> None:
        self.mels[:] = mels
        self.embeddings[:] = embeddings[embeddings.shape[0] - self.rows :]

    def close(self) -> None:
        self.mel.close()
        self.emb.close()


class _Detector:
    """One wake word model in one stream: its interpreter and trigger state."""

    __slots__ = (
        "consecutive",
        "entry",
        "interpreter",
        "max_score",
        "name",
        "quiet_until",
        "windows",
    )

    def __init__(self, runtime: _Runtime, entry: _Entry) -> None:
        self.entry = entry
        self.name = entry.info.name
        self.windows = entry.windows
        self.interpreter = _Interpreter(runtime, entry.model, None)
        self.consecutive = 0
        self.quiet_until = -(2**62)  # step index from which it may fire again
        self.max_score = 0.0


# The engine ---------------------------------------------------------------------------------


class WakeEngine:
    """Wake word models, and streams that run them over audio."""

    SAMPLE_RATE: Final = 16000
    SAMPLE_WIDTH: Final = 2
    CHANNELS: Final = 1

    def __init__(
        self,
        custom_dir: Path | None = None,
        *,
        threshold: float = 0.5,
        trigger_level: int = 1,
        refractory_s: float = 2.0,
        hop_ms: int = 160,
        gate_dbfs: float | None = -60.0,
        verifier: WhisperWakeVerifier | None = None,
    ) -> None:
        """Builtin models plus the ``*.tflite`` files in ``custom_dir``.

        ``threshold``, ``trigger_level``, ``refractory_s`` and ``gate_dbfs`` may be changed at
        any time; every stream reads them on each step. ``hop_ms`` (a multiple of 80, up to 800)
        is how much audio each model call covers: longer is cheaper but reports a detection up
        to ``hop_ms - 80`` ms later. ``gate_dbfs`` is the level (RMS, dB below full scale) under
        which audio counts as quiet; None turns the gate off. ``verifier`` (also changeable at
        any time; None: off) confirms each firing before the stream returns it.
        """
        if hop_ms % _STEP_MS or not _STEP_MS <= hop_ms <= _HOP_MAX_MS:
            raise ValueError(f"hop_ms must be a multiple of {_STEP_MS} up to {_HOP_MAX_MS}")
        self.custom_dir = custom_dir
        self.threshold = threshold
        self.trigger_level = trigger_level
        self.refractory_s = refractory_s
        self.gate_dbfs = gate_dbfs
        self.hop_ms = hop_ms
        self.verifier = verifier
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, int, int], _Entry | str] = {}
        self._warned: set[Path] = set()
        self._feature_models: tuple[_Model, _Model] | None = None
        self._primed: dict[int, tuple[_Floats, _Floats]] = {}

    # Models -------------------------------------------------------------------------------

    def phrases(self) -> list[str]:
        """The phrases of the built-in and custom models, from their file names alone (nothing
        is loaded; a model that would not load is still named)."""
        try:
            paths = list(_builtin_dir().glob("*.tflite"))
        except ImportError:
            paths = []
        paths += self._custom_files()
        names = sorted({path.stem for path in paths} - _FEATURE_MODELS)
        return [phrase_for(name) for name in names]

    def models(self) -> list[WakeModelInfo]:
        """Builtin models, then the usable custom ones (rescanned on every call)."""
        return [entry.info for entry in self._scan().values()]

    def _scan(self) -> dict[str, _Entry]:
        found: dict[str, _Entry] = {}
        with self._lock:
            runtime = _runtime()
            builtin = sorted(
                p for p in _builtin_dir().glob("*.tflite") if p.stem not in _FEATURE_MODELS
            )
            for path in builtin:
                entry = self._entry(runtime, path, "builtin")
                if entry is not None:
                    found[entry.info.name] = entry
            for path in self._custom_files():
                if path.stem in found or path.stem in _FEATURE_MODELS:
                    self._warn_once(path, f"its name is taken by a builtin model ({path.stem})")
                    continue
                entry = self._entry(runtime, path, "custom")
                if entry is not None:
                    found[entry.info.name] = entry
        return found

    def _custom_files(self) -> list[Path]:
        if self.custom_dir is None:
            return []
        try:
            return sorted(p for p in self.custom_dir.glob("*.tflite") if p.is_file())
        except OSError as err:
            _LOGGER.warning("Cannot read wake word models in %s: %s", self.custom_dir, err)
            return []

    def _warn_once(self, path: Path, reason: str) -> None:
        if path not in self._warned:
            self._warned.add(path)
            _LOGGER.warning("Skipping wake word model %s: %s", path, reason)

    def _entry(self, runtime: _Runtime, path: Path, source: str) -> _Entry | None:
        try:
            stat = path.stat()
        except OSError as err:
            _LOGGER.warning("Skipping wake word model %s: %s", path, err)
            return None
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        cached = self._entries.get(key)
        if cached is None:
            cached = self._load(runtime, path, source)
            self._entries = {k: v for k, v in self._entries.items() if k[0] != key[0]}
            self._entries[key] = cached
            if isinstance(cached, str):
                _LOGGER.warning("Skipping wake word model %s: %s", path, cached)
        return None if isinstance(cached, str) else cached

    @staticmethod
    def _load(runtime: _Runtime, path: Path, source: str) -> _Entry | str:
        try:
            model = _Model(runtime, path)
            interpreter = _Interpreter(runtime, model, None)
        except WakeModelError as err:
            return str(err)
        try:
            lib = runtime.lib
            dims = interpreter.dims(interpreter.input)
            if (
                len(dims) != 3
                or dims[0] != 1
                or dims[2] != _FEATURES
                or dims[1] < 1
                or lib.TfLiteTensorType(interpreter.input) != _TFLITE_FLOAT32
                or lib.TfLiteTensorByteSize(interpreter.output) != _FLOAT
            ):
                return f"not an openWakeWord model (input {dims}, one score out expected)"
        finally:
            interpreter.close()
        info = WakeModelInfo(name=path.stem, phrase=phrase_for(path.stem), source=source, path=path)
        return _Entry(info=info, model=model, windows=dims[1])

    # Streams ------------------------------------------------------------------------------

    def open_stream(self, names: Sequence[str] | None = None) -> WakeStream:
        """A stream running the named models (None or empty: all of them)."""
        if isinstance(names, str):
            names = [names]
        entries = self._scan()
        if names:
            unknown = [name for name in names if name not in entries]
            if unknown:
                raise WakeModelError(
                    f"Unknown wake word model {', '.join(unknown)}; "
                    f"known: {', '.join(sorted(entries))}"
                )
            chosen = [entries[name] for name in dict.fromkeys(names)]
        else:
            chosen = list(entries.values())
        return WakeStream(self, _runtime(), chosen)

    def _features_models(self, runtime: _Runtime) -> tuple[_Model, _Model]:
        with self._lock:
            if self._feature_models is None:
                folder = _builtin_dir()
                self._feature_models = (
                    _Model(runtime, folder / "melspectrogram.tflite"),
                    _Model(runtime, folder / "embedding_model.tflite"),
                )
            return self._feature_models

    def _silence(self, runtime: _Runtime, hop: int, rows: int) -> tuple[_Floats, _Floats]:
        """Mel frames and embeddings of a stream that has heard only silence, made once."""
        with self._lock:
            primed = self._primed.get(hop)
            if primed is not None and primed[1].shape[0] >= rows:
                return primed
        mel, emb = self._features_models(runtime)
        rows = max(rows, 64 + hop)
        features = _Features(runtime, mel, emb, hop, rows)
        try:
            zeros = np.zeros(_STEP * hop + _MEL_EXTRA, np.float32)
            # Enough silent steps to fill every frame and embedding from silence alone, in the
            # same positions within a call as a stream computes them.
            for _ in range(math.ceil((rows + _MEL_HISTORY_STEPS) / hop) + 2):
                features.compute(zeros.ctypes.data)
            primed = (features.mels.copy(), features.embeddings.copy())
        finally:
            features.close()
        with self._lock:
            self._primed[hop] = primed
        return primed


class WakeStream:
    """One audio stream (16 kHz, 16-bit little-endian, mono) through some wake word models."""

    def __init__(self, engine: WakeEngine, runtime: _Runtime, entries: list[_Entry]) -> None:
        self._closed = False
        self._engine = engine
        self._lib = runtime.lib
        hop = engine.hop_ms // _STEP_MS
        self._hop = hop
        windows = max(entry.windows for entry in entries)
        rows = windows - 1 + hop
        # Steps of audio (before a call's first step) whose scores see any of the call's audio.
        self._reach = windows - 1 + _MEL_HISTORY_STEPS
        self._replay = math.ceil(self._reach / hop)  # calls replayed when sound returns
        self._primed = engine._silence(runtime, hop, rows)
        mel, emb = engine._features_models(runtime)
        self._features = _Features(runtime, mel, emb, hop, rows)
        self._detectors: list[_Detector] = []
        try:
            self._detectors.extend(_Detector(runtime, entry) for entry in entries)
        except BaseException:
            self.close()
            raise
        self._features.load(*self._primed)
        self._emb_ptr: int = self._features.embeddings.ctypes.data
        self._score = ctypes.c_float()
        self._score_ptr = ctypes.addressof(self._score)
        self._rows = rows
        # Audio: float32 samples, buffer[0] is sample number _start of the stream (negative
        # numbers are the silence before it). It keeps the audio a replay needs.
        self._call_samples = _STEP * hop + _MEL_EXTRA
        self._piece = 4 * _STEP * hop
        keep = self._replay * hop * _STEP
        self._audio: _Floats = np.zeros(keep + self._call_samples + 2 * self._piece, np.float32)
        self._audio_ptr: int = self._audio.ctypes.data
        self._group = -1  # next call: steps -hop .. -1 reach into the stream's first 30 ms
        self._start = (self._group - self._replay) * hop * _STEP
        self._fill = -self._start
        self._valid = True  # features are those of all audio before the next call
        self._last_loud = -(2**62)
        # The newest audio as received (s16le), for the verifier, and how many samples came in.
        self._recent = bytearray()
        self._recent_max = 2 * (
            16 * (VERIFY_WINDOW_MS + VERIFY_TAIL_MS + 2 * engine.hop_ms) + _BLOCK
        )
        self._received = 0
        self._candidates: list[WakeDetection] = []
        self.stats = WakeStreamStats()

    @property
    def names(self) -> list[str]:
        """The models this stream runs."""
        return [detector.name for detector in self._detectors]

    @property
    def max_scores(self) -> dict[str, float]:
        """The highest score each model has reached on this stream."""
        return {detector.name: detector.max_score for detector in self._detectors}

    def process(self, audio: bytes) -> list[WakeDetection]:
        """Take the next audio (any length); return the wake words that fired in it."""
        if self._closed:
            raise WakeAudioError("the wake word stream is closed")
        view = memoryview(audio).cast("B")
        if len(view) % 2:
            raise WakeAudioError(
                f"audio must be 16-bit samples: {len(view)} bytes is not a whole number of them"
            )
        samples = np.frombuffer(view, dtype="<i2")
        found: list[WakeDetection] = []
        for start in range(0, len(samples), _BLOCK):
            found.extend(self._take(view[2 * start : 2 * (start + _BLOCK)]))
        return found

    def _take(self, block: memoryview) -> list[WakeDetection]:
        """Decide on a block of audio; the detections confirmed so far."""
        samples = np.frombuffer(block, dtype="<i2")
        self._recent += block
        del self._recent[: max(0, len(self._recent) - self._recent_max)]
        self._received += len(samples)
        detections: list[WakeDetection] = []
        position = 0
        while position < len(samples):
            if self._fill + self._piece > len(self._audio):
                self._compact()
            count = min(len(samples) - position, len(self._audio) - self._fill)
            self._audio[self._fill : self._fill + count] = samples[position : position + count]
            self._fill += count
            position += count
            end = self._start + self._fill
            while end >= (self._group + 1) * self._hop * _STEP + _MEL_EXTRA:
                self._step(detections)
        self._candidates.extend(detections)
        return self._confirmed()

    def _confirmed(self) -> list[WakeDetection]:
        """The candidates the verifier confirms, once the audio each needs is in."""
        verifier = self._engine.verifier
        if verifier is None:
            found, self._candidates = self._candidates, []
            return found
        found = []
        while self._candidates:
            candidate = self._candidates[0]
            end = (candidate.timestamp_ms + VERIFY_TAIL_MS) * 16
            if end > self._received:
                break
            del self._candidates[0]
            started = time.perf_counter()
            verdict = verifier.verify(
                candidate.name, self._phrase(candidate.name), self._window(end)
            )
            self.stats.candidates += 1
            self.stats.verify_cpu_s += verdict.cpu_s
            self.stats.verify_wall_s += time.perf_counter() - started
            if verdict.accepted:
                found.append(
                    WakeDetection(
                        candidate.name,
                        candidate.score,
                        candidate.timestamp_ms,
                        verify_score=verdict.score,
                    )
                )
            else:
                self.stats.rejected += 1
                _LOGGER.debug(
                    "Wake word %s not confirmed (%.2f, heard %r)",
                    candidate.name,
                    verdict.score,
                    verdict.heard,
                )
        return found

    def _phrase(self, name: str) -> str:
        for detector in self._detectors:
            if detector.name == name:
                return detector.entry.info.phrase
        return phrase_for(name)

    def _window(self, end: int) -> npt.NDArray[np.int16]:
        """The ``VERIFY_WINDOW_MS`` of audio ending at sample ``end`` (what is still kept)."""
        recent = np.frombuffer(self._recent, dtype="<i2")
        stop = len(recent) - (self._received - end)
        return recent[max(0, stop - VERIFY_WINDOW_MS * 16) : max(0, stop)].copy()

    def _compact(self) -> None:
        keep_from = (self._group - self._replay) * self._hop * _STEP
        offset = keep_from - self._start
        if offset > 0:
            self._audio[: self._fill - offset] = self._audio[offset : self._fill]
            self._fill -= offset
            self._start = keep_from

    def _step(self, detections: list[WakeDetection]) -> None:
        """Run the next call: ``hop`` steps of 80 ms."""
        engine = self._engine
        hop = self._hop
        group = self._group
        self._group += 1
        self.stats.steps += hop
        offset = group * hop * _STEP - self._start
        gate_dbfs = engine.gate_dbfs
        if gate_dbfs is None:
            self._last_loud = group
        else:
            audio = self._audio[offset : offset + self._call_samples]
            floor = 32768.0 * 10.0 ** (gate_dbfs / 20.0)
            if float(np.dot(audio, audio)) >= floor * floor * self._call_samples:
                self._last_loud = group
        if self._last_loud < group - self._replay:
            # Nothing these steps' scores could see was above the floor: skip them.
            self.stats.steps_gated += hop
            self._valid = False
            for detector in self._detectors:
                detector.consecutive = 0
            return
        features = self._features
        if not self._valid:
            # Sound again: start from silence and replay the buffered audio the scores see.
            features.load(*self._primed)
            for earlier in range(group - self._replay, group):
                earlier_offset = earlier * hop * _STEP - self._start
                features.compute(self._audio_ptr + earlier_offset * _FLOAT)
            self.stats.steps_replayed += self._replay * hop
            self._valid = True
        features.compute(self._audio_ptr + offset * _FLOAT)
        self.stats.steps_inferred += hop
        self._score_steps(group * hop, detections)

    def _score_steps(self, first_step: int, detections: list[WakeDetection]) -> None:
        engine = self._engine
        lib = self._lib
        threshold = engine.threshold
        trigger_level = max(1, engine.trigger_level)
        quiet_steps = math.ceil(engine.refractory_s * 1000 / _STEP_MS - 1e-9)
        hop = self._hop
        row_bytes = _FEATURES * _FLOAT
        score = self._score
        for detector in self._detectors:
            interpreter = detector.interpreter
            windows = detector.windows
            in_bytes = windows * row_bytes
            for index in range(hop):
                first_row = self._rows - hop + index - windows + 1
                lib.TfLiteTensorCopyFromBuffer(
                    interpreter.input, self._emb_ptr + first_row * row_bytes, in_bytes
                )
                lib.TfLiteInterpreterInvoke(interpreter.ptr)
                lib.TfLiteTensorCopyToBuffer(interpreter.output, self._score_ptr, _FLOAT)
                value = score.value
                detector.max_score = max(detector.max_score, value)
                step = first_step + index
                if step < detector.quiet_until or value < threshold:
                    detector.consecutive = 0
                    continue
                detector.consecutive += 1
                if detector.consecutive >= trigger_level:
                    detector.consecutive = 0
                    detector.quiet_until = step + 1 + quiet_steps
                    # The step's audio window ends 110 ms after the step starts.
                    ms = max(0, step * _STEP_MS + (_STEP + _MEL_EXTRA) * 1000 // 16000)
                    detections.append(WakeDetection(detector.name, value, ms))

    def close(self) -> None:
        """Release the stream's interpreters."""
        if self._closed:
            return
        self._closed = True
        for detector in getattr(self, "_detectors", []):
            detector.interpreter.close()
        if hasattr(self, "_features"):
            self._features.close()

    def __enter__(self) -> WakeStream:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()
