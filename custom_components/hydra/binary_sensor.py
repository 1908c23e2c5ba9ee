"""Binary sensors: each part's (the containers' problems, the engine's connectivity)."""

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import HydraConfigEntry
from .registry import async_add_part_entities

# The coordinator does all the I/O; entities only read its data.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HydraConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the binary sensors of every part the worker has."""
    async_add_part_entities(entry, Platform.BINARY_SENSOR, async_add_entities)
