"""The forecasts part's options."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import option


@dataclass(frozen=True, slots=True, kw_only=True)
class ForecastOptions:
    """How often the disks are sampled, how far ahead to look, and what a prune may remove."""

    forecasts: bool = option(
        True,
        help="sample the disks and forecast trouble (disks filling, GPUs heating up, containers"
        " failing more often); the watched folders are the data dir, the outputs folder and"
        " maintenance_paths",
        addon=True,
    )
    disk_interval: float = option(
        300.0, help="seconds between disk samples (kept eight days)", low=10, high=86400
    )
    forecast_horizon_days: float = option(
        14.0,
        help="how many days ahead a predicted problem is reported (and raised in Home Assistant)",
        low=1,
        high=365,
        addon=True,
    )
    prune_budget_gb: float = option(
        20.0, help="at most this many GB removed by one prune", low=0, high=100000
    )
    audit_retention_days: float = option(
        90.0,
        help="a prune moves audit entries older than this into a gzip archive in DATA_DIR/archive",
        low=1,
        high=36500,
    )
