"""Sensors: every GPU's load, temperature, memory and power and the worker's GPU count; the
parts add theirs (containers, the task queue's counts, images awaiting review)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import override

from homeassistant.components.sensor import (
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from hydra_core.models import WorkerStatus

from .data import HydraConfigEntry
from .entity import HydraGpuEntity, HydraWorkerEntity, async_add_gpu_entities
from .gpu_sensors import GPU_SENSORS, HydraGpuSensorDescription
from .registry import async_add_part_entities

# The coordinator does all the I/O; entities only read its data.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class HydraWorkerSensorDescription(SensorEntityDescription):
    """A worker sensor."""

    value_fn: Callable[[WorkerStatus], float | int | None]


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
    async_add_gpu_entities(
        entry,
        coordinator,
        async_add_entities,
        lambda gpus, _first: (
            HydraGpuSensor(coordinator, gpu, description)
            for gpu in gpus
            for description in GPU_SENSORS
            if description.has_fn(gpu)
        ),
    )

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
