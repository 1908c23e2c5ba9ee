"""The GPU part: a week of samples of every card, behind the night report."""

from __future__ import annotations

from typing import Self

from ..worker.part import BuildContext, Part
from .history import GpuHistory
from .options import GpuOptions

METRICS_FILE = "metrics.db"


class GpuPart(Part):
    """GPU history; the cards themselves are read by the worker's probe, which every worker has."""

    name = "gpu"
    options = GpuOptions
    disabled_code = "gpu_disabled"
    disabled_message = "This worker does not look at its GPUs"

    def __init__(self, history: GpuHistory) -> None:
        self.history = history

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

    async def async_start(self) -> None:
        """Start sampling."""
        await self.history.async_start()

    async def async_stop(self) -> None:
        """Stop sampling."""
        await self.history.async_stop()

    def capabilities(self) -> tuple[str, ...]:
        """What the night report can say about the GPUs."""
        return ("history",)
