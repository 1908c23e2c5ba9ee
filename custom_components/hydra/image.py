"""Images: each part's (the generated image waiting longest for review)."""

from homeassistant.const import Platform

from .registry import part_platform

# Each image is one request to the worker.
PARALLEL_UPDATES = 0

async_setup_entry = part_platform(Platform.IMAGE)
