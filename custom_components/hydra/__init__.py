"""Hydra: a home-lab AI system (GPUs, containers, voice, overnight work) in Home Assistant."""

from collections.abc import Awaitable, Callable

from homeassistant.const import CONF_TOKEN, CONF_URL, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from hydra_core.client import HydraApiError, HydraAuthError, HydraClient, HydraError
from hydra_core.models import ContainerReport, PowerStatus, VoiceStatus

from .const import DOMAIN
from .containers import ContainerTracker, container_store
from .coordinator import (
    HydraConfigEntry,
    HydraContainerCoordinator,
    HydraData,
    HydraPowerCoordinator,
    HydraQualityCoordinator,
    HydraQualityData,
    HydraStatusCoordinator,
    HydraTaskCoordinator,
    HydraTaskData,
    HydraVoiceCoordinator,
)
from .entity import container_identifier, worker_device_info
from .event_stream import HydraEventStream
from .power import async_setup_power_services
from .review import async_setup_review
from .routine import HydraRoutine, async_setup_routine
from .services import async_setup_services

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.IMAGE,
    Platform.NUMBER,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,
    Platform.TODO,
]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions, which work on any loaded worker that runs a task queue."""
    async_setup_services(hass)
    async_setup_power_services(hass)
    async_setup_routine(hass)
    async_setup_review(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: HydraConfigEntry) -> bool:
    """Connect to the worker; retried by Home Assistant while the worker is unreachable."""
    client = HydraClient(
        async_get_clientsession(hass), entry.data[CONF_URL], entry.data[CONF_TOKEN]
    )
    status = HydraStatusCoordinator(hass, entry, client)
    await status.async_config_entry_first_refresh()
    data = HydraData(client=client, status=status)
    entry.runtime_data = data
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, **worker_device_info(status)
    )
    worker_id = status.data.worker.worker_id
    if (report := await _async_first_read(client, client.async_containers)) is not None:
        data.containers = HydraContainerCoordinator(hass, entry, client, worker_id)
        data.containers.async_set_updated_data(report)
        data.tracker = await ContainerTracker.async_load(hass, entry, data.containers)
    tasks = await _async_first_read(client, lambda: HydraTaskCoordinator.async_fetch(client))
    if tasks is not None:
        data.tasks = HydraTaskCoordinator(hass, entry, client, worker_id)
        data.tasks.async_set_updated_data(tasks)
    if (voice := await _async_first_read(client, client.async_voice)) is not None:
        data.voice = HydraVoiceCoordinator(hass, entry, client, worker_id)
        data.voice.async_set_updated_data(voice)
    power = await _async_first_read(client, lambda: HydraPowerCoordinator.async_fetch(client))
    if power is not None:
        data.power = HydraPowerCoordinator(hass, entry, client, worker_id)
        data.power.async_set_updated_data(power)
    quality = await _async_first_read(client, lambda: HydraQualityCoordinator.async_fetch(client))
    if quality is not None:
        data.quality = HydraQualityCoordinator(hass, entry, client, worker_id)
        data.quality.async_set_updated_data(quality)
    parts = (data.containers, data.tasks, data.voice, data.power, data.quality)
    if any(part is not None for part in parts):
        data.events = HydraEventStream(
            hass,
            entry,
            client,
            status,
            containers=data.containers,
            tasks=data.tasks,
            voice=data.voice,
            power=data.power,
            quality=data.quality,
        )
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    if data.events is not None:
        data.events.async_start()
    data.routine = HydraRoutine(hass, entry)
    await data.routine.async_start()
    return True


async def _async_first_read[
    T: (ContainerReport, HydraTaskData, VoiceStatus, PowerStatus, HydraQualityData)
](client: HydraClient, read: Callable[[], Awaitable[T]]) -> T | None:
    """The worker's containers, task queue, voice, GPU power or image review, or None when
    the worker has none of it."""
    try:
        return await read()
    except HydraAuthError as err:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key="invalid_auth"
        ) from err
    except HydraError as err:
        # 404: the worker follows no container engine ("containers_disabled"), runs no task
        # queue ("scheduler_disabled"), no voice ("voice_disabled"), manages no GPU power
        # ("power_disabled") or keeps no assets for review ("quality_disabled"); an older
        # worker has no such route at all.
        if isinstance(err, HydraApiError) and err.status == 404:
            return None
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={"error": str(err)},
        ) from err


async def async_unload_entry(hass: HomeAssistant, entry: HydraConfigEntry) -> bool:
    """Unload the entry's platforms; the event stream ends with the entry."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: HydraConfigEntry) -> None:
    """Forget what the entry kept about its containers."""
    await container_store(hass, entry.entry_id).async_remove()
    await HydraRoutine(hass, entry).async_remove()


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: HydraConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Let the user delete a GPU or container the worker no longer reports; never a live one."""
    data = entry.runtime_data
    worker_id = data.status.data.worker.worker_id
    live = {worker_id, *data.status.gpus}
    if data.containers is not None:
        live.update(container_identifier(worker_id, name) for name in data.containers.containers)
    if any(domain == DOMAIN and identifier in live for domain, identifier in device.identifiers):
        return False
    if data.tracker is not None:
        data.tracker.async_forget(device)
    return True
