"""Buttons: restart a container; send the briefing now."""

from typing import override

from homeassistant.components.button import (
    ButtonDeviceClass,
    ButtonEntity,
    ButtonEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from hydra_core.models import ContainerInfo

from .const import DOMAIN
from .coordinator import HydraConfigEntry, HydraContainerCoordinator, HydraStatusCoordinator
from .entity import HydraContainerEntity, HydraWorkerEntity

# Each press is one request to the worker; the worker serialises what the engine cannot.
PARALLEL_UPDATES = 0

RESTART = ButtonEntityDescription(key="restart", device_class=ButtonDeviceClass.RESTART)
SEND_BRIEFING = ButtonEntityDescription(key="send_briefing", translation_key="send_briefing")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HydraConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the briefing button to the worker and a restart button to every container."""
    async_add_entities([HydraBriefingButton(entry.runtime_data.status)])
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


class HydraBriefingButton(HydraWorkerEntity, ButtonEntity):
    """Composes the briefing and sends it to the targets chosen in the options, now."""

    entity_description = SEND_BRIEFING

    def __init__(self, coordinator: HydraStatusCoordinator) -> None:
        """Describe the button."""
        super().__init__(coordinator, SEND_BRIEFING.key)

    @override
    async def async_press(self) -> None:
        routine = self.coordinator.config_entry.runtime_data.routine
        if routine is None or not routine.has_briefing_targets:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="no_briefing_targets"
            )
        await routine.async_briefing(send=True)
