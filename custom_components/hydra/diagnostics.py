"""Diagnostics: what the worker reports, without the token."""

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_TOKEN
from homeassistant.core import HomeAssistant

from .coordinator import HydraConfigEntry

TO_REDACT = {CONF_TOKEN}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: HydraConfigEntry
) -> dict[str, Any]:
    """Return the entry (token redacted) and the worker's latest status."""
    status = entry.runtime_data.status
    return {
        "entry": async_redact_data(entry.as_dict(), TO_REDACT),
        "last_update_success": status.last_update_success,
        "status": status.data.as_dict(),
    }
