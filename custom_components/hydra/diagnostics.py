"""Diagnostics: what the worker reports (status, each part), without the token or webhook."""

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_TOKEN
from homeassistant.core import HomeAssistant

from hydra_core.wire import dump

from .const import CONF_DISCORD_WEBHOOK
from .data import HydraConfigEntry
from .registry import PARTS

# The Discord webhook's URL holds the token that lets anyone post to the channel.
TO_REDACT = {CONF_TOKEN, CONF_DISCORD_WEBHOOK}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: HydraConfigEntry
) -> dict[str, Any]:
    """Return the entry (token redacted), the worker's status and each part (None: absent)."""
    data = entry.runtime_data
    status = data.status
    diagnostics: dict[str, Any] = {
        "entry": async_redact_data(entry.as_dict(), TO_REDACT),
        "last_update_success": status.last_update_success,
        "status": dump(status.data),
    }
    for part in PARTS:
        coordinator = data.parts.get(part.name)
        diagnostics[part.name] = None if coordinator is None else coordinator.diagnostics()
    return diagnostics
