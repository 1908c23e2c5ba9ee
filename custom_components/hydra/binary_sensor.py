"""Binary sensors: each part's (the containers' problems, the engine's connectivity)."""

from homeassistant.const import Platform

from .registry import part_platform

# The coordinator does all the I/O; entities only read its data.
PARALLEL_UPDATES = 0

async_setup_entry = part_platform(Platform.BINARY_SENSOR)
