"""Diagnostics: what the worker reports (status, containers), without the token or webhook."""

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_TOKEN
from homeassistant.core import HomeAssistant

from .const import CONF_DISCORD_WEBHOOK
from .coordinator import HydraConfigEntry

# The Discord webhook's URL holds the token that lets anyone post to the channel.
TO_REDACT = {CONF_TOKEN, CONF_DISCORD_WEBHOOK}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: HydraConfigEntry
) -> dict[str, Any]:
    """Return the entry (token redacted), the worker's status, containers and task queue."""
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
    diagnostics["tasks"] = None
    if (tasks := data.tasks) is not None:
        diagnostics["tasks"] = {
            "last_update_success": tasks.last_update_success,
            "event_stream_connected": tasks.pushed,
            "scheduler": tasks.data.scheduler.as_dict(),
            # Payloads may hold what the user typed; kinds and states are enough to debug.
            "recent": [
                {"id": task.id, "kind": task.kind, "state": task.state, "error": task.error}
                for task in tasks.data.tasks
            ],
        }
    diagnostics["power"] = None
    if (power := data.power) is not None:
        diagnostics["power"] = {
            "last_update_success": power.last_update_success,
            "status": power.data.as_dict(),
        }
    diagnostics["quality"] = None
    if (quality := data.quality) is not None:
        # The model, the thresholds and prompt adjustments learnt; waiting assets by id only.
        diagnostics["quality"] = {
            "last_update_success": quality.last_update_success,
            "status": quality.data.status.as_dict(),
            "pending": [asset.id for asset in quality.data.pending],
        }
    return diagnostics
