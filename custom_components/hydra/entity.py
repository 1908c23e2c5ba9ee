"""Base entities: the worker is a device; each GPU and container a device connected through it."""

from collections.abc import Callable
from typing import Any, override

from homeassistant.core import Context, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from hydra_core.client import HydraApiError, HydraAuthError, HydraError
from hydra_core.models import Actor, ContainerInfo, GpuInfo, GpuPower

from .const import DOMAIN, MANUFACTURER
from .coordinator import (
    HydraContainerCoordinator,
    HydraPartCoordinator,
    HydraPowerCoordinator,
    HydraQualityCoordinator,
    HydraStatusCoordinator,
    HydraTaskCoordinator,
    HydraVoiceCoordinator,
)

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


def _worker_device_id(hass: HomeAssistant, worker_id: str, entry_id: str) -> str | None:
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
        via_device_id=_worker_device_id(
            coordinator.hass, status.worker.worker_id, coordinator.config_entry.entry_id
        ),
    )


def container_identifier(worker_id: str, name: str) -> str:
    """A container device's identifier: by name, so a recreated container keeps its device."""
    return f"{container_identifier_prefix(worker_id)}{name}"


def container_identifier_prefix(worker_id: str) -> str:
    """What every container identifier of a worker starts with."""
    return f"{worker_id}_container_"


def container_device_info(
    coordinator: HydraContainerCoordinator, container: ContainerInfo
) -> DeviceInfo:
    """A container's device, connected through its worker; the image is its model."""
    engine = (coordinator.data.engine_version or "").split(" ", 1)[0]
    return DeviceInfo(
        identifiers={(DOMAIN, container_identifier(coordinator.worker_id, container.name))},
        name=container.name,
        manufacturer=engine or None,
        model=container.image or None,
        via_device_id=_worker_device_id(
            coordinator.hass, coordinator.worker_id, coordinator.config_entry.entry_id
        ),
    )


type HydraCoordinator = (
    HydraStatusCoordinator
    | HydraContainerCoordinator
    | HydraTaskCoordinator
    | HydraVoiceCoordinator
    | HydraPowerCoordinator
)


def request_error(
    coordinator: HydraCoordinator,
    err: HydraError,
    refused: Callable[[HydraApiError], HomeAssistantError | None] = lambda _: None,
) -> HomeAssistantError:
    """What to raise for a failed request to the worker.

    A refused token starts re-authentication; ``refused`` says what an answer of the worker's
    means for this request (None: nothing particular); anything else is "cannot connect".
    """
    if isinstance(err, HydraAuthError):
        coordinator.config_entry.async_start_reauth(coordinator.hass)
        return HomeAssistantError(translation_domain=DOMAIN, translation_key="invalid_auth")
    if isinstance(err, HydraApiError) and (error := refused(err)) is not None:
        return error
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="cannot_connect",
        translation_placeholders={"error": str(err)},
    )


def refusal_error(
    coordinator: HydraCoordinator,
    err: HydraError,
    *,
    mistakes: frozenset[str],
    failed_key: str,
    own: frozenset[str] = frozenset(),
) -> HomeAssistantError:
    """``request_error`` for requests whose refusals the worker explains: a code in
    ``mistakes`` is the user's (ServiceValidationError), one in ``own`` has its own text, any
    other answer reads ``failed_key``; each translation gets the worker's message as error."""

    def refused(api: HydraApiError) -> HomeAssistantError:
        placeholders = {"error": api.message}
        if api.code in mistakes:
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key=api.code,
                translation_placeholders=placeholders,
            )
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key=api.code if api.code in own else failed_key,
            translation_placeholders=placeholders,
        )

    return request_error(coordinator, err, refused)


def client_error(
    coordinator: HydraContainerCoordinator,
    err: HydraError,
    name: str | None = None,
    action: str | None = None,
) -> HomeAssistantError:
    """What to raise for a failed container request: the user's mistake, or the worker's failure."""

    def refused(api: HydraApiError) -> HomeAssistantError | None:
        if name is None:
            return None
        if api.code in ("container_protected", "container_not_found"):
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key=api.code,
                translation_placeholders={"name": name},
            )
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="container_action_failed",
            translation_placeholders={"name": name, "action": str(action), "error": api.message},
        )

    return request_error(coordinator, err, refused)


async def async_actor(hass: HomeAssistant, context: Context | None) -> Actor:
    """The Home Assistant user who asked, else the automation or script that did."""
    context = context or Context()
    if context.user_id is not None:
        user = await hass.auth.async_get_user(context.user_id)
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


class HydraWorkerEntity(CoordinatorEntity[HydraStatusCoordinator]):
    """An entity of the worker itself."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: HydraStatusCoordinator, key: str) -> None:
        """Attach the entity to the worker's device."""
        super().__init__(coordinator)
        self._attr_unique_id = f"{coordinator.data.worker.worker_id}_{key}"
        self._attr_device_info = worker_device_info(coordinator)


