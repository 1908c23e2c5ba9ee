"""The containers part's entry in the registry."""

from homeassistant.const import Platform

from hydra_core.containers.models import (
    EVENT_CONTAINER,
    EVENT_CONTAINER_REMOVED,
    EVENT_ENGINE,
    EVENT_HEAL_EXHAUSTED,
    EVENT_HEALING,
)
from hydra_core.models import EVENT_AUDIT

from ...part import Part
from .coordinator import HydraContainerCoordinator
from .entities import (
    async_setup_binary_sensors,
    async_setup_buttons,
    async_setup_sensors,
    async_setup_switches,
)
from .tracker import async_remove_store

CONTAINERS = Part(
    coordinator=HydraContainerCoordinator,
    events=frozenset(
        {
            EVENT_CONTAINER,
            EVENT_CONTAINER_REMOVED,
            EVENT_ENGINE,
            EVENT_HEALING,
            EVENT_AUDIT,
            EVENT_HEAL_EXHAUSTED,
        }
    ),
    platforms={
        Platform.BINARY_SENSOR: async_setup_binary_sensors,
        Platform.BUTTON: async_setup_buttons,
        Platform.SENSOR: async_setup_sensors,
        Platform.SWITCH: async_setup_switches,
    },
    async_remove_entry=async_remove_store,
)
