"""Selects: the worker's speech-to-text model and text-to-speech voice, and the GPUs' power
profiles (each GPU's, and all of them at once)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import override

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from hydra_core.models import POWER_PROFILES, GpuInfo, VoiceServiceState, VoiceStatus

from .const import DOMAIN
from .coordinator import (
    HydraConfigEntry,
    HydraPowerCoordinator,
    HydraStatusCoordinator,
    HydraVoiceCoordinator,
)
from .entity import HydraGpuPowerEntity, HydraPowerEntity, HydraVoiceEntity
from .power import async_set_power
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


POWER_PROFILE = SelectEntityDescription(
    key="power_profile", translation_key="power_profile", options=list(POWER_PROFILES)
)
POWER_PROFILE_ALL = SelectEntityDescription(
    key="power_profile_all", translation_key="power_profile_all", options=list(POWER_PROFILES)
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HydraConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the voice selects when the worker serves voice, and the power profiles when it
    manages GPU power: one per GPU (GPUs that appear later too), and one for all of them."""
    if (voice := entry.runtime_data.voice) is not None:
        async_add_entities(HydraVoiceSelect(voice, description) for description in VOICE_SELECTS)
    if (power := entry.runtime_data.power) is None:
        return
    status = entry.runtime_data.status
    known: set[str] = set()

    @callback
    def add_new_gpus() -> None:
        new = [gpu for uuid, gpu in status.gpus.items() if uuid not in known]
        if not new:
            return
        entities: list[SelectEntity] = [HydraGpuPowerSelect(power, status, gpu) for gpu in new]
        if not known:
            entities.append(HydraAllPowerSelect(power))
        known.update(gpu.uuid for gpu in new)
        async_add_entities(entities)

    add_new_gpus()
    entry.async_on_unload(status.async_add_listener(add_new_gpus))


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


class HydraGpuPowerSelect(HydraGpuPowerEntity, SelectEntity):
    """One GPU's power profile; unknown while it runs a limit set in watts, or none was chosen."""

    entity_description = POWER_PROFILE

    def __init__(
        self, coordinator: HydraPowerCoordinator, status: HydraStatusCoordinator, gpu: GpuInfo
    ) -> None:
        """Describe the select."""
        super().__init__(coordinator, status, gpu, POWER_PROFILE.key)

    @property
    @override
    def current_option(self) -> str | None:
        gpu = self.gpu_power
        return gpu.profile if gpu is not None and gpu.profile in POWER_PROFILES else None

    @override
    async def async_select_option(self, option: str) -> None:
        if (gpu := self.gpu_power) is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="gpu_not_found",
                translation_placeholders={"error": f"The worker reports no GPU {self.gpu_uuid}"},
            )
        await async_set_power(self.coordinator, self._context, profile=option, gpus=[gpu.index])


class HydraAllPowerSelect(HydraPowerEntity, SelectEntity):
    """Every GPU's power profile at once; unknown unless they all run the same profile."""

    entity_description = POWER_PROFILE_ALL

    def __init__(self, coordinator: HydraPowerCoordinator) -> None:
        """Describe the select."""
        super().__init__(coordinator, POWER_PROFILE_ALL.key)

    @property
    @override
    def available(self) -> bool:
        return super().available and bool(self.coordinator.data.gpus)

    @property
    @override
    def current_option(self) -> str | None:
        profiles = {gpu.profile for gpu in self.coordinator.data.gpus}
        if len(profiles) != 1:
            return None
        (profile,) = profiles
        return profile if profile in POWER_PROFILES else None

    @override
    async def async_select_option(self, option: str) -> None:
        await async_set_power(self.coordinator, self._context, profile=option)
