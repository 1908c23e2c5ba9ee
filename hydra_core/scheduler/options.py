"""The task queue's options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..options import option


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskOptions:
    """Where outputs go and what maintenance keeps."""

    outputs_dir: Path | None = option(
        None,
        help="where generated outputs go; the maintenance task removes old ones",
        default_text="DATA_DIR/outputs",
    )
    retention_days: float = option(
        30.0, help="how many days the maintenance task keeps outputs", low=0.01, high=36500
    )
    maintenance_paths: tuple[str, ...] = option(
        (), help="comma-separated extra folders whose disk use the maintenance task reports"
    )
