"""Numbers: each part's settings (the task queue's resource gate and concurrency, the wake word
threshold)."""

from homeassistant.const import Platform

from .registry import part_platform

# Each change is one request to the worker.
PARALLEL_UPDATES = 0

async_setup_entry = part_platform(Platform.NUMBER)
