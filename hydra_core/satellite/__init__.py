"""Hydra voice satellite: a Wyoming satellite with local wake word detection.

Run it with ``python -m hydra_core.satellite`` next to a microphone and a speaker; Home
Assistant's Wyoming integration connects to it. See docs/satellite.md.
"""

from .audio import CommandMic, CommandSpeaker, FileMic, NullSpeaker, PcmFormat, WavFileSpeaker
from .satellite import Mode, SatelliteError, SatelliteSettings, VoiceSatellite

__all__ = [
    "CommandMic",
    "CommandSpeaker",
    "FileMic",
    "Mode",
    "NullSpeaker",
    "PcmFormat",
    "SatelliteError",
    "SatelliteSettings",
    "VoiceSatellite",
    "WavFileSpeaker",
]
