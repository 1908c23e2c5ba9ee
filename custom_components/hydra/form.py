"""Form fields the config flow and the routine's options share."""

from __future__ import annotations

from homeassistant.components.notify.const import DOMAIN as NOTIFY_DOMAIN, SERVICE_SEND_MESSAGE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import selector
from yarl import URL

# A token or a webhook: never shown once typed.
SECRET_SELECTOR = selector.TextSelector(
    selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD)
)
# notify actions that are not a target of their own.
_NOT_TARGETS = frozenset({SERVICE_SEND_MESSAGE, "persistent_notification"})


def normalise_url(url: str) -> str | None:
    """The worker's base URL without a trailing slash, or None if it is not an http(s) URL."""
    try:
        parsed = URL(url.strip())
    except ValueError:
        return None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return None
    return str(parsed).rstrip("/")


def targets_selector(hass: HomeAssistant, chosen: list[str]) -> selector.SelectSelector:
    """A choice of notify entities and legacy notify services (phones), and whatever was
    chosen before (a target may be typed too)."""
    notify_services = hass.services.async_services_for_domain(NOTIFY_DOMAIN)
    targets = {
        *hass.states.async_entity_ids(NOTIFY_DOMAIN),
        *(f"{NOTIFY_DOMAIN}.{name}" for name in notify_services if name not in _NOT_TARGETS),
        *chosen,
    }
    return selector.SelectSelector(
        selector.SelectSelectorConfig(
            options=sorted(targets),
            multiple=True,
            custom_value=True,
            mode=selector.SelectSelectorMode.DROPDOWN,
        )
    )
