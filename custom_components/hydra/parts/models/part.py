"""The models part's entry in the registry."""

from homeassistant.const import Platform

from hydra_core.arbiter.models import EVENT_MODEL

from ...part import Part
from .actions import MODELS_ACTIONS
from .coordinator import HydraModelsCoordinator
from .entities import async_setup_buttons, async_setup_selects, async_setup_sensors

MODELS = Part(
    coordinator=HydraModelsCoordinator,
    events=frozenset({EVENT_MODEL}),
    platforms={
        Platform.SENSOR: async_setup_sensors,
        Platform.SELECT: async_setup_selects,
        Platform.BUTTON: async_setup_buttons,
    },
    actions=MODELS_ACTIONS,
)
