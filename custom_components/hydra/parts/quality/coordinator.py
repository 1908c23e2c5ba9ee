"""Image quality scoring and the review loop: the status and the assets awaiting review."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, override

from homeassistant.core import callback

from hydra_core.models import WorkerEvent
from hydra_core.quality.client import QualityClient
from hydra_core.quality.models import EVENT_ASSET, EVENT_QUALITY, Asset, QualityStatus
from hydra_core.wire import dump, load

from ...const import PENDING_LIMIT, QUALITY_SCAN_INTERVAL
from ...coordinator import HydraPartCoordinator
from .events import async_asset_event


@dataclass(frozen=True, slots=True)
class HydraQualityData:
    """Scoring's status (model, what was learnt) and the assets awaiting review, oldest first."""

    status: QualityStatus
    pending: tuple[Asset, ...]

    def pending_asset(self, asset_id: int | None = None) -> Asset | None:
        """An asset awaiting review: the one asked for, else the oldest."""
        if asset_id is None:
            return self.pending[0] if self.pending else None
        return next((asset for asset in self.pending if asset.id == asset_id), None)


class HydraQualityCoordinator(HydraPartCoordinator[HydraQualityData, QualityClient]):
    """Image quality scoring and the review loop."""

    part = "quality"
    api_type = QualityClient
    disabled = "quality_disabled"
    interval = QUALITY_SCAN_INTERVAL

    @override
    async def async_fetch(self) -> HydraQualityData:
        """The status and the oldest assets awaiting review."""
        status = await self.api.async_quality()
        pending = await self.api.async_assets(state="pending", limit=PENDING_LIMIT)
        return HydraQualityData(status=status, pending=tuple(pending))

    @override
    async def async_handle_event(self, event: WorkerEvent) -> None:
        if event.type == EVENT_ASSET:
            asset = load(Asset, event.data)
            self.async_apply_asset(asset)
            async_asset_event(self.hass, self.config_entry, asset)
        elif event.type == EVENT_QUALITY:
            self.async_apply_status(load(QualityStatus, event.data))

    @override
    def diagnostics(self) -> dict[str, Any]:
        # The model, the thresholds and prompt adjustments learnt; waiting assets by id only.
        return {
            **super().diagnostics(),
            "status": dump(self.data.status),
            "pending": [asset.id for asset in self.data.pending],
        }

    @callback
    def async_apply_asset(self, asset: Asset) -> None:
        """An asset was submitted or decided: it joins or leaves the review queue."""
        pending = [item for item in self.data.pending if item.id != asset.id]
        if asset.state == "pending":
            pending.append(asset)
            pending.sort(key=lambda item: (item.created_at, item.id))
        self.async_set_updated_data(replace(self.data, pending=tuple(pending[:PENDING_LIMIT])))

    @callback
    def async_apply_status(self, status: QualityStatus) -> None:
        """The worker's new status (model state, pending count, learning)."""
        self.async_set_updated_data(replace(self.data, status=status))
