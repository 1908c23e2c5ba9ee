"""A stand-in for the ``pynvml`` module (nvidia-ml-py) on machines without an NVIDIA GPU.

It keeps the real module's shapes: the same function names and arguments, milliwatts for power,
bytes for memory, a utilization struct with ``gpu``/``memory``, and the real ``NVMLError``
classes and ``NVML_*`` constants imported from pynvml itself, so the probe cannot tell it apart
from the library on a GPU host. Tests change the GPUs while it runs (add, lose, unsupported
getters, permission to set power limits, a GPU reset).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml
from pynvml import (
    NVML_ERROR_GPU_IS_LOST,
    NVML_ERROR_INVALID_ARGUMENT,
    NVML_ERROR_NO_PERMISSION,
    NVML_ERROR_NOT_SUPPORTED,
    NVML_ERROR_UNINITIALIZED,
    NVML_TEMPERATURE_GPU,
    NVML_TEMPERATURE_THRESHOLD_SLOWDOWN,
    NVMLError,
)

from hydra_core.gpu.models import GpuInfo

GIB = 1024**3


@dataclass
class FakeGpu:
    """One card's readings in NVML's units."""

    name: str = "NVIDIA GeForce RTX 4090"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    gpu_util: int = 37
    mem_util: int = 12
    memory_total: int = 24 * GIB
    memory_used: int = 6 * GIB
    temperature: int = 61
    power_mw: int = 187_500
    limit_mw: int = 450_000
    limit_min_mw: int = 150_000
    limit_max_mw: int = 600_000
    default_limit_mw: int = 450_000
    fan: int = 45
    slowdown: int = 87
    # Function names that fail with NVML_ERROR_NOT_SUPPORTED (e.g. the fan on datacenter cards).
    unsupported: set[str] = field(default_factory=set)
    lost: bool = False


def make_gpu(index: int, **changes: Any) -> FakeGpu:
    """A distinct card per index."""
    return FakeGpu(uuid=f"GPU-{index:08x}-1111-2222-3333-444455556666", **changes)


def reading(index: int) -> GpuInfo:
    """What the probe must report for ``make_gpu(index)``, in the API's units."""
    return GpuInfo(
        index=index,
        uuid=make_gpu(index).uuid,
        name="NVIDIA GeForce RTX 4090",
        utilization_percent=37.0,
        memory_utilization_percent=12.0,
        memory_total_bytes=24 * GIB,
        memory_used_bytes=6 * GIB,
        memory_free_bytes=18 * GIB,
        temperature_c=61.0,
        power_draw_w=187.5,
        power_limit_w=450.0,
        power_limit_min_w=150.0,
        power_limit_max_w=600.0,
        power_limit_default_w=450.0,
        fan_percent=45.0,
        slowdown_temperature_c=87.0,
    )


class FakeNvml(SimpleNamespace):
    """Module-like: pass it where the probe expects ``pynvml``."""

    def __init__(
        self,
        gpus: list[FakeGpu] | None = None,
        *,
        init_error: int | None = None,
        root: bool = True,
    ) -> None:
        super().__init__()
        # The real module's constants and error classes.
        for name in dir(pynvml):
            if name.startswith(("NVML_", "NVMLError")):
                setattr(self, name, getattr(pynvml, name))
        self.gpus = list(gpus or [])
        self.init_error = init_error
        # Setting a power limit needs root (SYS_ADMIN in a container); NO_PERMISSION otherwise.
        self.root = root
        self.set_limit_calls = 0
        self.initialised = False
        self.init_calls = 0
        self.calls = 0
        self.driver_version = "570.86.15"

    # Library lifetime
    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self._check()
        self.initialised = False

    def nvmlSystemGetDriverVersion(self) -> str:
        self._check()
        return self.driver_version

    def nvmlDeviceGetCount(self) -> int:
        self._check()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        self._check()
        if not 0 <= index < len(self.gpus):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        gpu = self.gpus[index]
        if gpu.lost:
            raise NVMLError(NVML_ERROR_GPU_IS_LOST)
        return gpu

    # Per-device getters
    def nvmlDeviceGetName(self, handle: FakeGpu) -> str:
        return self._get(handle, "nvmlDeviceGetName", lambda: handle.name)

    def nvmlDeviceGetUUID(self, handle: FakeGpu) -> str:
        return self._get(handle, "nvmlDeviceGetUUID", lambda: handle.uuid)

    def nvmlDeviceGetUtilizationRates(self, handle: FakeGpu) -> SimpleNamespace:
        return self._get(
            handle,
            "nvmlDeviceGetUtilizationRates",
            lambda: SimpleNamespace(gpu=handle.gpu_util, memory=handle.mem_util),
        )

    def nvmlDeviceGetMemoryInfo(self, handle: FakeGpu) -> SimpleNamespace:
        return self._get(
            handle,
            "nvmlDeviceGetMemoryInfo",
            lambda: SimpleNamespace(
                total=handle.memory_total,
                used=handle.memory_used,
                free=handle.memory_total - handle.memory_used,
            ),
        )

    def nvmlDeviceGetTemperature(self, handle: FakeGpu, sensor: int) -> int:
        if sensor != NVML_TEMPERATURE_GPU:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return self._get(handle, "nvmlDeviceGetTemperature", lambda: handle.temperature)

    def nvmlDeviceGetTemperatureThreshold(self, handle: FakeGpu, threshold: int) -> int:
        if threshold != NVML_TEMPERATURE_THRESHOLD_SLOWDOWN:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return self._get(handle, "nvmlDeviceGetTemperatureThreshold", lambda: handle.slowdown)

    def nvmlDeviceGetPowerUsage(self, handle: FakeGpu) -> int:
        return self._get(handle, "nvmlDeviceGetPowerUsage", lambda: handle.power_mw)

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: FakeGpu) -> int:
        return self._get(handle, "nvmlDeviceGetEnforcedPowerLimit", lambda: handle.limit_mw)

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle: FakeGpu) -> list[int]:
        return self._get(
            handle,
            "nvmlDeviceGetPowerManagementLimitConstraints",
            lambda: [handle.limit_min_mw, handle.limit_max_mw],
        )

    def nvmlDeviceGetPowerManagementDefaultLimit(self, handle: FakeGpu) -> int:
        return self._get(
            handle, "nvmlDeviceGetPowerManagementDefaultLimit", lambda: handle.default_limit_mw
        )

    def nvmlDeviceGetFanSpeed(self, handle: FakeGpu) -> int:
        return self._get(handle, "nvmlDeviceGetFanSpeed", lambda: handle.fan)

    # Per-device setters
    def nvmlDeviceSetPowerManagementLimit(self, handle: FakeGpu, limit: int) -> None:
        self._get(handle, "nvmlDeviceSetPowerManagementLimit", lambda: None)
        self.set_limit_calls += 1
        if not self.root:
            raise NVMLError(NVML_ERROR_NO_PERMISSION)
        if not handle.limit_min_mw <= limit <= handle.limit_max_mw:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        handle.limit_mw = limit

    # What happens to the cards outside the worker
    def reset_gpu(self, index: int) -> None:
        """A GPU reset (or driver reload): the card is back on its default power limit."""
        gpu = self.gpus[index]
        gpu.limit_mw = gpu.default_limit_mw

    def _check(self) -> None:
        self.calls += 1
        if not self.initialised:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)

    def _get(self, handle: FakeGpu, getter: str, read: Any) -> Any:
        self._check()
        if handle.lost:
            raise NVMLError(NVML_ERROR_GPU_IS_LOST)
        if getter in handle.unsupported:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return read()
