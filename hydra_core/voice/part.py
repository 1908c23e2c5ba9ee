"""The voice part: wake word, speech-to-text and text-to-speech on one Wyoming server."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Self

from aiohttp import web

from ..wire import dump
from ..worker.part import BuildContext, Part
from .models import EVENT_VOICE
from .options import VoiceOptions
from .service import VoiceService


class VoicePart(Part):
    """The Wyoming voice server and its settings."""

    name = "voice"
    options = VoiceOptions
    event_types = (EVENT_VOICE,)
    disabled_code = "voice_disabled"
    disabled_message = "This worker serves no voice services"

    @classmethod
    def route_table(cls) -> Iterable[web.AbstractRouteDef]:
        """``/voice``."""
        from .routes import routes  # noqa: PLC0415 - the routes look this class up

        return routes

    def __init__(self, service: VoiceService) -> None:
        self.service = service

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

    async def async_start(self) -> None:
        """Listen for Wyoming clients."""
        await self.service.async_start()

    async def async_stop(self) -> None:
        """Stop serving and unload the models."""
        await self.service.async_stop()

    def capabilities(self) -> tuple[str, ...]:
        """The services offered now: wake, stt, tts."""
        status = self.service.status()
        return tuple(
            name
            for name, state in (("wake", status.wake), ("stt", status.stt), ("tts", status.tts))
            if state.available
        )
