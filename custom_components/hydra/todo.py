"""To-do lists: each part's (the worker's task queue)."""

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import HydraConfigEntry
from .registry import async_add_part_entities

# Each change is one request to the worker.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HydraConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the to-do lists of every part the worker has."""
    async_add_part_entities(entry, Platform.TODO, async_add_entities)
