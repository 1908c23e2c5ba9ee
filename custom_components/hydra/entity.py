"""Base entities: the worker is a device; each GPU and container a device connected through it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, override

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import Context, HomeAssistant, callback
from homeassistant.exceptions import Unauthorized
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from hydra_core.gpu.models import GpuInfo
from hydra_core.models import Actor

from .const import DOMAIN, MANUFACTURER
from .coordinator import HydraCoordinator, HydraPartCoordinator, HydraStatusCoordinator

GPU_MANUFACTURER = {"nvml": "NVIDIA", "simulated": "Hydra (simulated)"}
# Who may have started an action that no user asked for, found by the context it ran in.
_AUTOMATION_DOMAINS = ("automation", "script")


def worker_device_info(coordinator: HydraStatusCoordinator) -> DeviceInfo:
    """The worker's device (registered at set-up, before any GPU refers to it)."""
    worker = coordinator.data.worker
    return DeviceInfo(
        identifiers={(DOMAIN, worker.worker_id)},
        name=worker.name,
        manufacturer=MANUFACTURER,
        model="Hydra worker",
        sw_version=worker.version,
    )


def worker_device_id(hass: HomeAssistant, worker_id: str, entry_id: str) -> str | None:
    """The worker's device, which the GPUs' and containers' devices are connected through."""
    return dr.async_get_device_id_by_identifier(hass, (DOMAIN, worker_id), config_entry_id=entry_id)


def gpu_device_info(coordinator: HydraStatusCoordinator, gpu: GpuInfo) -> DeviceInfo:
    """A GPU's device, named after its worker and index so several identical cards stay apart."""
    status = coordinator.data
    return DeviceInfo(
        identifiers={(DOMAIN, gpu.uuid)},
        name=f"{status.worker.name} GPU {gpu.index}",
        manufacturer=GPU_MANUFACTURER.get(status.gpu.backend),
        model=gpu.name,
        serial_number=gpu.uuid,
        sw_version=status.gpu.driver_version,
        # DeviceInfo types via_device_id as str, but the device registry takes None as "no via
        # device" (before the worker's device is registered).
        via_device_id=worker_device_id(  # type: ignore[typeddict-item]
            coordinator.hass, status.worker.worker_id, coordinator.config_entry.entry_id
        ),
    )


@callback
def async_add_gpu_entities(
    entry: ConfigEntry[Any],
    status: HydraStatusCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
    make: Callable[[list[GpuInfo], bool], Iterable[Entity]],
) -> None:
    """Add ``make(gpus, first)``'s entities for the worker's GPUs now and for any that appear
    later (``first`` is true for the first GPUs seen)."""
    known: set[str] = set()

    @callback
    def add_new_gpus() -> None:
        new = [gpu for uuid, gpu in status.gpus.items() if uuid not in known]
        if not new:
            return
        first = not known
        known.update(gpu.uuid for gpu in new)
        async_add_entities(make(new, first))

    add_new_gpus()
    entry.async_on_unload(status.async_add_listener(add_new_gpus))


class HydraAdminRequired(Unauthorized):
    """A Home Assistant user who is not an administrator asked for what only one may do."""

    def __init__(self, context: Context, scope: str) -> None:
        super().__init__(context=context)
        # Unauthorized carries no text of its own; the user reads the translated refusal.
        self.translation_domain = DOMAIN
        self.translation_key = f"admin_{scope}"
        self.translation_placeholders = {}
        self.generate_message = True


async def async_actor(
    hass: HomeAssistant, context: Context | None, *, admin: str | None = None
) -> Actor:
    """The Home Assistant user who asked, else the automation or script that did.

    With ``admin`` (power, queue, containers, delete) the request is one only an administrator
    may make: a user who is not one is refused; automations and Hydra's own routine act as the
    administrator who set them up.
    """
    context = context or Context()
    if context.user_id is not None:
        user = await hass.auth.async_get_user(context.user_id)
        if admin is not None and (user is None or not user.is_admin):
            raise HydraAdminRequired(context, admin)
        return Actor(type="user", id=context.user_id, name=user.name if user else None)
    runner = next(
        (
            state
            for domain in _AUTOMATION_DOMAINS
            for state in hass.states.async_all(domain)
            if state.context.id == context.id
        ),
        None,
    )
    return Actor(type="automation", id=context.id, name=runner.name if runner else None)


class HydraEntity[C: HydraCoordinator[Any]](CoordinatorEntity[C]):
    """An entity of a Hydra worker, named by its translation key."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: C, description: EntityDescription, owner_id: str) -> None:
        """Describe the entity; it is unique as its description's key on what it belongs to."""
        super().__init__(coordinator)
        self.entity_description = description
        self._attr_unique_id = f"{owner_id}_{description.key}"


class HydraWorkerEntity(HydraEntity[HydraStatusCoordinator]):
    """An entity of the worker itself."""

    def __init__(self, coordinator: HydraStatusCoordinator, description: EntityDescription) -> None:
        """Attach the entity to the worker's device."""
        super().__init__(coordinator, description, coordinator.data.worker.worker_id)
        self._attr_device_info = worker_device_info(coordinator)


class HydraGpuEntity(HydraEntity[HydraStatusCoordinator]):
    """An entity of one GPU, followed by its UUID (indexes can change across reboots)."""

    def __init__(
        self, coordinator: HydraStatusCoordinator, gpu: GpuInfo, description: EntityDescription
    ) -> None:
        """Attach the entity to the GPU's device."""
        super().__init__(coordinator, description, gpu.uuid)
        self.gpu_uuid = gpu.uuid
        self._attr_device_info = gpu_device_info(coordinator, gpu)

    @property
    def gpu(self) -> GpuInfo | None:
        """The GPU's latest reading; None while the worker does not report it."""
        return self.coordinator.gpus.get(self.gpu_uuid)

    @property
    @override
    def available(self) -> bool:
        return super().available and self.gpu is not None


class HydraWorkerPartEntity[C: HydraPartCoordinator[Any, Any]](HydraEntity[C]):
    """An entity of a part of the worker (its engine, queue, voice, GPU power or image review),
    on the worker's device."""

    def __init__(self, coordinator: C, description: EntityDescription) -> None:
        """Attach the entity to the worker's device."""
        super().__init__(coordinator, description, coordinator.worker_id)
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, coordinator.worker_id)})
