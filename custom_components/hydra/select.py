"""Selects: each part's choices (speech-to-text model, text-to-speech voice, GPU power
profiles)."""

from homeassistant.const import Platform

from .registry import part_platform

# Each change is one request to the worker.
PARALLEL_UPDATES = 0

async_setup_entry = part_platform(Platform.SELECT)
