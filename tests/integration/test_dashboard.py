"""The "Hydra" dashboard strategy: served by Home Assistant and loaded by the frontend while a
worker is set up (the browser test, test_browser.py, opens it)."""

from __future__ import annotations

from http import HTTPStatus

from homeassistant.components.frontend import DATA_EXTRA_MODULE_URL
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.hydra.const import DOMAIN
from custom_components.hydra.dashboard import URL
from hydra_core.models import WorkerInfo
from tests.fake_nvml import FakeNvml

from .conftest import LoopbackWorker, entry_for
from .dashboard_strategy import registrations


def _loaded_scripts(hass: HomeAssistant) -> frozenset[str]:
    return hass.data[DATA_EXTRA_MODULE_URL].urls


async def test_strategy_loaded_while_a_worker_is_set_up(
    hass: HomeAssistant,
    worker: LoopbackWorker,
    nvml: FakeNvml,
    hass_client: ClientSessionGenerator,
) -> None:
    """Every page of the frontend loads the strategy while any worker is set up, and no longer
    once the last one is unloaded; the script defines the ``custom:hydra`` dashboard strategy."""
    assert await async_setup_component(hass, "frontend", {})
    first = entry_for(worker)
    first.add_to_hass(hass)
    assert URL not in _loaded_scripts(hass)
    assert await hass.config_entries.async_setup(first.entry_id)
    await hass.async_block_till_done()
    assert URL in _loaded_scripts(hass)

    http = await hass_client()
    response = await http.get(URL)
    assert response.status == HTTPStatus.OK
    # Defined in the registry the frontend installs after the script ran, where the dashboard
    # looks for it (in the browser's alone it timed out), and no more once the frontend's app
    # is defined there.
    tag = "ll-strategy-dashboard-hydra"
    assert await registrations(await response.text()) == [
        ["browser", tag],
        ["frontend", tag],
        ["frontend", "home-assistant"],
    ]

    info = WorkerInfo(worker_id="0" * 32, name="second", version="0.1.0")
    async with LoopbackWorker(nvml, info=info) as other:
        second = MockConfigEntry(
            domain=DOMAIN,
            title=info.name,
            unique_id=info.worker_id,
            data={CONF_URL: other.url, CONF_TOKEN: other.token},
        )
        second.add_to_hass(hass)
        assert await hass.config_entries.async_setup(second.entry_id)
        await hass.async_block_till_done()
        assert await hass.config_entries.async_unload(first.entry_id)
        assert URL in _loaded_scripts(hass)
        assert await hass.config_entries.async_unload(second.entry_id)
        assert URL not in _loaded_scripts(hass)
