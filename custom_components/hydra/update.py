"""Updates: the speech models the worker downloads, shown while they come in."""

from homeassistant.const import Platform

from .registry import part_platform

# The coordinator does all the I/O; entities only read its data.
PARALLEL_UPDATES = 0

async_setup_entry = part_platform(Platform.UPDATE)
