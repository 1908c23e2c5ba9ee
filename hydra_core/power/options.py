"""The power part's options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..options import option

if TYPE_CHECKING:
    from ..worker.config import WorkerConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class PowerOptions:
    """What the eco and balanced profiles mean, and how often they are checked."""

    power_eco_percent: float = option(
        60.0,
        help="the eco power profile's limit, in percent of each GPU's default limit",
        low=10,
        high=100,
        addon=True,
    )
    power_balanced_percent: float = option(
        80.0,
        help="the balanced power profile's limit, in percent of each GPU's default limit (at"
        " least power_eco_percent)",
        low=10,
        high=100,
        addon=True,
    )
    power_interval: float = option(
        30.0,
        help="seconds between checks that every GPU still enforces its power profile",
        low=1,
        high=3600,
    )

    def check(self, _config: WorkerConfig) -> None:
        """Eco must not draw more than balanced."""
        if self.power_eco_percent > self.power_balanced_percent:
            raise ValueError(
                f"power_eco_percent ({self.power_eco_percent:g}) must not exceed"
                f" power_balanced_percent ({self.power_balanced_percent:g})"
            )
