"""The review loop in Home Assistant: generated images that scored below their character's
auto-accept threshold wait here for a person to accept or reject them (the image entity and its
buttons, the ``hydra.review_asset`` action, or the buttons of a phone notification showing the
image). The worker learns from each decision."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web
from homeassistant.components.http import KEY_HASS, HomeAssistantView
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import (
    Context,
    Event,
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv, service
import probatio

from hydra_core.client import HydraError
from hydra_core.models import REVIEW_DECISIONS, Asset

from .briefing import async_send
from .const import (
    ACTION_ACCEPT,
    ACTION_REJECT,
    CONF_REVIEW,
    CONF_REVIEW_TARGETS,
    DOMAIN,
    EVENT_ASSET_PENDING,
    EVENT_ASSET_REVIEWED,
    LOGGER,
)
from .coordinator import HydraConfigEntry, HydraQualityCoordinator
from .entity import async_actor, refusal_error

SERVICE_REVIEW_ASSET: Final = "review_asset"
ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_ASSET_ID: Final = "asset_id"
ATTR_DECISION: Final = "decision"
ATTR_REASON: Final = "reason"
MOBILE_ACTION_EVENT: Final = "mobile_app_notification_action"
# Where Home Assistant serves an asset's image to logged-in users (phones fetch it from here).
ASSET_IMAGE_URL: Final = "/api/hydra/asset/{entry_id}/{asset_id}"

# What the worker refuses because of what the user asked, by its error code.
_USER_MISTAKES = frozenset({"asset_not_found", "asset_decided", "invalid_decision", "invalid_body"})

REVIEW_SCHEMA: Final = probatio.Schema(
    {
        probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
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
    try:
        asset = await coordinator.client.async_review_asset(
            asset_id, decision, actor=actor, reason=(reason or "").strip() or None
        )
    except HydraError as err:
        raise refusal_error(
            coordinator, err, mistakes=_USER_MISTAKES, failed_key="review_failed"
        ) from err
    coordinator.async_apply_asset(asset)
    return asset


@callback
def async_asset_event(hass: HomeAssistant, entry: HydraConfigEntry, asset: Asset) -> None:
    """An asset was submitted or decided: tell automations, and the phones when it waits."""
    data = {"entry_id": entry.entry_id, "asset_id": asset.id, **_asset_fields(asset)}
    if asset.state == "pending":
        hass.bus.async_fire(EVENT_ASSET_PENDING, data)
        if targets := (entry.options.get(CONF_REVIEW) or {}).get(CONF_REVIEW_TARGETS):
            entry.async_create_background_task(
                hass,
                _async_notify(hass, entry, asset, list(targets)),
                f"{DOMAIN} review notification {asset.id}",
            )
    elif asset.state in ("accepted", "rejected") and asset.decided_by is not None:
        hass.bus.async_fire(EVENT_ASSET_REVIEWED, {**data, "reason": asset.reason})


def _asset_fields(asset: Asset) -> dict[str, Any]:
    return {
        "state": asset.state,
        "character": asset.character,
        "prompt": asset.prompt,
        "score": None if asset.score is None else round(asset.score.overall, 1),
        "threshold": asset.threshold,
    }


def asset_attributes(asset: Asset) -> dict[str, Any]:
    """What the image entity tells about the asset it shows."""
    return {"asset_id": asset.id, "name": asset.name, **_asset_fields(asset)}


async def _async_notify(
    hass: HomeAssistant, entry: HydraConfigEntry, asset: Asset, targets: list[str]
) -> None:
    """A phone notification with the image and Accept / Reject (with an optional reason)."""
    title = f"Review {asset.character or 'an image'} ({entry.title})"
    parts = []
    if asset.score is not None:
        parts.append(f"Scored {asset.score.overall:.0f}")
        if asset.threshold is not None:
            parts[-1] += f", below {asset.threshold:.0f}"
    if asset.prompt:
        parts.append(asset.prompt)
    actions = [
        {"action": f"{ACTION_ACCEPT}:{entry.entry_id}:{asset.id}", "title": "Accept"},
        {
            "action": f"{ACTION_REJECT}:{entry.entry_id}:{asset.id}",
            "title": "Reject",
            "behavior": "textInput",
            "textInputButtonTitle": "Reject",
            "textInputPlaceholder": "Why? (optional)",
        },
    ]
    await async_send(
        hass,
        targets,
        title,
        ". ".join(parts) or "A new image waits for your review.",
        actions=actions,
        tag=f"{DOMAIN}-asset-{asset.id}",
        image=ASSET_IMAGE_URL.format(entry_id=entry.entry_id, asset_id=asset.id),
    )


def _coordinator(hass: HomeAssistant, entry_id: str | None) -> HydraQualityCoordinator:
    entry: HydraConfigEntry = service.async_get_config_entry(hass, DOMAIN, entry_id)
    if (quality := entry.runtime_data.quality) is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="quality_disabled",
            translation_placeholders={"worker": entry.title},
        )
    return quality


async def _async_review_asset(call: ServiceCall) -> ServiceResponse:
    asset = await async_review(
        _coordinator(call.hass, call.data.get(ATTR_CONFIG_ENTRY_ID)),
        call.data[ATTR_DECISION],
        call.context,
        asset_id=call.data.get(ATTR_ASSET_ID),
        reason=call.data.get(ATTR_REASON),
    )
    return {"asset_id": asset.id, "state": asset.state, "reason": asset.reason}


class HydraAssetView(HomeAssistantView):
    """An asset's image for logged-in users: what the phone notification shows."""

    url = "/api/hydra/asset/{entry_id}/{asset_id}"
    name = "api:hydra:asset"
    requires_auth = True

    async def get(self, request: web.Request, entry_id: str, asset_id: str) -> web.Response:
        """The image bytes from the worker, as they are."""
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
            image, content_type = await entry.runtime_data.client.async_asset_image(int(asset_id))
        except HydraError as err:
            LOGGER.debug("Asset %s of %s could not be read: %s", asset_id, entry.title, err)
            return web.Response(status=404)
        return web.Response(body=image, content_type=content_type)


@callback
def async_setup_review(hass: HomeAssistant) -> None:
    """Register the review action, the image view and the phones' Accept / Reject."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_REVIEW_ASSET,
        _async_review_asset,
        schema=REVIEW_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.http.register_view(HydraAssetView())

    @callback
    def phone_action(event: Event[dict[str, Any]]) -> None:
        action, _, rest = str(event.data.get("action", "")).partition(":")
        if action not in (ACTION_ACCEPT, ACTION_REJECT):
            return
        entry_id, _, asset_id = rest.partition(":")
        entry: HydraConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
        if (
            entry is None
            or entry.domain != DOMAIN
            or entry.state is not ConfigEntryState.LOADED
            or (quality := entry.runtime_data.quality) is None
            or not asset_id.isdecimal()
        ):
            LOGGER.debug("Phone action %s for a Hydra worker that is not loaded", action)
            return
        decision = "accept" if action == ACTION_ACCEPT else "reject"

        async def decide() -> None:
            try:
                await async_review(
                    quality,
                    decision,
                    event.context,
                    asset_id=int(asset_id),
                    reason=event.data.get("reply_text"),
                )
            except HomeAssistantError as err:
                LOGGER.warning("Could not %s asset %s from the phone: %s", decision, asset_id, err)

        entry.async_create_background_task(hass, decide(), f"{DOMAIN} review {asset_id}")

    hass.bus.async_listen(MOBILE_ACTION_EVENT, phone_action)
