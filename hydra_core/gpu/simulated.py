"""A simulated GPU host for development on machines without an NVIDIA GPU.

Only used when asked for by name (``--gpu-backend simulated``); every device says "Simulated"
in its model name so nobody mistakes it for hardware.

Model servers stood in for in tests and benchmarks (an Ollama, a llama.cpp router) account the
memory their models take with ``allocate`` and ``release``, so a load or an unload moves the
memory the probe reports as it would on a card; ``drift=False`` keeps everything else still.
"""

from __future__ import annotations

import math
import threading
import time

from .base import GpuProbe, PowerLimitError
from .models import GpuInfo, GpuReport

_GIB = 1024**3
_LIMIT_MIN_W = 100.0
_LIMIT_MAX_W = 450.0
_SLOWDOWN_C = 90.0
_LIMIT_DEFAULT_W = 350.0


class SimulatedProbe(GpuProbe):
    """GPUs whose load and temperature drift slowly and repeatably over time."""

    backend = "simulated"

    def __init__(self, count: int = 2, *, drift: bool = True) -> None:
        super().__init__()
        self._count = count
        self._drift = drift
        self._started = time.monotonic()
        self._limits = [_LIMIT_DEFAULT_W] * count
        self._lock = threading.Lock()
        self._allocated: list[dict[str, int]] = [{} for _ in range(count)]

    def read(self) -> GpuReport:
        """Return the simulated GPUs as they are now."""
        elapsed = time.monotonic() - self._started
        with self._lock:
            allocated = [sum(owners.values()) for owners in self._allocated]
        return GpuReport(
            backend=self.backend,
            available=self._count > 0,
            reason=None if self._count else "The simulation has no GPUs",
            driver_version="simulated",
            gpus=tuple(
                _simulated_gpu(
                    index,
                    elapsed if self._drift else None,
                    self._limits[index],
                    allocated[index],
                )
                for index in range(self._count)
            ),
        )

    def allocate(self, index: int, owner: str, size: int) -> None:
        """Hold ``size`` bytes of GPU ``index`` for ``owner`` (replacing what it held)."""
        with self._lock:
            self._allocated[index][owner] = size

    def release(self, index: int, owner: str) -> int:
        """Give back what ``owner`` held on GPU ``index``; the bytes released."""
        with self._lock:
            return self._allocated[index].pop(owner, 0)

    def allocated(self, index: int) -> dict[str, int]:
        """What each owner holds on GPU ``index``."""
        with self._lock:
            return dict(self._allocated[index])

    def set_power_limit(self, index: int, uuid: str, watts: float) -> None:
        """Keep the limit, within the simulated card's range, as a driver would."""
        if not 0 <= index < self._count or _uuid(index) != uuid:
            raise PowerLimitError("failed", f"There is no simulated GPU {index} ({uuid})")
        if not _LIMIT_MIN_W <= watts <= _LIMIT_MAX_W:
            raise PowerLimitError(
                "out_of_range", f"GPU {index} refused a power limit of {watts:g} W as out of range"
            )
        self._limits[index] = watts


def _uuid(index: int) -> str:
    return f"GPU-51a1a7ed-0000-4000-8000-{index:012d}"


def _simulated_gpu(index: int, elapsed: float | None, limit: float, allocated: int) -> GpuInfo:
    """One card; ``elapsed`` None is a still card: idle, only the allocations in its memory."""
    total = 24 * _GIB
    if elapsed is None:
        load = 0.0
        used = min(allocated, total)
    else:
        phase = elapsed / 60.0 + index * 1.7
        load = 50.0 + 45.0 * math.sin(phase)
        used = min(int(total * (0.15 + 0.6 * (load / 100.0))) + allocated, total)
    return GpuInfo(
        index=index,
        uuid=_uuid(index),
        name=f"Simulated GPU {index} (24 GB)",
        utilization_percent=round(load, 1),
        memory_utilization_percent=round(load * 0.8, 1),
        memory_total_bytes=total,
        memory_used_bytes=used,
        memory_free_bytes=total - used,
        temperature_c=round(35.0 + 0.45 * load, 1),
        power_draw_w=round(30.0 + (limit - 30.0) * load / 100.0, 1),
        power_limit_w=limit,
        power_limit_min_w=_LIMIT_MIN_W,
        power_limit_max_w=_LIMIT_MAX_W,
        power_limit_default_w=_LIMIT_DEFAULT_W,
        fan_percent=round(30.0 + 0.6 * load, 1),
        slowdown_temperature_c=_SLOWDOWN_C,
    )
