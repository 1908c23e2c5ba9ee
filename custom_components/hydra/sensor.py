"""Sensors: every GPU's load, temperature, memory and power, the worker's GPU count, each
container's state, health, CPU, memory and restarts, and the task queue's counts."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, override

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    UnitOfInformation,
    UnitOfPower,
    UnitOfTemperature,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from hydra_core.models import (
    CONTAINER_HEALTH,
    CONTAINER_STATES,
    ContainerInfo,
    GpuInfo,
    WorkerStatus,
)

from .coordinator import (
    HydraConfigEntry,
    HydraContainerCoordinator,
    HydraQualityCoordinator,
    HydraStatusCoordinator,
    HydraTaskCoordinator,
)
from .entity import (
    HydraContainerEntity,
    HydraGpuEntity,
    HydraQueueEntity,
    HydraReviewEntity,
    HydraWorkerEntity,
)

# The coordinator does all the I/O; entities only read its data.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class HydraGpuSensorDescription(SensorEntityDescription):
    """A GPU sensor: how to read it, and whether this card has it at all."""

    value_fn: Callable[[GpuInfo], float | int | None]
    has_fn: Callable[[GpuInfo], bool] = lambda _gpu: True


@dataclass(frozen=True, kw_only=True)
class HydraWorkerSensorDescription(SensorEntityDescription):
    """A worker sensor."""

    value_fn: Callable[[WorkerStatus], float | int | None]


@dataclass(frozen=True, kw_only=True)
class HydraContainerSensorDescription(SensorEntityDescription):
    """A container sensor."""

    value_fn: Callable[[ContainerInfo], str | float | int | None]


def _enum(value: str, options: tuple[str, ...]) -> str | None:
    """The value if the sensor knows it; an engine's odd state shows as unknown, not an error."""
    return value if value in options else None


def _memory_usage(gpu: GpuInfo) -> float | None:
    if not gpu.memory_total_bytes or gpu.memory_used_bytes is None:
        return None
    return round(100.0 * gpu.memory_used_bytes / gpu.memory_total_bytes, 1)


GPU_SENSORS: tuple[HydraGpuSensorDescription, ...] = (
    HydraGpuSensorDescription(
        key="utilization",
        translation_key="utilization",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda gpu: gpu.utilization_percent,
    ),
    HydraGpuSensorDescription(
        key="temperature",
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda gpu: gpu.temperature_c,
    ),
    HydraGpuSensorDescription(
        key="memory_usage",
        translation_key="memory_usage",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=_memory_usage,
    ),
    HydraGpuSensorDescription(
        key="memory_used",
        translation_key="memory_used",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIBIBYTES,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda gpu: gpu.memory_used_bytes,
    ),
    HydraGpuSensorDescription(
        key="memory_free",
        translation_key="memory_free",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIBIBYTES,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda gpu: gpu.memory_free_bytes,
    ),
    HydraGpuSensorDescription(
        key="memory_total",
        translation_key="memory_total",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIBIBYTES,
        suggested_display_precision=1,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda gpu: gpu.memory_total_bytes,
    ),
    HydraGpuSensorDescription(
        key="memory_controller_utilization",
        translation_key="memory_controller_utilization",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        entity_registry_enabled_default=False,
        value_fn=lambda gpu: gpu.memory_utilization_percent,
    ),
    HydraGpuSensorDescription(
        key="power_draw",
        translation_key="power_draw",
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.WATT,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda gpu: gpu.power_draw_w,
        has_fn=lambda gpu: gpu.power_draw_w is not None,
    ),
    HydraGpuSensorDescription(
        key="power_limit",
        translation_key="power_limit",
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.WATT,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda gpu: gpu.power_limit_w,
        has_fn=lambda gpu: gpu.power_limit_w is not None,
    ),
    HydraGpuSensorDescription(
        key="fan_speed",
        translation_key="fan_speed",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda gpu: gpu.fan_percent,
        # Datacenter cards have no fan of their own: no entity rather than one that is never set.
        has_fn=lambda gpu: gpu.fan_percent is not None,
    ),
)

