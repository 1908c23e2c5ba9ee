"""The tasks part's entry in the registry."""

from homeassistant.const import Platform

from hydra_core.scheduler.models import EVENT_SCHEDULER, EVENT_TASK

from ...part import Part
from .actions import TASK_ACTIONS
from .coordinator import HydraTaskCoordinator
from .entities import (
    async_setup_numbers,
    async_setup_sensors,
    async_setup_switches,
    async_setup_todo,
)

TASKS = Part(
    coordinator=HydraTaskCoordinator,
    events=frozenset({EVENT_TASK, EVENT_SCHEDULER}),
    platforms={
        Platform.NUMBER: async_setup_numbers,
        Platform.SENSOR: async_setup_sensors,
        Platform.SWITCH: async_setup_switches,
        Platform.TODO: async_setup_todo,
    },
    actions=TASK_ACTIONS,
)
