"""The quality part's entry in the registry."""

from homeassistant.const import Platform

from hydra_core.quality.models import EVENT_ASSET, EVENT_QUALITY

from ...part import Part
from .coordinator import HydraQualityCoordinator
from .entities import async_setup_buttons, async_setup_images, async_setup_sensors
from .review import PHONE_ACTIONS, REVIEW_ACTIONS, async_setup_review

QUALITY = Part(
    coordinator=HydraQualityCoordinator,
    events=frozenset({EVENT_ASSET, EVENT_QUALITY}),
    platforms={
        Platform.BUTTON: async_setup_buttons,
        Platform.IMAGE: async_setup_images,
        Platform.SENSOR: async_setup_sensors,
    },
    actions=REVIEW_ACTIONS,
    setup=async_setup_review,
    phone_actions=PHONE_ACTIONS,
)
