"""Numbers: the task queue's resource gate and concurrency, and the wake word threshold."""

from dataclasses import dataclass
from typing import override

from homeassistant.components.number import (
    NumberDeviceClass,
    NumberEntity,
    NumberEntityDescription,
    NumberMode,
)
from homeassistant.const import PERCENTAGE, EntityCategory, UnitOfInformation, UnitOfTime
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from hydra_core.client import HydraError

from .coordinator import HydraConfigEntry, HydraTaskCoordinator, HydraVoiceCoordinator
from .entity import HydraQueueEntity, HydraVoiceEntity
from .tasks import task_error
from .voice import async_update_voice

# Each change is one request to the worker.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class HydraSchedulerNumberDescription(NumberEntityDescription):
    """A scheduler setting; ``key`` is its name in SchedulerSettings."""

    whole: bool = False


# The limits are the worker's own (hydra_core.scheduler.scheduler._SETTING_LIMITS).
SCHEDULER_NUMBERS: tuple[HydraSchedulerNumberDescription, ...] = (
    HydraSchedulerNumberDescription(
        key="max_gpu_utilization",
        translation_key="max_gpu_utilization",
        entity_category=EntityCategory.CONFIG,
        native_unit_of_measurement=PERCENTAGE,
        native_min_value=0,
        native_max_value=100,
        native_step=1,
        mode=NumberMode.SLIDER,
    ),
    HydraSchedulerNumberDescription(
        key="min_free_vram_gb",
        translation_key="min_free_vram",
        entity_category=EntityCategory.CONFIG,
        device_class=NumberDeviceClass.DATA_SIZE,
        # The worker counts VRAM in units of 1024³ bytes.
        native_unit_of_measurement=UnitOfInformation.GIBIBYTES,
        native_min_value=0,
        native_max_value=1024,
        native_step=0.5,
        mode=NumberMode.BOX,
    ),
    HydraSchedulerNumberDescription(
        key="poll_interval_s",
        translation_key="poll_interval",
        entity_category=EntityCategory.CONFIG,
        device_class=NumberDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        native_min_value=1,
        native_max_value=3600,
        native_step=1,
        mode=NumberMode.BOX,
    ),
    HydraSchedulerNumberDescription(
        key="max_concurrent",
        translation_key="max_concurrent",
        entity_category=EntityCategory.CONFIG,
        native_min_value=1,
        native_max_value=64,
        native_step=1,
        mode=NumberMode.BOX,
        whole=True,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HydraConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the scheduler's settings and the wake threshold, where the worker has them."""
    if (tasks := entry.runtime_data.tasks) is not None:
        async_add_entities(
            HydraSchedulerNumber(tasks, description) for description in SCHEDULER_NUMBERS
        )
    if (voice := entry.runtime_data.voice) is not None:
        async_add_entities([HydraWakeThresholdNumber(voice)])


class HydraSchedulerNumber(HydraQueueEntity, NumberEntity):
    """One of the scheduler's settings."""

    entity_description: HydraSchedulerNumberDescription

    def __init__(
        self, coordinator: HydraTaskCoordinator, description: HydraSchedulerNumberDescription
    ) -> None:
        """Describe the number."""
        super().__init__(coordinator, description.key)
        self.entity_description = description

    @property
    @override
    def native_value(self) -> float:
        return getattr(self.coordinator.data.scheduler.settings, self.entity_description.key)

    @override
    async def async_set_native_value(self, value: float) -> None:
        setting = int(value) if self.entity_description.whole else value
        try:
            scheduler = await self.coordinator.client.async_update_scheduler(
                **{self.entity_description.key: setting}
            )
        except HydraError as err:
            raise task_error(self.coordinator, err) from err
        self.coordinator.async_apply_scheduler(scheduler)


# Within the worker's limits of 0.01 to 0.99 (hydra_core.voice.service).
WAKE_THRESHOLD = NumberEntityDescription(
    key="wake_threshold",
    translation_key="wake_threshold",
    entity_category=EntityCategory.CONFIG,
    native_min_value=0.05,
    native_max_value=0.95,
    native_step=0.05,
    mode=NumberMode.SLIDER,
)


class HydraWakeThresholdNumber(HydraVoiceEntity, NumberEntity):
    """The wake word score that counts as a detection: lower hears more, and more falsely."""

    entity_description = WAKE_THRESHOLD

    def __init__(self, coordinator: HydraVoiceCoordinator) -> None:
        """Describe the number."""
        super().__init__(coordinator, WAKE_THRESHOLD.key)

    @property
    @override
    def available(self) -> bool:
        return super().available and self.coordinator.data.wake.available

    @property
    @override
    def native_value(self) -> float:
        return self.coordinator.data.settings.wake_threshold

    @override
    async def async_set_native_value(self, value: float) -> None:
        await async_update_voice(self.coordinator, wake_threshold=round(value, 2))
