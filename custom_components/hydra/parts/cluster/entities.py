"""The cluster's entities: on the worker's device, a "Cluster nodes" sensor (how many nodes are
alive; each node and the routing rules in its attributes); each node a device under the
worker's, with its connectivity, the GPUs and VRAM it offers and the VRAM it has free.

Nodes are added as they first appear; a node the head no longer lists goes unavailable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, override

from homeassistant.components.binary_sensor import BinarySensorEntity, BinarySensorEntityDescription
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.components.sensor import (
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfInformation
from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from hydra_core.cluster.models import ClusterNode

from ...const import DOMAIN, MANUFACTURER
from ...data import HydraConfigEntry
from ...entity import HydraEntity, HydraWorkerPartEntity, worker_device_id
from ...measurement import data_size
from .coordinator import HydraClusterCoordinator, node_identifier, nodes_by_name

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


class HydraNodeEntity(HydraEntity[HydraClusterCoordinator]):
    """An entity of one cluster node, on the node's device, followed by its worker's name."""

    def __init__(
        self,
        coordinator: HydraClusterCoordinator,
        node: ClusterNode,
        description: EntityDescription,
    ) -> None:
        """Attach the entity to the node's device, connected through the worker's."""
        identifier = node_identifier(coordinator.worker_id, node.name)
        super().__init__(coordinator, description, identifier)
        self.node_name = node.name
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, identifier)},
            name=f"{node.name} node",
            manufacturer=MANUFACTURER,
            model=node.gpu_model or "Ray node",
            # DeviceInfo types via_device_id as str; the worker's device is registered at set-up.
            via_device_id=worker_device_id(  # type: ignore[typeddict-item]
                coordinator.hass, coordinator.worker_id, coordinator.config_entry.entry_id
            ),
        )

    @property
    def node(self) -> ClusterNode | None:
        """The node as last known; None once the head no longer lists it."""
        return self.coordinator.node(self.node_name)

    @property
    @override
    def available(self) -> bool:
        return super().available and self.node is not None


class HydraNodeConnectivity(HydraNodeEntity, BinarySensorEntity):
    """Whether the node is alive in the cluster."""

    @property
    @override
    def is_on(self) -> bool | None:
        node = self.node
        return None if node is None else node.alive


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
        key="node_gpu_count",
        translation_key="gpu_count",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda node: node.total.gpus,
    ),
)


def _for_each_node(
    entry: HydraConfigEntry,
    cluster: HydraClusterCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
    make: Callable[[ClusterNode], Iterable[Entity]],
) -> None:
    """Add ``make(node)``'s entities for each node when it is first seen (now or later)."""
    known: set[str] = set()

    @callback
    def add_new() -> None:
        new = [node for name, node in nodes_by_name(cluster.data).items() if name not in known]
        if new:
            known.update(node.name for node in new)
            async_add_entities([entity for node in new for entity in make(node)])

    add_new()
    entry.async_on_unload(cluster.async_add_listener(add_new))


@callback
def async_setup_sensors(
    entry: HydraConfigEntry,
    cluster: HydraClusterCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The "Cluster nodes" sensor, and each node's VRAM and GPU count; a worker that joined
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
