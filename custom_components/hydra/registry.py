"""The parts Home Assistant knows: adding a part means its module(s) and one line here."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .part import Part
from .parts.cluster.part import CLUSTER
from .parts.containers.part import CONTAINERS
from .parts.creative.part import CREATIVE
from .parts.forecasts import FORECASTS
from .parts.knowledge.part import KNOWLEDGE
from .parts.models.part import MODELS
from .parts.power import POWER
from .parts.quality.part import QUALITY
from .parts.tasks.part import TASKS
from .parts.voice import VOICE

if TYPE_CHECKING:
    from .data import HydraConfigEntry

PARTS: Final[tuple[Part[Any], ...]] = (
    CONTAINERS,
    TASKS,
    VOICE,
    POWER,
    QUALITY,
    CREATIVE,
    KNOWLEDGE,
    MODELS,
    FORECASTS,
    CLUSTER,
)


type PlatformSetup = Callable[
    [HomeAssistant, "HydraConfigEntry", AddConfigEntryEntitiesCallback], Coroutine[Any, Any, None]
]


def part_platform(platform: Platform) -> PlatformSetup:
    """The ``async_setup_entry`` of a platform whose entities all come from the parts."""

    async def async_setup_entry(
        hass: HomeAssistant,
        entry: HydraConfigEntry,
        async_add_entities: AddConfigEntryEntitiesCallback,
    ) -> None:
        async_add_part_entities(entry, platform, async_add_entities)

    async_setup_entry.__doc__ = f"Add the {platform} entities of every part the worker has."
    return async_setup_entry


@callback
def async_add_part_entities(
    entry: HydraConfigEntry, platform: Platform, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """Add a platform's entities of every part the worker has."""
    for part in PARTS:
        coordinator = entry.runtime_data.parts.get(part.name)
        if coordinator is not None and (setup := part.platforms.get(platform)) is not None:
            setup(entry, coordinator, async_add_entities)
