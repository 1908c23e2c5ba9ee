"""What a loaded config entry holds: the client, the status and one coordinator per part."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry

from hydra_core.client import HydraClient

if TYPE_CHECKING:
    from .coordinator import HydraPartCoordinator, HydraStatusCoordinator
    from .routine import HydraRoutine


@dataclass(slots=True)
class HydraData:
    """What a config entry holds while it is loaded."""

    client: HydraClient
    status: HydraStatusCoordinator
    # The parts the worker has, by part name (see registry.PARTS); a missing part is not here.
    parts: dict[str, HydraPartCoordinator[Any, Any]] = field(default_factory=dict)
    # Leaving, arriving, bedtime and the briefing; set once the platforms are up.
    routine: HydraRoutine | None = None

    def part[C: HydraPartCoordinator[Any, Any]](self, kind: type[C]) -> C | None:
        """The part's coordinator, or None when the worker does not have the part."""
        coordinator = self.parts.get(kind.part)
        return coordinator if isinstance(coordinator, kind) else None


type HydraConfigEntry = ConfigEntry[HydraData]
