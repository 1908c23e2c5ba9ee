"""The Hydra dashboard strategy run by Node.js against a real Home Assistant's registries.

The frontend hands the strategy ``hass.entities``, ``hass.devices``, ``hass.states`` and
``hass.config``; this builds the same shapes from the test's Home Assistant and returns the
dashboard the strategy generates, so a test can check the views without a browser (the
browser test, ``test_browser.py``, renders them).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
import shutil
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er

STRATEGY = Path(__file__).parents[2] / "custom_components/hydra/frontend/hydra-dashboard.js"

# No DOM in Node.js: the module's element is already "defined", so only its functions load.
_RUN = """
globalThis.HTMLElement = class {};
globalThis.window = { customElements: { get: () => true } };
const [source, hass, answers] = JSON.parse(require("fs").readFileSync(0, "utf8"));
// The frontend's websocket: what the test's Home Assistant answered to each command.
hass.callWS = async (message) => {
  if (!(message.type in answers)) throw new Error(`Unknown command: ${message.type}`);
  return answers[message.type];
};
import("data:text/javascript," + encodeURIComponent(source))
  .then((module) => module.generateDashboard(hass))
  .then((dashboard) => process.stdout.write(JSON.stringify(dashboard)));
"""

# The browser's registry first; 100 ms later the frontend installs its own (a scoped-registry
# polyfill) and, 200 ms after, defines its app in it; one more registry comes later still.
# Prints each definition as [registry, tag] in order.
_SWAP = """
globalThis.HTMLElement = class {};
const defined = [];
const registry = (name) => {
  const elements = new Map();
  return {
    get: (tag) => elements.get(tag),
    define: (tag, element) => { elements.set(tag, element); defined.push([name, tag]); },
  };
};
globalThis.window = globalThis;
window.customElements = registry("browser");
const source = require("fs").readFileSync(0, "utf8");
import("data:text/javascript," + encodeURIComponent(source)).then(() => {
  setTimeout(() => { window.customElements = registry("frontend"); }, 100);
  setTimeout(() => window.customElements.define("home-assistant", class {}), 300);
  setTimeout(() => { window.customElements = registry("later"); }, 400);
  setTimeout(() => { process.stdout.write(JSON.stringify(defined)); process.exit(0); }, 700);
});
"""


async def _node(script: str, given: bytes) -> bytes:
    node = shutil.which("node")
    assert node is not None, "Node.js runs the dashboard strategy (scripts/system-setup)"
    process = await asyncio.create_subprocess_exec(
        node,
        "-e",
        script,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(given)
    assert process.returncode == 0, err.decode()
    return out


async def registrations(source: str) -> list[list[str]]:
    """Where the strategy script defines its element when the frontend swaps the registry
    after the script ran, as Home Assistant's frontend does as its core loads."""
    defined: list[list[str]] = json.loads(await _node(_SWAP, source.encode()))
    return defined


def frontend_hass(hass: HomeAssistant, *, admin: bool = True) -> dict[str, Any]:
    """What the frontend's ``hass`` object holds of the registries, states and its user."""
    entities = {
        entry.entity_id: {
            "entity_id": entry.entity_id,
            "device_id": entry.device_id,
            "platform": entry.platform,
            "translation_key": entry.translation_key,
            "hidden": entry.hidden_by is not None,
        }
        for entry in er.async_get(hass).entities.values()
    }
    devices = {
        device.id: {
            "id": device.id,
            "name": device.name,
            "name_by_user": device.name_by_user,
            "via_device_id": device.via_device_id,
        }
        for device in dr.async_get(hass).devices
    }
    states = {
        state.entity_id: {"state": state.state, "attributes": dict(state.attributes)}
        for state in hass.states.async_all()
    }
    config = {"components": sorted(hass.config.components)}
    user = {"is_admin": admin}
    return {
        "entities": entities,
        "devices": devices,
        "states": states,
        "config": config,
        "user": user,
    }


async def generated_dashboard(
    hass: HomeAssistant, *, answers: dict[str, Any] | None = None, admin: bool = True
) -> dict[str, Any]:
    """The dashboard the strategy generates for ``hass`` (for a user who is an administrator
    or not); ``answers``: what Home Assistant's websocket answered to each command type the
    strategy may send (others fail, as an unknown command does)."""
    given = json.dumps(
        [STRATEGY.read_text(), frontend_hass(hass, admin=admin), answers or {}], default=str
    ).encode()
    dashboard: dict[str, Any] = json.loads(await _node(_RUN, given))
    return dashboard
