"""Images: each part's (the generated image waiting longest for review)."""

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import HydraConfigEntry
from .registry import async_add_part_entities

# Each image is one request to the worker.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HydraConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the images of every part the worker has."""
    async_add_part_entities(entry, Platform.IMAGE, async_add_entities)
