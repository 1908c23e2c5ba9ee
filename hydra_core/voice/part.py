"""The voice part: wake word, speech-to-text and text-to-speech on one Wyoming server."""

from __future__ import annotations

from typing import Self

from ..wire import dump
from ..worker.part import BuildContext, RunningPart
from .models import EVENT_VOICE
from .options import VoiceOptions
from .service import VoiceService


class VoicePart(RunningPart[VoiceService]):
    """The Wyoming voice server and its settings."""

    name = "voice"
    options = VoiceOptions
    event_types = (EVENT_VOICE,)
    disabled_code = "voice_disabled"
    disabled_message = "This worker serves no voice services"
    route_modules = ("routes",)  # ``/voice``

    @classmethod
    def build(cls, context: BuildContext) -> Self | None:
        """Off when the voice option is false."""
        options = context.options(VoiceOptions)
        if not options.voice:
            return None
        core = context.config.core
        bus = context.bus
        return cls(
            VoiceService(
                options,
                host=core.host,
                data_dir=context.data_dir,
                models_dir=context.models_dir,
                announce_name=core.name if options.voice_zeroconf else None,
                on_change=lambda status: bus.publish(EVENT_VOICE, dump(status)),
            )
        )

    def capabilities(self) -> tuple[str, ...]:
        """The Wyoming services this part serves. Whether each can run now (models, downloads)
        is in ``/api/v1/voice``: working it out reads the model folders, too much for every
        status poll."""
        return ("wake", "stt", "tts")
