"""Which containers have entities: new ones get them at once, long-gone and unwanted ones lose them.

A container that disappears keeps its (unavailable) entities for the grace period chosen in the
options, so a container that is only being recreated keeps its history, entity ids and settings.
When it has been gone longer, its device goes; entities the user disabled stay in the entity
registry, detached, so the container comes back with them still disabled.

A protected container has no controls (the running switch, the restart button): the worker
refuses every action on it. They go when it turns protected and come back when it no longer is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from hydra_core.containers.models import ContainerInfo

from ...const import CONF_CONTAINERS, CONF_REMOVE_AFTER, DEFAULT_REMOVE_AFTER_H, DOMAIN, LOGGER
from .device import container_identifier, container_identifier_prefix

if TYPE_CHECKING:
    from ...data import HydraConfigEntry
    from .coordinator import HydraContainerCoordinator

STORAGE_VERSION = 1
# A container's entities on these platforms act on it (the running switch, the restart button).
CONTROL_PLATFORMS = frozenset({Platform.BUTTON, Platform.SWITCH})
# Seconds to gather changes to the missing-since times before writing them.
SAVE_DELAY_S = 10

type EntityFactory = Callable[[HydraContainerCoordinator, ContainerInfo], Iterable[Entity]]


def container_store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    """Where an entry keeps when each of its containers went missing."""
    return Store(hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.containers")


async def async_remove_store(hass: HomeAssistant, entry: HydraConfigEntry) -> None:
    """Forget what a deleted entry kept about its containers."""
    await container_store(hass, entry.entry_id).async_remove()


class ContainerTracker:
    """Adds entities for the containers the user wants, and removes those gone for too long."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HydraConfigEntry,
        coordinator: HydraContainerCoordinator,
        store: Store[dict[str, Any]],
        missing_since: dict[str, datetime],
    ) -> None:
        """Use ``async_load`` to create one."""
        self._hass = hass
        self._entry = entry
        self._coordinator = coordinator
        self._store = store
        self._missing_since = missing_since
        self._patterns: tuple[str, ...] = tuple(entry.options.get(CONF_CONTAINERS, ()))
        self._grace = timedelta(hours=entry.options.get(CONF_REMOVE_AFTER, DEFAULT_REMOVE_AFTER_H))
        self._prefix = container_identifier_prefix(coordinator.worker_id)
        self._known: set[str] = set()
        self._adders: list[Callable[[list[ContainerInfo]], None]] = []
        self._control_adders: list[Callable[[list[ContainerInfo]], None]] = []
        # Known containers whose controls are gone, because they were protected when last seen.
        self._uncontrolled: set[str] = set()

    @classmethod
    async def async_load(
        cls, hass: HomeAssistant, entry: HydraConfigEntry, coordinator: HydraContainerCoordinator
    ) -> ContainerTracker:
        """Read what was saved, then follow the coordinator until the entry unloads."""
        store = container_store(hass, entry.entry_id)
        saved = await store.async_load() or {}
        missing_since = {
            name: when
            for name, value in saved.get("missing_since", {}).items()
            if (when := dt_util.parse_datetime(value)) is not None
        }
        tracker = cls(hass, entry, coordinator, store, missing_since)
        tracker._async_update()
        entry.async_on_unload(coordinator.async_add_listener(tracker._async_update))
        entry.async_on_unload(tracker._async_save_now)
        return tracker

    def exposed(self, name: str) -> bool:
        """Whether the user wants this container in Home Assistant (all, unless chosen)."""
        return not self._patterns or any(fnmatchcase(name, pattern) for pattern in self._patterns)

    @callback
    def async_add_platform(
        self, async_add_entities: AddConfigEntryEntitiesCallback, factory: EntityFactory
    ) -> None:
        """Add a platform's entities for every container, now and whenever one appears."""

        @callback
        def add(containers: list[ContainerInfo]) -> None:
            async_add_entities(
                entity
                for container in containers
                for entity in factory(self._coordinator, container)
            )

        self._adders.append(add)
        containers = self._coordinator.containers
        add([containers[name] for name in sorted(self._known) if name in containers])

    @callback
    def async_add_controls(
        self, async_add_entities: AddConfigEntryEntitiesCallback, factory: EntityFactory
    ) -> None:
        """Add a control platform's entities (see CONTROL_PLATFORMS) for every container that is
        not protected, now and whenever one appears or stops being protected."""

        def controls(
            coordinator: HydraContainerCoordinator, container: ContainerInfo
        ) -> Iterable[Entity]:
            return () if container.protected else factory(coordinator, container)

        self.async_add_platform(async_add_entities, controls)
        self._control_adders.append(self._adders[-1])

    @callback
    def _async_update(self) -> None:
        new = [
            container
            for name, container in self._coordinator.containers.items()
            if name not in self._known and self.exposed(name)
        ]
        if new:
            self._known.update(container.name for container in new)
            for add in self._adders:
                add(new)
        self._follow_protection()
        self._remove_stale()

    def _follow_protection(self) -> None:
        """Remove the controls of containers that turned protected; add them back when not."""
        device_registry = dr.async_get(self._hass)
        entity_registry = er.async_get(self._hass)
        for name, container in self._coordinator.containers.items():
            if name not in self._known:
                continue
            if container.protected and name not in self._uncontrolled:
                self._uncontrolled.add(name)
                device = device_registry.async_get_device_by_identifier(
                    (DOMAIN, container_identifier(self._coordinator.worker_id, name)),
                    self._entry.entry_id,
                )
                if device is None:
                    continue
                for entity in er.async_entries_for_device(
                    entity_registry, device.id, include_disabled_entities=True
                ):
                    if entity.domain in CONTROL_PLATFORMS:
                        LOGGER.info("Removing %s: %s is protected", entity.entity_id, name)
                        entity_registry.async_remove(entity.entity_id)
            elif not container.protected and name in self._uncontrolled:
                self._uncontrolled.discard(name)
                for add in self._control_adders:
                    add([container])

    def _remove_stale(self) -> None:
        """Remove devices of containers not wanted, or gone longer than the grace period."""
        device_registry = dr.async_get(self._hass)
        # While the engine cannot be read, nothing is known to be missing.
        engine_read = self._coordinator.data.engine_available
        now = dt_util.utcnow()
        changed = False
        for device in dr.async_entries_for_config_entry(device_registry, self._entry.entry_id):
            name = self._container_name(device)
            if name is None:
                continue
            if not self.exposed(name):
                self._remove(device_registry, device, "is no longer chosen in the options")
            elif name in self._coordinator.containers:
                changed |= self._missing_since.pop(name, None) is not None
            elif engine_read:
                if name not in self._missing_since:
                    self._missing_since[name] = now
                    changed = True
                since = self._missing_since[name]
                if now - since >= self._grace:
                    self._remove(device_registry, device, f"is gone since {since.isoformat()}")
        if changed:
            self._store.async_delay_save(self._as_saved, SAVE_DELAY_S)

    def _container_name(self, device: dr.DeviceEntry) -> str | None:
        for domain, identifier in device.identifiers:
            if domain == DOMAIN and identifier.startswith(self._prefix):
                return identifier.removeprefix(self._prefix)
        return None

    @callback
    def async_forget(self, device: dr.DeviceEntry) -> None:
        """The user deleted a container's device: if the container returns, it starts afresh."""
        if (name := self._container_name(device)) is not None:
            self._known.discard(name)
            self._uncontrolled.discard(name)
            if self._missing_since.pop(name, None) is not None:
                self._store.async_delay_save(self._as_saved, SAVE_DELAY_S)

    def _remove(self, registry: dr.DeviceRegistry, device: dr.DeviceEntry, why: str) -> None:
        LOGGER.info("Removing the device of container %s: it %s", device.name, why)
        entity_registry = er.async_get(self._hass)
        for entity in er.async_entries_for_device(
            entity_registry, device.id, include_disabled_entities=True
        ):
            if entity.disabled_by is er.RegistryEntryDisabler.USER:
                # Kept, so a returning container gets it back still disabled.
                entity_registry.async_update_entity(entity.entity_id, device_id=None)
        registry.async_remove_device(device.id)
        self.async_forget(device)

    def _as_saved(self) -> dict[str, Any]:
        return {
            "missing_since": {name: when.isoformat() for name, when in self._missing_since.items()}
        }

    async def _async_save_now(self) -> None:
        await self._store.async_save(self._as_saved())
