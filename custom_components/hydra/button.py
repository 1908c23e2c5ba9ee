"""Buttons: restart a container."""

from typing import override

from homeassistant.components.button import (
    ButtonDeviceClass,
    ButtonEntity,
    ButtonEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from hydra_core.models import ContainerInfo

from .coordinator import HydraConfigEntry, HydraContainerCoordinator
from .entity import HydraContainerEntity

# Each press is one request to the worker; the worker serialises what the engine cannot.
PARALLEL_UPDATES = 0

RESTART = ButtonEntityDescription(key="restart", device_class=ButtonDeviceClass.RESTART)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HydraConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a restart button to every container."""
    if (tracker := entry.runtime_data.tracker) is None:
        return
    tracker.async_add_platform(
        async_add_entities,
        lambda containers, container: [HydraContainerRestartButton(containers, container)],
    )


class HydraContainerRestartButton(HydraContainerEntity, ButtonEntity):
    """Restarts the container (refused by the worker for protected containers)."""

    entity_description = RESTART

    def __init__(self, coordinator: HydraContainerCoordinator, container: ContainerInfo) -> None:
        """Describe the button."""
        super().__init__(coordinator, container, RESTART.key)

    @override
    async def async_press(self) -> None:
        await self.async_container_action("restart")
