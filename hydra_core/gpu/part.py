"""The GPU part: a week of samples of every card, behind the night report."""

from __future__ import annotations

from typing import Self

from ..worker.part import BuildContext, RunningPart
from .history import GpuHistory
from .options import GpuOptions

METRICS_FILE = "metrics.db"


class GpuPart(RunningPart[GpuHistory]):
    """GPU history; the cards themselves are read by the worker's probe, which every worker has."""

    name = "gpu"
    options = GpuOptions
    disabled_code = "gpu_disabled"
    disabled_message = "This worker does not look at its GPUs"

    @classmethod
    def build(cls, context: BuildContext) -> Self | None:
        """Off when the GPU backend is none."""
        options = context.options(GpuOptions)
        if options.gpu_backend == "none":
            return None
        return cls(
            GpuHistory(
                context.data_dir / METRICS_FILE, context.probe, interval_s=options.metrics_interval
            )
        )

    def capabilities(self) -> tuple[str, ...]:
        """What the night report can say about the GPUs."""
        return ("history",)
