"""Fix flows of Hydra's repairs: a disk filling up offers "run a prune now".

The flow first asks the worker what a prune would remove (a dry run) and shows it; confirming
prunes for real. Only administrators reach Home Assistant's repairs, so the prune is on an
administrator's behalf.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.repairs import RepairsFlow, RepairsFlowResult
from homeassistant.core import HomeAssistant
import probatio

from hydra_core.client import HydraError
from hydra_core.models import Actor

from .parts.forecasts import (
    FIX_PRUNE,
    ISSUE_ENTRY,
    ISSUE_FIX,
    HydraForecastCoordinator,
    size_text,
)

REPAIRS_ACTOR = Actor(type="user", name="Home Assistant repairs")


class PruneRepairFlow(RepairsFlow):
    """Shows what a prune would free, and prunes once confirmed."""

    def __init__(self, entry_id: str) -> None:
        """For the worker of ``entry_id``."""
        super().__init__()
        self._entry_id = entry_id

    def _coordinator(self) -> HydraForecastCoordinator | None:
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        runtime = getattr(entry, "runtime_data", None) if entry is not None else None
        return None if runtime is None else runtime.part(HydraForecastCoordinator)

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:
        """Straight to the confirmation."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """The dry run's figures; on confirmation, the prune."""
        if (coordinator := self._coordinator()) is None:
            return self.async_abort(reason="worker_unavailable")
        try:
            report = await coordinator.api.async_prune(
                actor=REPAIRS_ACTOR, dry_run=user_input is None
            )
        except HydraError as err:
            return self.async_abort(
                reason="prune_failed", description_placeholders={"error": str(err)}
            )
        if user_input is not None:
            await coordinator.async_refresh()
            return self.async_create_entry(data={"freed_bytes": report.freed_bytes})
        return self.async_show_form(
            step_id="confirm",
            data_schema=probatio.Schema({}),
            description_placeholders={
                "worker": coordinator.config_entry.title,
                "size": size_text(report.freed_bytes),
                "count": str(sum(item.result == "would_remove" for item in report.items)),
            },
        )


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, Any] | None
) -> RepairsFlow:
    """The fix flow of a fixable Hydra repair."""
    if not data or data.get(ISSUE_FIX) != FIX_PRUNE or ISSUE_ENTRY not in data:
        raise ValueError(f"The repair {issue_id} has no fix flow")
    return PruneRepairFlow(str(data[ISSUE_ENTRY]))
