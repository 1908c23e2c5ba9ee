"""The task queue's options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..options import option
from .maintenance import OUTPUTS_FOLDER, check_outputs_dir

if TYPE_CHECKING:
    from ..worker.config import WorkerConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskOptions:
    """Where outputs go and what maintenance keeps."""

    outputs_dir: Path | None = option(
        None,
        help=(
            "where generated outputs go; the maintenance task removes old ones (not the data"
            " dir or the models folder, nor inside them but DATA_DIR/outputs)"
        ),
        default_text="DATA_DIR/outputs",
    )
    retention_days: float = option(
        30.0, help="how many days the maintenance task keeps outputs", low=1, high=36500
    )
    retry_backoff: float = option(
        30.0,
        help="seconds before a failed task is tried again; doubled at each further failure (up"
        " to an hour), with jitter",
        low=0.1,
        high=3600,
    )
    maintenance_paths: tuple[str, ...] = option(
        (), help="comma-separated extra folders whose disk use the maintenance task reports"
    )

    def check(self, config: WorkerConfig) -> None:
        """The clean-up may not reach the worker's state or its models."""
        core = config.core
        check_outputs_dir(
            self.outputs_dir or core.data_dir / OUTPUTS_FOLDER,
            data_dir=core.data_dir,
            models_dir=core.models_folder,
        )
