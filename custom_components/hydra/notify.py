"""Notifications: one way to send to notify entities, legacy notify services (phones get
buttons, a tag and an image) and a Discord webhook; and one listener for the phones' buttons,
which hands each press to whoever sent the button, by its action's prefix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from homeassistant.components.notify.const import (
    ATTR_DATA,
    ATTR_MESSAGE,
    ATTR_TITLE,
    DOMAIN as NOTIFY_DOMAIN,
    SERVICE_SEND_MESSAGE,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.aiohttp_client import async_get_clientsession
import probatio

from .const import DOMAIN, LOGGER

if TYPE_CHECKING:
    from .data import HydraConfigEntry
    from .part import PhoneAction

DISCORD_LIMIT: Final = 2000
# What a Discord webhook target is called in logs and answers: never its URL (a secret).
DISCORD: Final = "Discord webhook"
MOBILE_ACTION_EVENT: Final = "mobile_app_notification_action"


@dataclass(slots=True)
class Delivery:
    """Who got a notification and who did not (with why)."""

    delivered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


async def async_send(
    hass: HomeAssistant,
    targets: Sequence[str],
    title: str,
    message: str,
    *,
    about: str,
    actions: Sequence[dict[str, str]] = (),
    tag: str | None = None,
    image: str | None = None,
    discord_webhook: str | None = None,
) -> Delivery:
    """Send to each target as it is: a notify entity, a legacy notify service (phones get the
    actions and the image, a path on Home Assistant), and a Discord webhook. A target that fails
    is logged (as a notification ``about`` something) and the rest still get it."""
    delivery = Delivery()
    for target in targets:
        entity_id = target if "." in target else f"{NOTIFY_DOMAIN}.{target}"
        data: dict[str, Any] = {ATTR_TITLE: title, ATTR_MESSAGE: message}
        if hass.states.get(entity_id) is not None:
            service = SERVICE_SEND_MESSAGE
            data[ATTR_ENTITY_ID] = entity_id
        else:
            service = entity_id.split(".", 1)[1]
            if service.startswith("mobile_app_"):
                data[ATTR_DATA] = _phone_data(actions, tag, image)
        try:
            if not hass.services.has_service(NOTIFY_DOMAIN, service):
                raise HomeAssistantError(f"{entity_id} does not exist")
            await hass.services.async_call(NOTIFY_DOMAIN, service, data, blocking=True)
        except (HomeAssistantError, probatio.Invalid) as err:
            LOGGER.warning("Could not notify %s about %s: %s", target, about, err)
            delivery.failed[target] = str(err)
        else:
            delivery.delivered.append(target)
    if discord_webhook:
        try:
            await async_post_discord(hass, discord_webhook, title, message)
        except HomeAssistantError as err:
            LOGGER.warning("Could not notify the %s about %s: %s", DISCORD, about, err)
            delivery.failed[DISCORD] = str(err)
        else:
            delivery.delivered.append(DISCORD)
    return delivery


def _phone_data(
    actions: Sequence[dict[str, str]], tag: str | None, image: str | None
) -> dict[str, Any]:
    """What the companion app reads from a notification's data: buttons, tag, image."""
    data: dict[str, Any] = {"group": DOMAIN}
    if actions:
        data["actions"] = list(actions)
    if tag:
        data["tag"] = tag
    if image:
        data["image"] = image
    return data


async def async_post_discord(hass: HomeAssistant, url: str, title: str, message: str) -> None:
    """Post to a Discord webhook: the title in bold, split into messages of at most 2000
    characters at paragraph breaks; nobody is pinged. Errors never contain the URL."""
    chunks: list[str] = []
    current = f"**{title}**"
    for text in message.split("\n\n"):
        paragraph = text
        while len(paragraph) > DISCORD_LIMIT - 2:
            chunks.append(current)
            current, paragraph = paragraph[: DISCORD_LIMIT - 2], paragraph[DISCORD_LIMIT - 2 :]
        if len(current) + 2 + len(paragraph) > DISCORD_LIMIT:
            chunks.append(current)
            current = paragraph
        else:
            current = f"{current}\n\n{paragraph}"
    chunks.append(current)
    session = async_get_clientsession(hass)
    for content in chunks:
        body = {"content": content, "username": "Hydra", "allowed_mentions": {"parse": []}}
        try:
            async with session.post(
                url, json=body, timeout=aiohttp.ClientTimeout(total=15)
            ) as response:
                if response.status >= 400:
                    raise HomeAssistantError(f"Discord answered HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError) as err:
            # aiohttp's messages can hold the URL, and with it the webhook's token.
            raise HomeAssistantError(
                f"Discord could not be reached ({type(err).__name__})"
            ) from err


def phone_action_id(action: str, entry: HydraConfigEntry, *details: object) -> str:
    """A phone button's action: ``<action>:<entry id>[:<detail>...]``."""
    return ":".join([action, entry.entry_id, *(str(detail) for detail in details)])


@callback
def async_setup_phone_actions(hass: HomeAssistant, handlers: Mapping[str, PhoneAction]) -> None:
    """Follow the phones' notification buttons: each press goes to the handler of its action,
    with the loaded entry it names."""

    @callback
    def pressed(event: Event[dict[str, Any]]) -> None:
        action, _, rest = str(event.data.get("action", "")).partition(":")
        if (handler := handlers.get(action)) is None:
            return
        entry_id, _, detail = rest.partition(":")
        entry: HydraConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.domain != DOMAIN or entry.state is not ConfigEntryState.LOADED:
            LOGGER.debug("Phone action %s for a Hydra worker that is not loaded", action)
            return
        if (job := handler(entry, detail, event)) is not None:
            entry.async_create_background_task(hass, job, f"{DOMAIN} phone action {action}")

    hass.bus.async_listen(MOBILE_ACTION_EVENT, pressed)
