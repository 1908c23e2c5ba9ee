"""The "Hydra" dashboard strategy (``frontend/hydra-dashboard.js``): served by Home Assistant and
loaded into every frontend page while a Hydra worker is set up.

The strategy builds the dashboard in the browser from the entity and device registries each time
it is opened, so nothing is written to Home Assistant's storage: a user adds it with one line of
YAML (``strategy: {type: custom:hydra}``) or picks "Hydra" when adding a dashboard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from homeassistant.components.frontend import add_extra_js_url, remove_extra_js_url
from homeassistant.components.http.server import StaticPathConfig
from homeassistant.core import HomeAssistant, callback

from .const import DOMAIN
from .data import HydraConfigEntry

SCRIPT: Final = Path(__file__).parent / "frontend" / "hydra-dashboard.js"
URL: Final = f"/{DOMAIN}_static/hydra-dashboard.js"


async def async_serve_dashboard(hass: HomeAssistant) -> None:
    """Serve the strategy's script (once, when the integration is set up)."""
    # Not cached: a browser must pick up a changed script after an update.
    await hass.http.async_register_static_paths([StaticPathConfig(URL, str(SCRIPT), False)])


def _others_loaded(hass: HomeAssistant, entry: HydraConfigEntry) -> bool:
    return any(
        other.entry_id != entry.entry_id
        for other in hass.config_entries.async_loaded_entries(DOMAIN)
    )


@callback
def async_load_dashboard(hass: HomeAssistant, entry: HydraConfigEntry) -> None:
    """Have the frontend load the strategy when the first worker is set up."""
    if "frontend" in hass.config.components and not _others_loaded(hass, entry):
        add_extra_js_url(hass, URL)


@callback
def async_unload_dashboard(hass: HomeAssistant, entry: HydraConfigEntry) -> None:
    """Stop loading the strategy when the last worker is unloaded."""
    if "frontend" in hass.config.components and not _others_loaded(hass, entry):
        remove_extra_js_url(hass, URL)
