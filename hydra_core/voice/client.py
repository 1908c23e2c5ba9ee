"""The voice part's calls: the voice services and their settings."""

from __future__ import annotations

from typing import Any

from ..client import PartClient
from .models import VoiceStatus


class VoiceClient(PartClient):
    """The voice services and their settings, through a ``HydraClient``."""

    async def async_voice(self) -> VoiceStatus:
        """The voice services: the Wyoming port, what is offered (or why not), the settings."""
        return await self._client.call(VoiceStatus, "GET", "voice")

    async def async_update_voice(self, **changes: Any) -> VoiceStatus:
        """Change wake_threshold, stt_model, tts_voice, ...; HydraApiError invalid_setting."""
        return await self._client.call(VoiceStatus, "PUT", "voice", json=changes)
