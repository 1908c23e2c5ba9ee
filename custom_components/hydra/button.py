"""Buttons: restart a container; send the briefing now; accept or reject an image."""

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
from .coordinator import (
    HydraConfigEntry,
    HydraContainerCoordinator,
    HydraQualityCoordinator,
    HydraStatusCoordinator,
)
from .entity import HydraContainerEntity, HydraReviewEntity, HydraWorkerEntity
from .review import async_review

# Each press is one request to the worker; the worker serialises what the engine cannot.
PARALLEL_UPDATES = 0

RESTART = ButtonEntityDescription(key="restart", device_class=ButtonDeviceClass.RESTART)
SEND_BRIEFING = ButtonEntityDescription(key="send_briefing", translation_key="send_briefing")
ACCEPT_ASSET = ButtonEntityDescription(key="accept_asset", translation_key="accept_asset")
REJECT_ASSET = ButtonEntityDescription(key="reject_asset", translation_key="reject_asset")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HydraConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the briefing button to the worker and a restart button to every container."""
    async_add_entities([HydraBriefingButton(entry.runtime_data.status)])
    if (quality := entry.runtime_data.quality) is not None:
        async_add_entities(
            HydraReviewButton(quality, description, decision)
            for description, decision in ((ACCEPT_ASSET, "accept"), (REJECT_ASSET, "reject"))
        )
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


class HydraReviewButton(HydraReviewEntity, ButtonEntity):
    """Accepts or rejects the asset the review image shows (the one waiting longest)."""

    def __init__(
        self,
        coordinator: HydraQualityCoordinator,
        description: ButtonEntityDescription,
        decision: str,
    ) -> None:
        """Describe the button."""
        super().__init__(coordinator, description.key)
        self.entity_description = description
        self._decision = decision

    @property
    @override
    def available(self) -> bool:
        return super().available and bool(self.coordinator.data.pending)

    @override
    async def async_press(self) -> None:
        await async_review(self.coordinator, self._decision, self._context)
