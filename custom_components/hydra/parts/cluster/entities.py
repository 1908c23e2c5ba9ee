"""The cluster's entities: on the worker's device, a "Cluster nodes" sensor (how many nodes are
alive; each node and the routing rules in its attributes); each node a device under the
worker's, with its connectivity (alive in Ray *and* its Hydra worker answering the head: a node
whose worker does not answer gets no tasks), the GPUs and VRAM it offers, the VRAM it has free
and the round trip of the head's last report; each of a node's GPUs a device under the node's,
with the same sensors as a worker's own GPUs, from the head's report.

Nodes and their GPUs are added as they first appear; a node the head no longer lists goes
unavailable, as do its GPUs while it is lost or its worker does not answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, override

from homeassistant.components.binary_sensor import BinarySensorEntity, BinarySensorEntityDescription
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfInformation, UnitOfTime
from homeassistant.core import callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from hydra_core.cluster.models import ClusterNode, ClusterReport
from hydra_core.gpu.models import GpuInfo

from ...const import DOMAIN, MANUFACTURER
from ...data import HydraConfigEntry
from ...entity import HydraEntity, HydraWorkerPartEntity, worker_device_id
from ...gpu_sensors import GPU_SENSORS, HydraGpuSensorDescription
from ...measurement import data_size
from .coordinator import (
    HydraClusterCoordinator,
    node_gpu_identifier,
    node_identifier,
    nodes_by_name,
)

_MIB = 1024**2


def node_attributes(node: ClusterNode) -> dict[str, Any]:
    """What the "Cluster nodes" sensor says of one node."""
    return {
        "node_id": node.node_id,
        "address": node.address,
        "head": node.head,
        "alive": node.alive,
        "gpu_model": node.gpu_model,
        "gpus": node.total.gpus,
        "vram_mb": node.total.vram_mb,
        "vram_free_mb": node.available.vram_mb,
        "labels": list(node.total.labels),
        "worker_up": node.worker_up,
        "latency_ms": node.latency_ms,
        "last_seen": (
            dt_util.utc_from_timestamp(node.last_seen).isoformat() if node.last_seen else None
        ),
    }


class HydraClusterNodesSensor(HydraWorkerPartEntity[HydraClusterCoordinator], SensorEntity):
    """How many nodes of the cluster are alive."""

    # Each node's free VRAM changes at every poll: the history keeps the count, not them.
    _unrecorded_attributes = frozenset({"nodes"})

    @property
    @override
    def native_value(self) -> int:
        return sum(node.alive for node in nodes_by_name(self.coordinator.data).values())

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any]:
        report = self.coordinator.data
        return {
            "mode": report.mode,
            "address": report.address,
            "problem": report.problem,
            "nodes": {name: node_attributes(node) for name, node in nodes_by_name(report).items()},
            # Changed in the entry's options (Cluster routing) or by PUT /cluster/routes.
            "routes": dict(report.routes),
        }


def node_device_info(coordinator: HydraClusterCoordinator, node: ClusterNode) -> DeviceInfo:
    """A node's device, connected through the worker's."""
    return DeviceInfo(
        identifiers={(DOMAIN, node_identifier(coordinator.worker_id, node.name))},
        name=f"{node.name} node",
        manufacturer=MANUFACTURER,
        model=node.gpu_model or "Ray node",
        # DeviceInfo types via_device_id as str; the worker's device is registered at set-up.
        via_device_id=worker_device_id(  # type: ignore[typeddict-item]
            coordinator.hass, coordinator.worker_id, coordinator.config_entry.entry_id
        ),
    )


class HydraNodeEntity(HydraEntity[HydraClusterCoordinator]):
    """An entity of one cluster node, on the node's device, followed by its worker's name."""

    def __init__(
        self,
        coordinator: HydraClusterCoordinator,
        node: ClusterNode,
        description: EntityDescription,
    ) -> None:
        """Attach the entity to the node's device, connected through the worker's."""
        super().__init__(
            coordinator, description, node_identifier(coordinator.worker_id, node.name)
        )
        self.node_name = node.name
        self._attr_device_info = node_device_info(coordinator, node)

    @property
    def node(self) -> ClusterNode | None:
        """The node as last known; None once the head no longer lists it."""
        return self.coordinator.node(self.node_name)

    @property
    @override
    def available(self) -> bool:
        return super().available and self.node is not None


class HydraNodeConnectivity(HydraNodeEntity, BinarySensorEntity):
    """Whether the node is usable: alive in the cluster and its Hydra worker answering."""

    @property
    @override
    def is_on(self) -> bool | None:
        node = self.node
        return None if node is None else node.alive and node.worker_up

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any]:
        node = self.node
        return {} if node is None else {"ray": node.alive, "worker": node.worker_up}


@dataclass(frozen=True, kw_only=True)
class HydraNodeSensorDescription(SensorEntityDescription):
    """A node sensor: how to read it."""

    value_fn: Callable[[ClusterNode], float | None]


class HydraNodeSensor(HydraNodeEntity, SensorEntity):
    """What a live node offers or has free (unavailable while the node is lost: a lost node's
    last figures say nothing of now)."""

    entity_description: HydraNodeSensorDescription

    @property
    @override
    def available(self) -> bool:
        node = self.node
        return super().available and node is not None and node.alive

    @property
    @override
    def native_value(self) -> float | None:
        node = self.node
        return None if node is None else self.entity_description.value_fn(node)


class HydraNodeGpuSensor(HydraEntity[HydraClusterCoordinator], SensorEntity):
    """A sensor of one GPU of a node, on the GPU's device under the node's, as the node's
    worker last reported it to the head."""

    entity_description: HydraGpuSensorDescription

    def __init__(
        self,
        coordinator: HydraClusterCoordinator,
        node: ClusterNode,
        gpu: GpuInfo,
        description: HydraGpuSensorDescription,
    ) -> None:
        """Attach the entity to the GPU's device, connected through the node's."""
        identifier = node_gpu_identifier(coordinator.worker_id, node.name, gpu.uuid)
        super().__init__(coordinator, description, identifier)
        self.node_name = node.name
        self.gpu_uuid = gpu.uuid
        # The node's device may not be registered yet (its entities and its GPUs' can be added
        # in one update): registered here, so that the GPU's device is connected through it.
        node_device = dr.async_get(coordinator.hass).async_get_or_create(
            config_entry_id=coordinator.config_entry.entry_id,
            **node_device_info(coordinator, node),
        )
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, identifier)},
            name=f"{node.name} GPU {gpu.index}",
            model=gpu.name,
            serial_number=gpu.uuid,
            via_device_id=node_device.id,
        )

    @property
    def gpu(self) -> GpuInfo | None:
        """The GPU as its node last reported it; None while the node is lost, its worker
        does not answer, or it no longer reports this GPU."""
        node = self.coordinator.node(self.node_name)
        if node is None or not node.alive or not node.worker_up:
            return None
        return next((gpu for gpu in node.gpus if gpu.uuid == self.gpu_uuid), None)

    @property
    @override
    def available(self) -> bool:
        return super().available and self.gpu is not None

    @property
    @override
    def native_value(self) -> float | int | None:
        gpu = self.gpu
        return None if gpu is None else self.entity_description.value_fn(gpu)


CLUSTER_NODES = SensorEntityDescription(
    key="cluster_nodes",
    translation_key="cluster_nodes",
    state_class=SensorStateClass.MEASUREMENT,
)
NODE_CONNECTIVITY = BinarySensorEntityDescription(
    key="node_connectivity", device_class=BinarySensorDeviceClass.CONNECTIVITY
)
_GIB = UnitOfInformation.GIBIBYTES
NODE_SENSORS: tuple[HydraNodeSensorDescription, ...] = (
    HydraNodeSensorDescription(
        key="node_vram_free",
        translation_key="node_vram_free",
        **data_size(_GIB, 1),
        value_fn=lambda node: node.available.vram_mb * _MIB,
    ),
    HydraNodeSensorDescription(
        key="node_vram_total",
        translation_key="node_vram_total",
        **data_size(_GIB, 1, state_class=None),
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda node: node.total.vram_mb * _MIB,
    ),
    HydraNodeSensorDescription(
        key="node_latency",
        translation_key="node_latency",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda node: node.latency_ms,
    ),
    HydraNodeSensorDescription(
        key="node_gpu_count",
        translation_key="gpu_count",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda node: node.total.gpus,
    ),
)


def _for_each_seen[T](
    entry: HydraConfigEntry,
    cluster: HydraClusterCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
    seen: Callable[[ClusterReport], dict[str, T]],
    make: Callable[[T], Iterable[Entity]],
) -> None:
    """Add ``make(item)``'s entities for each item of ``seen`` (by key) when it is first seen
    (now or later)."""
    known: set[str] = set()

    @callback
    def add_new() -> None:
        new = {key: item for key, item in seen(cluster.data).items() if key not in known}
        if new:
            known.update(new)
            async_add_entities([entity for item in new.values() for entity in make(item)])

    add_new()
    entry.async_on_unload(cluster.async_add_listener(add_new))


def _for_each_node(
    entry: HydraConfigEntry,
    cluster: HydraClusterCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
    make: Callable[[ClusterNode], Iterable[Entity]],
) -> None:
    """Add ``make(node)``'s entities for each node when it is first seen (now or later)."""
    _for_each_seen(entry, cluster, async_add_entities, nodes_by_name, make)


