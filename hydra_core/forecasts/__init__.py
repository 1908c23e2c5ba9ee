"""Disk management and predictive maintenance: disk use and growth, forecasts from the
histories the worker keeps, and the prune."""
