"""The creative part's entry in the registry."""

from homeassistant.const import Platform

from hydra_core.creative.models import EVENT_CHAPTER

from ...part import Part
from .actions import CHAPTER_ACTIONS
from .coordinator import HydraCreativeCoordinator
from .entities import async_setup_sensors

CREATIVE = Part(
    coordinator=HydraCreativeCoordinator,
    events=frozenset({EVENT_CHAPTER}),
    platforms={Platform.SENSOR: async_setup_sensors},
    actions=CHAPTER_ACTIONS,
)
