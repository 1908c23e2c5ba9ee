"""The cluster part's entry in the registry."""

from homeassistant.const import Platform

from hydra_core.cluster.models import EVENT_CLUSTER, EVENT_CLUSTER_ROUTES

from ...part import Part
from .coordinator import HydraClusterCoordinator
from .entities import async_setup_binary_sensors, async_setup_sensors

CLUSTER = Part(
    coordinator=HydraClusterCoordinator,
    events=frozenset({EVENT_CLUSTER, EVENT_CLUSTER_ROUTES}),
    platforms={
        Platform.SENSOR: async_setup_sensors,
        Platform.BINARY_SENSOR: async_setup_binary_sensors,
    },
)