class HydraGpuEntity(CoordinatorEntity[HydraStatusCoordinator]):
    """An entity of one GPU, followed by its UUID (indexes can change across reboots)."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: HydraStatusCoordinator, gpu: GpuInfo, key: str) -> None:
        """Attach the entity to the GPU's device."""
        super().__init__(coordinator)
        self.gpu_uuid = gpu.uuid
        self._attr_unique_id = f"{gpu.uuid}_{key}"
        self._attr_device_info = gpu_device_info(coordinator, gpu)

    @property
    def gpu(self) -> GpuInfo | None:
        """The GPU's latest reading; None while the worker does not report it."""
        return self.coordinator.gpus.get(self.gpu_uuid)

    @property
    @override
    def available(self) -> bool:
        return super().available and self.gpu is not None


class HydraWorkerPartEntity[C: HydraPartCoordinator[Any]](CoordinatorEntity[C]):
    """An entity of a part of the worker (its engine, queue, voice, GPU power or image review),
    on the worker's device."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: C, key: str) -> None:
        """Attach the entity to the worker's device."""
        super().__init__(coordinator)
        self._attr_unique_id = f"{coordinator.worker_id}_{key}"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, coordinator.worker_id)})


class HydraEngineEntity(HydraWorkerPartEntity[HydraContainerCoordinator]):
    """An entity of the worker's container engine, on the worker's device."""


class HydraQueueEntity(HydraWorkerPartEntity[HydraTaskCoordinator]):
    """An entity of the worker's task queue, on the worker's device."""


class HydraVoiceEntity(HydraWorkerPartEntity[HydraVoiceCoordinator]):
    """A setting of the worker's voice services, on the worker's device."""


class HydraPowerEntity(HydraWorkerPartEntity[HydraPowerCoordinator]):
    """The power of all the worker's GPUs together, on the worker's device."""

    @property
    @override
    def available(self) -> bool:
        return super().available and self.coordinator.data.available


class HydraReviewEntity(HydraWorkerPartEntity[HydraQualityCoordinator]):
    """An entity of the worker's image review, on the worker's device."""


class HydraGpuPowerEntity(CoordinatorEntity[HydraPowerCoordinator]):
    """The power of one GPU, on the GPU's device, followed by its UUID."""

    _attr_has_entity_name = True

    def __init__(
        self,
        coordinator: HydraPowerCoordinator,
        status: HydraStatusCoordinator,
        gpu: GpuInfo,
        key: str,
    ) -> None:
        """Attach the entity to the GPU's device (``status`` describes it)."""
        super().__init__(coordinator)
        self.gpu_uuid = gpu.uuid
        self._attr_unique_id = f"{gpu.uuid}_{key}"
        self._attr_device_info = gpu_device_info(status, gpu)

    @property
    def gpu_power(self) -> GpuPower | None:
        """The GPU's power state; None while the worker does not report it."""
        return next((gpu for gpu in self.coordinator.data.gpus if gpu.uuid == self.gpu_uuid), None)

    @property
    @override
    def available(self) -> bool:
        return super().available and self.gpu_power is not None


class HydraContainerEntity(CoordinatorEntity[HydraContainerCoordinator]):
    """An entity of one container, followed by its name (a recreated container has a new id)."""

    _attr_has_entity_name = True

    def __init__(
        self, coordinator: HydraContainerCoordinator, container: ContainerInfo, key: str
    ) -> None:
        """Attach the entity to the container's device."""
        super().__init__(coordinator)
        self.container_name = container.name
        self._seen: tuple[bool, ContainerInfo | None] | None = None
        self._attr_unique_id = (
            f"{container_identifier(coordinator.worker_id, container.name)}_{key}"
        )
        self._attr_device_info = container_device_info(coordinator, container)

    @property
    def container(self) -> ContainerInfo | None:
        """The container as last reported; None while the engine does not list it."""
        return self.coordinator.containers.get(self.container_name)

    @callback
    @override
    def _handle_coordinator_update(self) -> None:
        # Every pushed event updates the coordinator; with dozens of containers, only the
        # entities of the container it was about need writing.
        seen = (self.available, self.container)
        if seen == self._seen:
            return
        self._seen = seen
        super()._handle_coordinator_update()

    @property
    @override
    def available(self) -> bool:
        return (
            super().available
            and self.coordinator.data.engine_available
            and self.container is not None
        )

    async def async_container_action(self, action: str) -> None:
        """Start, stop or restart the container on behalf of whoever asked."""
        try:
            await self.coordinator.client.async_container_action(
                self.container_name, action, await async_actor(self.hass, self._context)
            )
        except HydraError as err:
            raise client_error(self.coordinator, err, self.container_name, action) from err
        if not self.coordinator.pushed:
            await self.coordinator.async_request_refresh()
