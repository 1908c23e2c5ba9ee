"""The voice part's wire models: the services' state, the settings, and the change request."""

from __future__ import annotations

from dataclasses import dataclass

from typing_extensions import TypedDict

from ..wire import request_model

# The type of message on /api/v1/events this part sends.
EVENT_VOICE = "voice"  # VoiceStatus: a setting, a model's state or a download's progress changed

# Second-stage wake word verification (see voice/wake_verify.py): the modes, and the wake
# phrase's share of the probability a candidate needs (measured: benchmarks/wake_verify.py).
VERIFY_MODES = ("off", "whisper")
DEFAULT_VERIFY_MODE = "whisper"
DEFAULT_VERIFY_THRESHOLD = 0.5


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceSettings:
    """What Home Assistant may change on the worker's voice services at run time."""

    wake_threshold: float = 0.5
    wake_trigger_level: int = 1
    wake_verify: str = DEFAULT_VERIFY_MODE  # second-stage check of each firing: off or whisper
    wake_verify_threshold: float = DEFAULT_VERIFY_THRESHOLD
    stt_model: str = "base.en"
    tts_voice: str | None = None
    tts_speed: float = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceServiceState:
    """One voice service (wake, stt or tts): whether it is offered, and if not, why."""

    available: bool
    reason: str | None = None
    # not_loaded, loading, loaded or error; "downloading" while a model comes in.
    state: str = "not_loaded"
    # 0..1 while downloading, else None.
    progress: float | None = None
    # What can be chosen: wake models, installed/known STT models, TTS voices.
    choices: tuple[str, ...] = ()
    # The model the service uses (downloaded when first needed; None for wake), and the models
    # on the worker's disk: Home Assistant shows each download as an update of that model.
    model: str | None = None
    installed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceStatus:
    """What ``/api/v1/voice`` answers: the Wyoming port, each service and the settings."""

    port: int
    settings: VoiceSettings
    wake: VoiceServiceState
    stt: VoiceServiceState
    tts: VoiceServiceState


@request_model
class VoiceChanges(TypedDict, total=False):
    """``PUT /voice``: the settings to change; the service checks ranges and choices."""

    wake_threshold: float
    wake_trigger_level: int
    wake_verify: str
    wake_verify_threshold: float
    stt_model: str
    tts_voice: str | None
    tts_speed: float
