"""The GPU options: which backend reads the cards, and how often they are sampled."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import option
from . import BACKENDS


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuOptions:
    """How the worker reads its GPUs."""

    gpu_backend: str = option(
        "nvml",
        help="nvml (real GPUs), simulated (development), none (no GPU monitoring)",
        choices=BACKENDS,
        addon=True,
    )
    simulated_gpus: int = option(
        2, help="how many GPUs the simulated backend shows", low=0, high=64, addon=True
    )
    metrics_interval: float = option(
        30.0,
        help="seconds between the GPU samples kept for the night report, a week's worth",
        low=1,
        high=3600,
    )
