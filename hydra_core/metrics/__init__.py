"""Prometheus metrics of the worker: ``GET /api/v1/metrics`` (see ``collector.py``)."""
