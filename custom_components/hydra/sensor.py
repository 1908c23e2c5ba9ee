"""Sensors: every GPU's load, temperature, memory and power and the worker's GPU count; the
parts add theirs (containers, the task queue's counts, images awaiting review)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import override

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    Platform,
    UnitOfInformation,
    UnitOfPower,
    UnitOfTemperature,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from hydra_core.gpu.models import GpuInfo
from hydra_core.models import WorkerStatus

from .data import HydraConfigEntry
from .entity import HydraGpuEntity, HydraWorkerEntity
from .registry import async_add_part_entities

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

    async_add_part_entities(entry, Platform.SENSOR, async_add_entities)


class HydraWorkerSensor(HydraWorkerEntity, SensorEntity):
    """A sensor of the worker."""

    entity_description: HydraWorkerSensorDescription

    @property
    @override
    def native_value(self) -> float | int | None:
        return self.entity_description.value_fn(self.coordinator.data)


class HydraGpuSensor(HydraGpuEntity, SensorEntity):
    """A sensor of one GPU."""

    entity_description: HydraGpuSensorDescription

    @property
    @override
    def native_value(self) -> float | int | None:
        gpu = self.gpu
        return None if gpu is None else self.entity_description.value_fn(gpu)
