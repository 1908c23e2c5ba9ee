"""The review loop's entities: how many images wait, the one waiting longest, and the buttons
that accept or reject it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, override

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.components.image import ImageEntity, ImageEntityDescription
from homeassistant.components.sensor import (
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from hydra_core.client import HydraError
from hydra_core.quality.models import Asset

from ...const import LOGGER
from ...data import HydraConfigEntry
from ...entity import HydraWorkerPartEntity
from .coordinator import HydraQualityCoordinator
from .events import asset_attributes
from .review import async_review

AWAITING_REVIEW_COUNT = SensorEntityDescription(
    key="assets_awaiting_review",
    translation_key="assets_awaiting_review",
    state_class=SensorStateClass.MEASUREMENT,
)


ACCEPT_ASSET = ButtonEntityDescription(key="accept_asset", translation_key="accept_asset")
REJECT_ASSET = ButtonEntityDescription(key="reject_asset", translation_key="reject_asset")
AWAITING_REVIEW_IMAGE = ImageEntityDescription(
    key="asset_awaiting_review", translation_key="asset_awaiting_review"
)


@callback
def async_setup_sensors(
    entry: HydraConfigEntry,
    coordinator: HydraQualityCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """How many images wait for review."""
    async_add_entities([HydraReviewSensor(coordinator, AWAITING_REVIEW_COUNT)])


@callback
def async_setup_buttons(
    entry: HydraConfigEntry,
    coordinator: HydraQualityCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Accept and reject the image waiting longest."""
    async_add_entities(
        HydraReviewButton(coordinator, description, decision)
        for description, decision in ((ACCEPT_ASSET, "accept"), (REJECT_ASSET, "reject"))
    )


@callback
def async_setup_images(
    entry: HydraConfigEntry,
    coordinator: HydraQualityCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The image waiting longest."""
    async_add_entities([HydraReviewImage(coordinator.hass, coordinator, AWAITING_REVIEW_IMAGE)])


class HydraReviewEntity(HydraWorkerPartEntity[HydraQualityCoordinator]):
    """An entity of the worker's image review, on the worker's device."""


class HydraReviewSensor(HydraReviewEntity, SensorEntity):
    """How many generated images wait for review; per character, how many were accepted and
    the auto-accept threshold the decisions have taught."""

    @property
    @override
    def native_value(self) -> int:
        return self.coordinator.data.status.pending

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any]:
        learning = self.coordinator.data.status.learning
        return {
            "acceptance_rate": {
                _character(item.character): round(item.acceptance_rate * 100, 1)
                for item in learning
                if item.acceptance_rate is not None
            },
            "threshold": {_character(item.character): item.threshold for item in learning},
        }


def _character(character: str | None) -> str:
    return character or "no character"


class HydraReviewButton(HydraReviewEntity, ButtonEntity):
    """Accepts or rejects the asset the review image shows (the one waiting longest)."""

    def __init__(
        self,
        coordinator: HydraQualityCoordinator,
        description: ButtonEntityDescription,
        decision: str,
    ) -> None:
        """Describe the button."""
        super().__init__(coordinator, description)
        self._decision = decision

    @property
    @override
    def available(self) -> bool:
        return super().available and bool(self.coordinator.data.pending)

    @override
    async def async_press(self) -> None:
        await async_review(self.coordinator, self._decision, self._context)


class HydraReviewImage(HydraReviewEntity, ImageEntity):
    """The oldest asset awaiting review; no image while none waits."""

    def __init__(
        self,
        hass: HomeAssistant,
        coordinator: HydraQualityCoordinator,
        description: ImageEntityDescription,
    ) -> None:
        """Describe the image."""
        HydraReviewEntity.__init__(self, coordinator, description)
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
            image, content_type = await self.coordinator.api.async_asset_image(asset.id)
        except HydraError as err:
            LOGGER.debug("Could not read asset %s: %s", asset.id, err)
            return None
        self._attr_content_type = content_type
        return image
