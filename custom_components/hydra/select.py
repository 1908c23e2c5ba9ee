"""Selects: the worker's speech-to-text model and text-to-speech voice."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import override

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from hydra_core.models import VoiceServiceState, VoiceStatus

from .coordinator import HydraConfigEntry, HydraVoiceCoordinator
from .entity import HydraVoiceEntity
from .voice import async_update_voice

# Each change is one request to the worker.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class HydraVoiceSelectDescription(SelectEntityDescription):
    """A voice setting chosen from what the worker offers; ``key`` is its VoiceSettings name."""

    service_fn: Callable[[VoiceStatus], VoiceServiceState]


VOICE_SELECTS: tuple[HydraVoiceSelectDescription, ...] = (
    HydraVoiceSelectDescription(
        key="stt_model",
        translation_key="stt_model",
        entity_category=EntityCategory.CONFIG,
        service_fn=lambda status: status.stt,
    ),
    HydraVoiceSelectDescription(
        key="tts_voice",
        translation_key="tts_voice",
        entity_category=EntityCategory.CONFIG,
        service_fn=lambda status: status.tts,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HydraConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the voice selects when the worker serves voice."""
    if (voice := entry.runtime_data.voice) is None:
        return
    async_add_entities(HydraVoiceSelect(voice, description) for description in VOICE_SELECTS)


class HydraVoiceSelect(HydraVoiceEntity, SelectEntity):
    """A voice setting with the worker's choices as options."""

    entity_description: HydraVoiceSelectDescription

    def __init__(
        self, coordinator: HydraVoiceCoordinator, description: HydraVoiceSelectDescription
    ) -> None:
        """Describe the select."""
        super().__init__(coordinator, description.key)
        self.entity_description = description

    @property
    def _service(self) -> VoiceServiceState:
        return self.entity_description.service_fn(self.coordinator.data)

    @property
    @override
    def available(self) -> bool:
        """Unavailable while the worker cannot offer the service (no model to choose from)."""
        return super().available and bool(self._service.choices)

    @property
    @override
    def options(self) -> list[str]:
        choices = list(self._service.choices)
        if (current := self.current_option) is not None and current not in choices:
            choices.append(current)
        return choices

    @property
    @override
    def current_option(self) -> str | None:
        return getattr(self.coordinator.data.settings, self.entity_description.key)

    @override
    async def async_select_option(self, option: str) -> None:
        await async_update_voice(self.coordinator, **{self.entity_description.key: option})