def node_gpus(report: ClusterReport) -> dict[str, tuple[ClusterNode, GpuInfo]]:
    """Each GPU a node reported, by node name and GPU UUID."""
    return {
        f"{name}/{gpu.uuid}": (node, gpu)
        for name, node in nodes_by_name(report).items()
        for gpu in node.gpus
    }


@callback
def async_setup_sensors(
    entry: HydraConfigEntry,
    cluster: HydraClusterCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The "Cluster nodes" sensor, each node's VRAM, GPU count and latency, and each of its
    GPUs' sensors; a worker that joined
    a cluster knows no nodes (its head does), so it has none of them."""
    if cluster.data.mode != "head":
        return
    async_add_entities([HydraClusterNodesSensor(cluster, CLUSTER_NODES)])
    _for_each_node(
        entry,
        cluster,
        async_add_entities,
        lambda node: (HydraNodeSensor(cluster, node, description) for description in NODE_SENSORS),
    )
    _for_each_seen(
        entry,
        cluster,
        async_add_entities,
        node_gpus,
        lambda seen: (
            HydraNodeGpuSensor(cluster, *seen, description)
            for description in GPU_SENSORS
            if description.has_fn(seen[1])
        ),
    )


@callback
def async_setup_binary_sensors(
    entry: HydraConfigEntry,
    cluster: HydraClusterCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Each node's connectivity."""
    _for_each_node(
        entry,
        cluster,
        async_add_entities,
        lambda node: (HydraNodeConnectivity(cluster, node, NODE_CONNECTIVITY),),
    )
