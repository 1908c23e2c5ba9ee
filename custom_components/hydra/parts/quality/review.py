"""The review loop in Home Assistant: generated images that scored below their character's
auto-accept threshold wait here for a person to accept or reject them (the image entity and its
buttons, the ``hydra.review_asset`` action, or the buttons of a phone notification showing the
image). The worker learns from each decision."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import (
    Context,
    Event,
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
import probatio

from hydra_core.client import HydraError
from hydra_core.quality.client import QualityClient
from hydra_core.quality.models import IMAGE_TYPES, REVIEW_DECISIONS, Asset

from ...actions import ENTRY_SCHEMA, Action, action_part
from ...const import ACTION_ACCEPT, ACTION_REJECT, DOMAIN, LOGGER
from ...data import HydraConfigEntry
from ...entity import async_actor
from ...helpers import async_worker_request
from .coordinator import HydraQualityCoordinator
from .events import ASSET_IMAGE_URL

if TYPE_CHECKING:
    from ...part import PhoneAction

SERVICE_REVIEW_ASSET: Final = "review_asset"
ATTR_ASSET_ID: Final = "asset_id"
ATTR_DECISION: Final = "decision"
ATTR_REASON: Final = "reason"

REVIEW_SCHEMA: Final = ENTRY_SCHEMA.extend(
    {
        probatio.Optional(ATTR_ASSET_ID): cv.positive_int,
        probatio.Required(ATTR_DECISION): probatio.In(REVIEW_DECISIONS),
        probatio.Optional(ATTR_REASON): probatio.All(cv.string, probatio.Length(max=500)),
    }
)


async def async_review(
    coordinator: HydraQualityCoordinator,
    decision: str,
    context: Context | None,
    *,
    asset_id: int | None = None,
    reason: str | None = None,
) -> Asset:
    """Accept or reject an asset (by default the one waiting longest) for whoever asked."""
    if asset_id is None:
        if (waiting := coordinator.data.pending_asset()) is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="nothing_to_review"
            )
        asset_id = waiting.id
    actor = await async_actor(coordinator.hass, context)
    asset = await async_worker_request(
        coordinator,
        coordinator.api.async_review_asset(
            asset_id, decision, actor=actor, reason=(reason or "").strip() or None
        ),
        failed_key="review_failed",
    )
    coordinator.async_apply_asset(asset)
    return asset


async def _async_review_asset(call: ServiceCall) -> ServiceResponse:
    asset = await async_review(
        action_part(call, HydraQualityCoordinator),
        call.data[ATTR_DECISION],
        call.context,
        asset_id=call.data.get(ATTR_ASSET_ID),
        reason=call.data.get(ATTR_REASON),
    )
    return {"asset_id": asset.id, "state": asset.state, "reason": asset.reason}


# What the worker keeps and serves an asset as.
SERVED_TYPES: Final = frozenset(content_type for _, content_type in IMAGE_TYPES.values())


class HydraAssetView(HomeAssistantView):
    """An asset's image for logged-in users: what the phone notification shows."""

    url = ASSET_IMAGE_URL
    name = "api:hydra:asset"
    requires_auth = True

    async def get(self, request: web.Request, entry_id: str, asset_id: str) -> web.Response:
        """The image bytes from the worker, as they are, if they are an image the worker keeps
        (anything else, such as HTML from something that is not a worker, would be served from
        Home Assistant's own origin)."""
        hass = request.app[KEY_HASS]
        entry: HydraConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
        if (
            entry is None
            or entry.domain != DOMAIN
            or entry.state is not ConfigEntryState.LOADED
            or not asset_id.isdecimal()
        ):
            return web.Response(status=404)
        try:
            image, content_type = await QualityClient(entry.runtime_data.client).async_asset_image(
                int(asset_id)
            )
        except HydraError as err:
            LOGGER.debug("Asset %s of %s could not be read: %s", asset_id, entry.title, err)
            return web.Response(status=404)
        if content_type not in SERVED_TYPES:
            LOGGER.warning(
                "Asset %s of %s is not served: the worker sent %s, not an image",
                asset_id,
                entry.title,
                content_type or "no content type",
            )
            return web.Response(status=502)
        return web.Response(
            body=image, content_type=content_type, headers={"X-Content-Type-Options": "nosniff"}
        )


@callback
def async_setup_review(hass: HomeAssistant) -> None:
    """Register the image view the phones' review notifications show."""
    hass.http.register_view(HydraAssetView())


REVIEW_ACTIONS: Final[dict[str, Action]] = {
    SERVICE_REVIEW_ASSET: (_async_review_asset, REVIEW_SCHEMA)
}


def _phone_review(decision: str) -> PhoneAction:
    """Accept or reject, from the phone, the asset a review notification showed."""

    def handle(
        entry: HydraConfigEntry, asset_id: str, event: Event[dict[str, Any]]
    ) -> Coroutine[Any, Any, None] | None:
        quality = entry.runtime_data.part(HydraQualityCoordinator)
        if quality is None or not asset_id.isdecimal():
            LOGGER.debug("Phone review of asset %r for a worker that cannot review", asset_id)
            return None
        return _async_decide(quality, decision, int(asset_id), event)

    return handle


async def _async_decide(
    quality: HydraQualityCoordinator, decision: str, asset_id: int, event: Event[dict[str, Any]]
) -> None:
    try:
        await async_review(
            quality, decision, event.context, asset_id=asset_id, reason=event.data.get("reply_text")
        )
    except HomeAssistantError as err:
        LOGGER.warning("Could not %s asset %s from the phone: %s", decision, asset_id, err)


PHONE_ACTIONS: Final[dict[str, PhoneAction]] = {
    ACTION_ACCEPT: _phone_review("accept"),
    ACTION_REJECT: _phone_review("reject"),
}
