"""To-do lists: each part's (the worker's task queue)."""

from homeassistant.const import Platform

from .registry import part_platform

# Each change is one request to the worker.
PARALLEL_UPDATES = 0

async_setup_entry = part_platform(Platform.TODO)
