"""What the integration knows of a part of the worker: one entry of the registry (registry.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from homeassistant.const import Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.llm import Tool

if TYPE_CHECKING:
    from .actions import Action
    from .coordinator import HydraPartCoordinator
    from .data import HydraConfigEntry

# Adds a platform's entities of a part the worker has.
type EntitySetup[C] = Callable[[HydraConfigEntry, C, AddConfigEntryEntitiesCallback], None]
# Does what a phone notification's button asks: (entry, what follows "<action>:<entry id>:",
# the event); None when there is nothing to do.
type PhoneAction = Callable[
    [HydraConfigEntry, str, Event[dict[str, Any]]], Coroutine[Any, Any, None] | None
]


@dataclass(frozen=True, kw_only=True, slots=True)
class Part[C: HydraPartCoordinator[Any, Any]]:
    """A part of the worker as Home Assistant shows it."""

    coordinator: type[C]
    # The worker's event types that go to the part's coordinator (its async_handle_event).
    events: frozenset[str]
    platforms: Mapping[Platform, EntitySetup[C]] = field(default_factory=dict)
    # The part's actions (registered once, in async_setup), by name.
    actions: Mapping[str, Action] = field(default_factory=dict)
    # Registers anything else the part serves once, in async_setup (an HTTP view).
    setup: Callable[[HomeAssistant], None] | None = None
    # The part's tools in the "Hydra" LLM API (llm_api.py), while a loaded worker has the part.
    llm_tools: Sequence[Tool] = ()
    # The phone notification buttons the part answers, by action prefix.
    phone_actions: Mapping[str, PhoneAction] = field(default_factory=dict)
    # Forgets what the part kept for a config entry that is being deleted.
    async_remove_entry: Callable[[HomeAssistant, HydraConfigEntry], Awaitable[None]] | None = None

    @property
    def name(self) -> str:
        """The part's name, as its coordinator has it."""
        return self.coordinator.part
