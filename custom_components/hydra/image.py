"""Image: the generated asset waiting longest for review, with what it is and how it scored."""

from __future__ import annotations

from datetime import datetime
from typing import Any, override

from homeassistant.components.image import ImageEntity, ImageEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from hydra_core.client import HydraError
from hydra_core.models import Asset

from .const import LOGGER
from .coordinator import HydraConfigEntry, HydraQualityCoordinator
from .entity import HydraReviewEntity
from .review import asset_attributes

# Each image is one request to the worker.
PARALLEL_UPDATES = 0

AWAITING_REVIEW = ImageEntityDescription(
    key="asset_awaiting_review", translation_key="asset_awaiting_review"
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HydraConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the review image when the worker keeps assets for review."""
    if (quality := entry.runtime_data.quality) is not None:
        async_add_entities([HydraReviewImage(hass, quality)])


class HydraReviewImage(HydraReviewEntity, ImageEntity):
    """The oldest asset awaiting review; no image while none waits."""

    entity_description = AWAITING_REVIEW

    def __init__(self, hass: HomeAssistant, coordinator: HydraQualityCoordinator) -> None:
        """Describe the image."""
        HydraReviewEntity.__init__(self, coordinator, AWAITING_REVIEW.key)
        ImageEntity.__init__(self, hass)
        self._shown: Asset | None = None
        self._show(coordinator.data.pending_asset())

    def _show(self, asset: Asset | None) -> None:
        """Show another asset (or none): the image is fetched again on the next request."""
        if (asset and asset.id) == (self._shown and self._shown.id):
            self._shown = asset
            return
        self._shown = asset
        self._cached_image = None
        self._attr_image_last_updated = (
            None if asset is None else dt_util.utc_from_timestamp(asset.created_at)
        )

    @callback
    @override
    def _handle_coordinator_update(self) -> None:
        self._show(self.coordinator.data.pending_asset())
        super()._handle_coordinator_update()

    @property
    @override
    def image_last_updated(self) -> datetime | None:
        return self._attr_image_last_updated

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any]:
        attributes: dict[str, Any] = {"waiting": len(self.coordinator.data.pending)}
        if self._shown is not None:
            attributes |= asset_attributes(self._shown)
        return attributes

    @override
    async def async_image(self) -> bytes | None:
        if (asset := self._shown) is None:
            return None
        try:
            image, content_type = await self.coordinator.client.async_asset_image(asset.id)
        except HydraError as err:
            LOGGER.debug("Could not read asset %s: %s", asset.id, err)
            return None
        self._attr_content_type = content_type
        return image