WORKER_SENSORS: tuple[HydraWorkerSensorDescription, ...] = (
    HydraWorkerSensorDescription(
        key="gpu_count",
        translation_key="gpu_count",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda status: len(status.gpu.gpus),
    ),
)


CONTAINER_SENSORS: tuple[HydraContainerSensorDescription, ...] = (
    HydraContainerSensorDescription(
        key="state",
        translation_key="container_state",
        device_class=SensorDeviceClass.ENUM,
        options=list(CONTAINER_STATES),
        value_fn=lambda container: _enum(container.state, CONTAINER_STATES),
    ),
    HydraContainerSensorDescription(
        key="health",
        translation_key="container_health",
        device_class=SensorDeviceClass.ENUM,
        options=list(CONTAINER_HEALTH),
        value_fn=lambda container: _enum(container.health, CONTAINER_HEALTH),
    ),
    HydraContainerSensorDescription(
        key="cpu",
        translation_key="container_cpu",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        # Changes every minute for every container: recorded only where the user wants it.
        entity_registry_enabled_default=False,
        value_fn=lambda container: container.cpu_percent,
    ),
    HydraContainerSensorDescription(
        key="memory",
        translation_key="memory_used",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.MEBIBYTES,
        suggested_display_precision=0,
        state_class=SensorStateClass.MEASUREMENT,
        entity_registry_enabled_default=False,
        value_fn=lambda container: container.memory_used_bytes,
    ),
    HydraContainerSensorDescription(
        key="restarts",
        translation_key="container_restarts",
        # A recreated container starts counting again from zero: a reset, not a decrease.
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda container: container.restart_count,
    ),
)


@dataclass(frozen=True, kw_only=True)
class HydraQueueSensorDescription(SensorEntityDescription):
    """A count of tasks in one state; ``today`` counts only those finished since midnight."""

    task_state: str
    today: bool = False


