"""The forecasts part's calls: disk use, forecasts and the prune."""

from __future__ import annotations

from typing import Any

from ..client import PartClient
from ..models import Actor
from ..wire import dump
from .models import DiskReport, ForecastReport, PruneReport


class ForecastsClient(PartClient):
    """Disk use, forecasts and the prune, through a ``HydraClient``."""

    async def async_disk(self) -> DiskReport:
        """Every watched folder and the engine's disk use."""
        return await self._client.call(DiskReport, "GET", "disk")

    async def async_forecasts(self) -> ForecastReport:
        """Every predicted problem within the horizon, soonest first."""
        return await self._client.call(ForecastReport, "GET", "forecasts")

    async def async_prune(
        self,
        *,
        actor: Actor,
        dry_run: bool = True,
        images: str | None = None,
        budget_bytes: int | None = None,
    ) -> PruneReport:
        """Prune, or say what a prune would remove; HydraApiError ``prune_refused`` when the
        engine refused a removal (the prune stopped there)."""
        body: dict[str, Any] = {"actor": dump(actor), "dry_run": dry_run}
        if images is not None:
            body["images"] = images
        if budget_bytes is not None:
            body["budget_bytes"] = budget_bytes
        return await self._client.call(PruneReport, "POST", "prune", json=body)
