"""Switches: each part's (containers running, self-healing, autonomous work)."""

from homeassistant.const import Platform

from .registry import part_platform

# Each change is one request to the worker; the worker serialises what the engine cannot.
PARALLEL_UPDATES = 0

async_setup_entry = part_platform(Platform.SWITCH)
