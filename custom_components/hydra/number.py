"""Numbers: each part's settings (the task queue's resource gate and concurrency, the wake word
threshold)."""

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
    """Add the numbers of every part the worker has."""
    async_add_part_entities(entry, Platform.NUMBER, async_add_entities)
