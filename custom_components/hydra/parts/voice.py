"""The voice part: the worker's speech-to-text model, text-to-speech voice, wake word threshold
and its second-stage verification (mode and threshold), each a setting changed with one request
and shown at once; and each speech model's download, shown as an update in progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, override

from homeassistant.components.number import NumberEntity, NumberEntityDescription, NumberMode
from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.components.update import (
    UpdateEntity,
    UpdateEntityDescription,
    UpdateEntityFeature,
)
from homeassistant.const import EntityCategory, Platform
from homeassistant.core import callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from hydra_core.models import WorkerEvent
from hydra_core.voice.client import VoiceClient
from hydra_core.voice.models import (
    EVENT_VOICE,
    VERIFY_MODES,
    VoiceServiceState,
    VoiceSettings,
    VoiceStatus,
)
from hydra_core.wire import dump, load

from ..const import VOICE_SCAN_INTERVAL
from ..coordinator import HydraPartCoordinator
from ..data import HydraConfigEntry
from ..entity import HydraWorkerPartEntity
from ..helpers import async_worker_request
from ..part import Part


class HydraVoiceCoordinator(HydraPartCoordinator[VoiceStatus, VoiceClient]):
    """The worker's voice services and settings."""

    part = "voice"
    api_type = VoiceClient
    disabled = "voice_disabled"
    interval = VOICE_SCAN_INTERVAL

    @override
    async def async_fetch(self) -> VoiceStatus:
        return await self.api.async_voice()

    @override
    async def async_handle_event(self, event: WorkerEvent) -> None:
        self.async_set_updated_data(load(VoiceStatus, event.data))

    @override
    def diagnostics(self) -> dict[str, Any]:
        return {**super().diagnostics(), "status": dump(self.data)}


async def async_update_voice(coordinator: HydraVoiceCoordinator, **changes: Any) -> None:
    """Change voice settings on the worker and show the result at once."""
    status = await async_worker_request(coordinator, coordinator.api.async_update_voice(**changes))
    coordinator.async_set_updated_data(status)


@dataclass(frozen=True, kw_only=True)
class HydraVoiceNumberDescription(NumberEntityDescription):
    """A wake word setting between 0 and 1; ``key`` is its VoiceSettings name."""

    value_fn: Callable[[VoiceSettings], float]


# Within the worker's limits of 0.01 to 0.99 (hydra_core.voice.service).
WAKE_THRESHOLD = HydraVoiceNumberDescription(
    key="wake_threshold",
    translation_key="wake_threshold",
    entity_category=EntityCategory.CONFIG,
    native_min_value=0.05,
    native_max_value=0.95,
    native_step=0.05,
    mode=NumberMode.SLIDER,
    value_fn=lambda settings: settings.wake_threshold,
)
WAKE_VERIFY_THRESHOLD = HydraVoiceNumberDescription(
    key="wake_verify_threshold",
    translation_key="wake_verify_threshold",
    entity_category=EntityCategory.CONFIG,
    native_min_value=0.05,
    native_max_value=0.95,
    native_step=0.05,
    mode=NumberMode.SLIDER,
    value_fn=lambda settings: settings.wake_verify_threshold,
)
VOICE_NUMBERS = (WAKE_THRESHOLD, WAKE_VERIFY_THRESHOLD)


@dataclass(frozen=True, kw_only=True)
class HydraVoiceSelectDescription(SelectEntityDescription):
    """A voice setting chosen from what the worker offers; ``key`` is its VoiceSettings name.

    ``fixed_options``: a setting whose choices are fixed (translated states), not the service's.
    """

    service_fn: Callable[[VoiceStatus], VoiceServiceState]
    value_fn: Callable[[VoiceSettings], str | None]
    fixed_options: tuple[str, ...] = ()


VOICE_SELECTS: tuple[HydraVoiceSelectDescription, ...] = (
    HydraVoiceSelectDescription(
        key="stt_model",
        translation_key="stt_model",
        entity_category=EntityCategory.CONFIG,
        service_fn=lambda status: status.stt,
        value_fn=lambda settings: settings.stt_model,
    ),
    HydraVoiceSelectDescription(
        key="tts_voice",
        translation_key="tts_voice",
        entity_category=EntityCategory.CONFIG,
        service_fn=lambda status: status.tts,
        value_fn=lambda settings: settings.tts_voice,
    ),
    HydraVoiceSelectDescription(
        key="wake_verify",
        translation_key="wake_verify",
        entity_category=EntityCategory.CONFIG,
        service_fn=lambda status: status.wake,
        value_fn=lambda settings: settings.wake_verify,
        fixed_options=VERIFY_MODES,
    ),
)


@dataclass(frozen=True, kw_only=True)
class HydraModelUpdateDescription(UpdateEntityDescription):
    """A speech model the worker downloads when its service first needs it."""

    service_fn: Callable[[VoiceStatus], VoiceServiceState]
    title: str


