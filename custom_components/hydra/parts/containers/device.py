"""Each container is a device, connected through its worker's, and found again by its name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.helpers.device_registry import DeviceInfo

from hydra_core.containers.models import ContainerInfo

from ...const import DOMAIN
from ...entity import worker_device_id

if TYPE_CHECKING:
    from .coordinator import HydraContainerCoordinator


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
        # DeviceInfo types via_device_id as str, but the device registry takes None as "no via
        # device" (before the worker's device is registered).
        via_device_id=worker_device_id(  # type: ignore[typeddict-item]
            coordinator.hass, coordinator.worker_id, coordinator.config_entry.entry_id
        ),
    )
