"""Diagnostics: what the worker reports (status, containers), without the token."""

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_TOKEN
from homeassistant.core import HomeAssistant

from .coordinator import HydraConfigEntry

TO_REDACT = {CONF_TOKEN}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: HydraConfigEntry
) -> dict[str, Any]:
    """Return the entry (token redacted), the worker's latest status and its containers."""
    data = entry.runtime_data
    status = data.status
    diagnostics: dict[str, Any] = {
        "entry": async_redact_data(entry.as_dict(), TO_REDACT),
        "last_update_success": status.last_update_success,
        "status": status.data.as_dict(),
        "containers": None,
    }
    if (containers := data.containers) is not None:
        diagnostics["containers"] = {
            "last_update_success": containers.last_update_success,
            "event_stream_connected": containers.pushed,
            "report": containers.data.as_dict(),
        }
    return diagnostics