MODEL_UPDATES: tuple[HydraModelUpdateDescription, ...] = (
    HydraModelUpdateDescription(
        key="stt_model_download",
        translation_key="stt_model_download",
        service_fn=lambda status: status.stt,
        title="Whisper",
    ),
    HydraModelUpdateDescription(
        key="tts_model_download",
        translation_key="tts_model_download",
        service_fn=lambda status: status.tts,
        title="Kokoro",
    ),
)
# The installed version of a model that is not on the worker's disk yet.
NOT_DOWNLOADED = "none"


@callback
def async_setup_updates(
    entry: HydraConfigEntry,
    coordinator: HydraVoiceCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The speech-to-text and text-to-speech models' downloads."""
    async_add_entities(HydraModelUpdate(coordinator, description) for description in MODEL_UPDATES)


@callback
def async_setup_numbers(
    entry: HydraConfigEntry,
    coordinator: HydraVoiceCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The wake word threshold and its verification's threshold."""
    async_add_entities(HydraWakeNumber(coordinator, description) for description in VOICE_NUMBERS)


@callback
def async_setup_selects(
    entry: HydraConfigEntry,
    coordinator: HydraVoiceCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The speech-to-text model, the text-to-speech voice and the wake word verification."""
    async_add_entities(HydraVoiceSelect(coordinator, description) for description in VOICE_SELECTS)


class HydraVoiceEntity(HydraWorkerPartEntity[HydraVoiceCoordinator]):
    """A setting of the worker's voice services, on the worker's device."""


class HydraWakeNumber(HydraVoiceEntity, NumberEntity):
    """A wake word threshold: the model's score that counts as a detection, or the share the
    verifier needs to confirm one. Lower hears more, and more falsely."""

    entity_description: HydraVoiceNumberDescription

    @property
    @override
    def available(self) -> bool:
        return super().available and self.coordinator.data.wake.available

    @property
    @override
    def native_value(self) -> float:
        return self.entity_description.value_fn(self.coordinator.data.settings)

    @override
    async def async_set_native_value(self, value: float) -> None:
        await async_update_voice(self.coordinator, **{self.entity_description.key: round(value, 2)})


class HydraVoiceSelect(HydraVoiceEntity, SelectEntity):
    """A voice setting with the worker's choices as options."""

    entity_description: HydraVoiceSelectDescription

    @property
    def _service(self) -> VoiceServiceState:
        return self.entity_description.service_fn(self.coordinator.data)

    @property
    @override
    def available(self) -> bool:
        """Unavailable while the worker cannot offer the service (no model to choose from)."""
        if self.entity_description.fixed_options:
            return super().available and self._service.available
        return super().available and bool(self._service.choices)

    @property
    @override
    def options(self) -> list[str]:
        choices = list(self.entity_description.fixed_options or self._service.choices)
        if (current := self.current_option) is not None and current not in choices:
            choices.append(current)
        return choices

    @property
    @override
    def current_option(self) -> str | None:
        return self.entity_description.value_fn(self.coordinator.data.settings)

    @override
    async def async_select_option(self, option: str) -> None:
        await async_update_voice(self.coordinator, **{self.entity_description.key: option})


class HydraModelUpdate(HydraVoiceEntity, UpdateEntity):
    """A speech model's download as Home Assistant shows an install: the model chosen is the
    latest version, the installed one is that model once it is on the worker's disk ("none"
    before: an update is available), and while it comes in the update is in progress with its
    percent, pushed by the worker's voice events. There is nothing to install by hand: the
    worker downloads the model when its service is first used."""

    entity_description: HydraModelUpdateDescription
    _attr_supported_features = UpdateEntityFeature.PROGRESS

    def __init__(
        self, coordinator: HydraVoiceCoordinator, description: HydraModelUpdateDescription
    ) -> None:
        """Describe the model's update, titled with the model's family."""
        super().__init__(coordinator, description)
        self._attr_title = description.title

    @property
    def _service(self) -> VoiceServiceState:
        return self.entity_description.service_fn(self.coordinator.data)

    @property
    @override
    def available(self) -> bool:
        return super().available and self._service.model is not None

    @property
    @override
    def latest_version(self) -> str | None:
        return self._service.model

    @property
    @override
    def installed_version(self) -> str | None:
        service = self._service
        if service.model is None:
            return None
        return service.model if service.model in service.installed else NOT_DOWNLOADED

    @property
    @override
    def in_progress(self) -> bool:
        return self._service.state == "downloading"

    @property
    @override
    def update_percentage(self) -> float | None:
        progress = self._service.progress
        return None if progress is None else round(100 * progress, 1)


VOICE = Part(
    coordinator=HydraVoiceCoordinator,
    events=frozenset({EVENT_VOICE}),
    platforms={
        Platform.NUMBER: async_setup_numbers,
        Platform.SELECT: async_setup_selects,
        Platform.UPDATE: async_setup_updates,
    },
)
