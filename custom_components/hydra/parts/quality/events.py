"""What a pushed asset becomes in Home Assistant: an event for automations, and a phone
notification with the image and Accept / Reject when it waits for review."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from homeassistant.core import HomeAssistant, callback

from hydra_core.quality.models import Asset

from ...const import (
    ACTION_ACCEPT,
    ACTION_REJECT,
    CONF_REVIEW,
    CONF_REVIEW_TARGETS,
    DOMAIN,
    EVENT_ASSET_PENDING,
    EVENT_ASSET_REVIEWED,
)
from ...notify import async_send, phone_action_id

if TYPE_CHECKING:
    from ...data import HydraConfigEntry

# Where Home Assistant serves an asset's image to logged-in users (phones fetch it from here).
ASSET_IMAGE_URL: Final = "/api/hydra/asset/{entry_id}/{asset_id}"


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
        {"action": phone_action_id(ACTION_ACCEPT, entry, asset.id), "title": "Accept"},
        {
            "action": phone_action_id(ACTION_REJECT, entry, asset.id),
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
        about="an image to review",
        actions=actions,
        tag=f"{DOMAIN}-asset-{asset.id}",
        image=ASSET_IMAGE_URL.format(entry_id=entry.entry_id, asset_id=asset.id),
    )
