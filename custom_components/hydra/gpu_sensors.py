"""The sensors of one GPU (load, temperature, memory, power, fan): a worker's own GPUs and the
GPUs of its cluster's nodes have the same ones."""

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfInformation, UnitOfTemperature

from hydra_core.gpu.models import GpuInfo

from .measurement import MeasurementFields, data_size, percent, watts


@dataclass(frozen=True, kw_only=True)
class HydraGpuSensorDescription(SensorEntityDescription):
    """A GPU sensor: how to read it, and whether this card has it at all."""

    value_fn: Callable[[GpuInfo], float | int | None]
    has_fn: Callable[[GpuInfo], bool] = lambda _gpu: True


def _memory_usage(gpu: GpuInfo) -> float | None:
    if not gpu.memory_total_bytes or gpu.memory_used_bytes is None:
        return None
    return round(100.0 * gpu.memory_used_bytes / gpu.memory_total_bytes, 1)


def _gpu(
    key: str,
    fields: MeasurementFields,
    value_fn: Callable[[GpuInfo], float | int | None],
    *,
    optional: bool = False,
    entity_category: EntityCategory | None = None,
    enabled: bool = True,
) -> HydraGpuSensorDescription:
    """A GPU sensor named by its key; an optional one exists only on cards that report it."""
    return HydraGpuSensorDescription(
        key=key,
        translation_key=key,
        **fields,
        entity_category=entity_category,
        entity_registry_enabled_default=enabled,
        value_fn=value_fn,
        has_fn=(lambda gpu: value_fn(gpu) is not None) if optional else (lambda _gpu: True),
    )


_GIB = UnitOfInformation.GIBIBYTES

GPU_SENSORS: tuple[HydraGpuSensorDescription, ...] = (
    _gpu("utilization", percent(), lambda gpu: gpu.utilization_percent),
    HydraGpuSensorDescription(
        key="temperature",
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda gpu: gpu.temperature_c,
    ),
    _gpu("memory_usage", percent(), _memory_usage),
    _gpu("memory_used", data_size(_GIB, 1), lambda gpu: gpu.memory_used_bytes),
    _gpu("memory_free", data_size(_GIB, 1), lambda gpu: gpu.memory_free_bytes),
    _gpu(
        "memory_total",
        data_size(_GIB, 1, state_class=None),
        lambda gpu: gpu.memory_total_bytes,
        entity_category=EntityCategory.DIAGNOSTIC,
    ),
    _gpu(
        "memory_controller_utilization",
        percent(),
        lambda gpu: gpu.memory_utilization_percent,
        enabled=False,
    ),
    _gpu("power_draw", watts(), lambda gpu: gpu.power_draw_w, optional=True),
    _gpu("power_limit", watts(), lambda gpu: gpu.power_limit_w, optional=True),
    # Datacenter cards have no fan of their own: no entity rather than one that is never set.
    _gpu("fan_speed", percent(), lambda gpu: gpu.fan_percent, optional=True),
)
