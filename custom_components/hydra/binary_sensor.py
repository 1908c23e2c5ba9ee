"""Binary sensors: whether each container has a problem, and whether the engine is reachable."""

from typing import override

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from hydra_core.models import ContainerInfo

from .coordinator import HydraConfigEntry, HydraContainerCoordinator
from .entity import HydraContainerEntity, HydraEngineEntity

# The coordinator does all the I/O; entities only read its data.
PARALLEL_UPDATES = 0

PROBLEM = BinarySensorEntityDescription(key="problem", device_class=BinarySensorDeviceClass.PROBLEM)
ENGINE = BinarySensorEntityDescription(
    key="engine",
    translation_key="container_engine",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HydraConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the engine's connectivity and each container's problem sensor."""
    data = entry.runtime_data
    if data.containers is None or data.tracker is None:
        return
    async_add_entities([HydraEngineBinarySensor(data.containers)])
    data.tracker.async_add_platform(
        async_add_entities,
        lambda containers, container: [HydraContainerProblemSensor(containers, container)],
    )


class HydraContainerProblemSensor(HydraContainerEntity, BinarySensorEntity):
    """On when the container is unhealthy, dead, or exited with an error."""

    entity_description = PROBLEM

    def __init__(self, coordinator: HydraContainerCoordinator, container: ContainerInfo) -> None:
        """Describe the sensor."""
        super().__init__(coordinator, container, PROBLEM.key)

    @property
    @override
    def is_on(self) -> bool | None:
        container = self.container
        return None if container is None else container.problem


class HydraEngineBinarySensor(HydraEngineEntity, BinarySensorEntity):
    """On while the worker can reach its container engine."""

    entity_description = ENGINE

    def __init__(self, coordinator: HydraContainerCoordinator) -> None:
        """Describe the sensor."""
        super().__init__(coordinator, ENGINE.key)

    @property
    @override
    def is_on(self) -> bool:
        return self.coordinator.data.engine_available
