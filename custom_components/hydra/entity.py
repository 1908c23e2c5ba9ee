"""Base entities: the worker is a device, each GPU a device connected through it."""

from typing import override

from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from hydra_core.models import GpuInfo

from .const import DOMAIN, MANUFACTURER
from .coordinator import HydraStatusCoordinator

GPU_MANUFACTURER = {"nvml": "NVIDIA", "simulated": "Hydra (simulated)"}


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
        via_device_id=dr.async_get_device_id_by_identifier(
            coordinator.hass,
            (DOMAIN, status.worker.worker_id),
            config_entry_id=coordinator.config_entry.entry_id,
        ),
    )


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
