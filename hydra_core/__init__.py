"""Hydra core: the worker, its API client and the models they share (no Home Assistant imports)."""

__version__ = "0.1.0"