QUEUE_SENSORS: tuple[HydraQueueSensorDescription, ...] = (
    HydraQueueSensorDescription(
        key="tasks_queued",
        translation_key="tasks_queued",
        task_state="queued",
        state_class=SensorStateClass.MEASUREMENT,
    ),
    HydraQueueSensorDescription(
        key="tasks_running",
        translation_key="tasks_running",
        task_state="running",
        state_class=SensorStateClass.MEASUREMENT,
    ),
    HydraQueueSensorDescription(
        key="tasks_waiting",
        translation_key="tasks_waiting",
        task_state="waiting",
        state_class=SensorStateClass.MEASUREMENT,
    ),
    # A retried task leaves the failed count again: a total that may go down, reset at midnight.
    HydraQueueSensorDescription(
        key="tasks_succeeded_today",
        translation_key="tasks_succeeded_today",
        task_state="succeeded",
        today=True,
        state_class=SensorStateClass.TOTAL,
    ),
    HydraQueueSensorDescription(
        key="tasks_failed_today",
        translation_key="tasks_failed_today",
        task_state="failed",
        today=True,
        state_class=SensorStateClass.TOTAL,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HydraConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the worker's sensors, then each GPU's, including GPUs that appear later."""
    coordinator = entry.runtime_data.status
    async_add_entities(
        HydraWorkerSensor(coordinator, description) for description in WORKER_SENSORS
    )
    known: set[str] = set()

    @callback
    def add_new_gpus() -> None:
        new = [gpu for uuid, gpu in coordinator.gpus.items() if uuid not in known]
        if not new:
            return
        known.update(gpu.uuid for gpu in new)
        async_add_entities(
            HydraGpuSensor(coordinator, gpu, description)
            for gpu in new
            for description in GPU_SENSORS
            if description.has_fn(gpu)
        )

    add_new_gpus()
    entry.async_on_unload(coordinator.async_add_listener(add_new_gpus))

    if (tasks := entry.runtime_data.tasks) is not None:
        async_add_entities(HydraQueueSensor(tasks, description) for description in QUEUE_SENSORS)

    if (quality := entry.runtime_data.quality) is not None:
        async_add_entities([HydraReviewSensor(quality)])

    if (tracker := entry.runtime_data.tracker) is not None:
        tracker.async_add_platform(
            async_add_entities,
            lambda containers, container: (
                HydraContainerSensor(containers, container, description)
                for description in CONTAINER_SENSORS
            ),
        )


class HydraWorkerSensor(HydraWorkerEntity, SensorEntity):
    """A sensor of the worker."""

    entity_description: HydraWorkerSensorDescription

    def __init__(
        self, coordinator: HydraStatusCoordinator, description: HydraWorkerSensorDescription
    ) -> None:
        """Describe the sensor."""
        super().__init__(coordinator, description.key)
        self.entity_description = description

    @property
    @override
    def native_value(self) -> float | int | None:
        return self.entity_description.value_fn(self.coordinator.data)


class HydraGpuSensor(HydraGpuEntity, SensorEntity):
    """A sensor of one GPU."""

    entity_description: HydraGpuSensorDescription

    def __init__(
        self,
        coordinator: HydraStatusCoordinator,
        gpu: GpuInfo,
        description: HydraGpuSensorDescription,
    ) -> None:
        """Describe the sensor."""
        super().__init__(coordinator, gpu, description.key)
        self.entity_description = description

    @property
    @override
    def native_value(self) -> float | int | None:
        gpu = self.gpu
        return None if gpu is None else self.entity_description.value_fn(gpu)


class HydraContainerSensor(HydraContainerEntity, SensorEntity):
    """A sensor of one container."""

    entity_description: HydraContainerSensorDescription

    def __init__(
        self,
        coordinator: HydraContainerCoordinator,
        container: ContainerInfo,
        description: HydraContainerSensorDescription,
    ) -> None:
        """Describe the sensor."""
        super().__init__(coordinator, container, description.key)
        self.entity_description = description

    @property
    @override
    def native_value(self) -> str | float | int | None:
        container = self.container
        return None if container is None else self.entity_description.value_fn(container)


AWAITING_REVIEW = SensorEntityDescription(
    key="assets_awaiting_review",
    translation_key="assets_awaiting_review",
    state_class=SensorStateClass.MEASUREMENT,
)


class HydraReviewSensor(HydraReviewEntity, SensorEntity):
    """How many generated images wait for review; per character, how many were accepted and
    the auto-accept threshold the decisions have taught."""

    entity_description = AWAITING_REVIEW

    def __init__(self, coordinator: HydraQualityCoordinator) -> None:
        """Describe the sensor."""
        super().__init__(coordinator, AWAITING_REVIEW.key)

    @property
    @override
    def native_value(self) -> int:
        return self.coordinator.data.status.pending

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any]:
        learning = self.coordinator.data.status.learning
        return {
            "acceptance_rate": {
                _character(item.character): round(item.acceptance_rate * 100, 1)
                for item in learning
                if item.acceptance_rate is not None
            },
            "threshold": {_character(item.character): item.threshold for item in learning},
        }


def _character(character: str | None) -> str:
    return character or "no character"


class HydraQueueSensor(HydraQueueEntity, SensorEntity):
    """How many of the worker's tasks are in one state."""

    entity_description: HydraQueueSensorDescription

    def __init__(
        self, coordinator: HydraTaskCoordinator, description: HydraQueueSensorDescription
    ) -> None:
        """Describe the sensor."""
        super().__init__(coordinator, description.key)
        self.entity_description = description

    @property
    @override
    def native_value(self) -> int:
        return self.coordinator.data.scheduler.counts.get(self.entity_description.task_state, 0)

    @property
    @override
    def last_reset(self) -> datetime | None:
        return dt_util.start_of_local_day() if self.entity_description.today else None
