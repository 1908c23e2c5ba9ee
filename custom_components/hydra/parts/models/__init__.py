"""The models part: the worker's VRAM arbiter in Home Assistant."""
