"""Hydra: a home-lab AI system (GPUs, containers, voice, overnight work) in Home Assistant."""

from __future__ import annotations

from typing import Any

from homeassistant.const import CONF_TOKEN, CONF_URL, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from hydra_core.client import HydraApiError, HydraAuthError, HydraClient, HydraError

from .actions import async_register_actions
from .const import CONF_FINGERPRINT, DOMAIN
from .coordinator import HydraPartCoordinator, HydraStatusCoordinator
from .dashboard import async_load_dashboard, async_serve_dashboard, async_unload_dashboard
from .data import HydraConfigEntry, HydraData
from .entity import worker_device_info
from .event_stream import HydraEventStream
from .llm_api import async_register_llm_api
from .notify import async_setup_phone_actions
from .registry import PARTS
from .routine import PHONE_ACTIONS as ROUTINE_PHONE_ACTIONS, ROUTINE_ACTIONS, HydraRoutine

# The worker's own entities (status, briefing) and every part's.
PLATFORMS: list[Platform] = sorted(
    {Platform.BUTTON, Platform.SENSOR}.union(*(part.platforms for part in PARTS))
)
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions, which work on any loaded worker that has their part, the
    "Hydra" LLM API, and serve the dashboard strategy."""
    for part in PARTS:
        async_register_actions(hass, part.actions)
        if part.setup is not None:
            part.setup(hass)
    async_register_actions(hass, ROUTINE_ACTIONS)
    phone_actions = dict(ROUTINE_PHONE_ACTIONS)
    for part in PARTS:
        phone_actions.update(part.phone_actions)
    async_setup_phone_actions(hass, phone_actions)
    async_register_llm_api(hass)
    await async_serve_dashboard(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: HydraConfigEntry) -> bool:
    """Connect to the worker; retried by Home Assistant while the worker is unreachable."""
    client = HydraClient(
        async_get_clientsession(hass),
        entry.data[CONF_URL],
        entry.data[CONF_TOKEN],
        fingerprint=entry.data.get(CONF_FINGERPRINT),
    )
    status = HydraStatusCoordinator(hass, entry, client)
    await status.async_config_entry_first_refresh()
    data = HydraData(client=client, status=status)
    entry.runtime_data = data
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, **worker_device_info(status)
    )
    worker_id = status.data.worker.worker_id
    # The worker's status lists the parts it runs; one that lists none may be an older worker
    # that does not say, whose parts are found by reading each.
    listed = status.data.parts
    for part in PARTS:
        if listed and part.name not in listed:
            continue
        coordinator = part.coordinator(hass, entry, client, worker_id)
        if await _async_has_part(coordinator):
            await coordinator.async_start()
            data.parts[part.name] = coordinator
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    if data.parts:
        HydraEventStream(hass, entry).async_start()
    data.routine = HydraRoutine(hass, entry)
    await data.routine.async_start()
    async_load_dashboard(hass, entry)
    return True


async def _async_has_part(coordinator: HydraPartCoordinator[Any, Any]) -> bool:
    """Whether the worker has the coordinator's part; if it has, the first data is read in.

    A 404 on the part's first read means the worker does not have it after all: its part is off
    ("containers_disabled", "scheduler_disabled", ...), or an older worker has no such route.
    """
    try:
        first = await coordinator.async_fetch()
    except HydraAuthError as err:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key="invalid_auth"
        ) from err
    except HydraError as err:
        if isinstance(err, HydraApiError) and err.status == 404:
            return False
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={"error": str(err)},
        ) from err
    coordinator.async_set_updated_data(first)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: HydraConfigEntry) -> bool:
    """Unload the entry's platforms; the event stream ends with the entry."""
    if unloaded := await hass.config_entries.async_unload_platforms(entry, PLATFORMS):
        async_unload_dashboard(hass, entry)
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: HydraConfigEntry) -> None:
    """Forget what the entry kept (about its containers, its routine)."""
    for part in PARTS:
        if part.async_remove_entry is not None:
            await part.async_remove_entry(hass, entry)
    await HydraRoutine(hass, entry).async_remove()


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: HydraConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Let the user delete a GPU or container the worker no longer reports; never a live one."""
    data = entry.runtime_data
    live = {data.status.data.worker.worker_id, *data.status.gpus}
    for coordinator in data.parts.values():
        live.update(coordinator.device_identifiers())
    if any(domain == DOMAIN and identifier in live for domain, identifier in device.identifiers):
        return False
    for coordinator in data.parts.values():
        coordinator.forget_device(device)
    return True
