"""Hydra: a home-lab AI system (GPUs, containers, voice, overnight work) in Home Assistant."""

from homeassistant.const import CONF_TOKEN, CONF_URL, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from hydra_core.client import HydraClient

from .const import DOMAIN
from .coordinator import HydraConfigEntry, HydraData, HydraStatusCoordinator
from .entity import worker_device_info

PLATFORMS: list[Platform] = [Platform.SENSOR]


async def async_setup_entry(hass: HomeAssistant, entry: HydraConfigEntry) -> bool:
    """Connect to the worker; retried by Home Assistant while the worker is unreachable."""
    client = HydraClient(
        async_get_clientsession(hass), entry.data[CONF_URL], entry.data[CONF_TOKEN]
    )
    status = HydraStatusCoordinator(hass, entry, client)
    await status.async_config_entry_first_refresh()
    entry.runtime_data = HydraData(client=client, status=status)
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, **worker_device_info(status)
    )
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: HydraConfigEntry) -> bool:
    """Unload the entry's platforms."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: HydraConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Let the user delete a GPU the worker no longer reports; never the worker or a live GPU."""
    status = entry.runtime_data.status
    live = {status.data.worker.worker_id, *status.gpus}
    return not any(
        domain == DOMAIN and identifier in live for domain, identifier in device.identifiers
    )
