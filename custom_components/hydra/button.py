"""Buttons: send the briefing now; the parts add theirs (restart a container, accept or reject
an image)."""

from typing import override

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .data import HydraConfigEntry
from .entity import HydraWorkerEntity
from .registry import async_add_part_entities

# Each press is one request to the worker; the worker serialises what the engine cannot.
PARALLEL_UPDATES = 0

SEND_BRIEFING = ButtonEntityDescription(key="send_briefing", translation_key="send_briefing")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HydraConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the briefing button to the worker, and the parts' buttons."""
    async_add_entities([HydraBriefingButton(entry.runtime_data.status, SEND_BRIEFING)])
    async_add_part_entities(entry, Platform.BUTTON, async_add_entities)


class HydraBriefingButton(HydraWorkerEntity, ButtonEntity):
    """Composes the briefing and sends it to the targets chosen in the options, now."""

    @override
    async def async_press(self) -> None:
        routine = self.coordinator.config_entry.runtime_data.routine
        if routine is None or not routine.has_briefing_targets:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="no_briefing_targets"
            )
        await routine.async_briefing(send=True)
