"""GPU probe over NVML (the ``pynvml`` module of ``nvidia-ml-py``)."""

from __future__ import annotations

from collections.abc import Callable
import importlib
import logging
from types import ModuleType
from typing import Any, TypeVar

from .base import GpuProbe, PowerLimitError
from .models import GpuInfo, GpuReport

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

# NVML reports power in milliwatts.
_MW_PER_W = 1000.0


class _GpuLostError(Exception):
    """The GPU fell off the bus (or was reset) while it was being read."""


class NvmlProbe(GpuProbe):
    """Reads GPUs through NVML, initialised once for the life of the worker.

    ``nvml`` is the ``pynvml`` module; tests pass a fake with the same functions.
    """

    backend = "nvml"

    def __init__(self, nvml: ModuleType | None = None) -> None:
        super().__init__()
        self._nvml = nvml
        self._ready = False
        self._reason: str | None = "NVML has not been initialised"
        self._driver_version: str | None = None
        self._unsupported: set[tuple[str, str]] = set()

    def start(self) -> None:
        """Load the library and initialise NVML; remember why if that fails."""
        if self._nvml is None:
            try:
                self._nvml = importlib.import_module("pynvml")
            except ImportError:
                self._reason = "nvidia-ml-py is not installed (install hydra-homelab[worker])"
                _LOGGER.warning("GPU monitoring unavailable: %s", self._reason)
                return
        nvml = self._nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as err:
            self._reason = _init_failure_reason(nvml, err)
            _LOGGER.warning("GPU monitoring unavailable: %s", self._reason)
            return
        self._ready = True
        self._reason = None
        try:
            self._driver_version = _text(nvml.nvmlSystemGetDriverVersion())
        except nvml.NVMLError:
            self._driver_version = None
        _LOGGER.info("NVML initialised, driver %s", self._driver_version or "unknown")

    def close(self) -> None:
        """Shut NVML down if it was initialised."""
        if self._ready and self._nvml is not None:
            self._ready = False
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError as err:
                _LOGGER.debug("nvmlShutdown failed: %s", err)

    def read(self) -> GpuReport:
        """Read every GPU; a GPU that cannot be read is left out, a value it lacks is None."""
        if not self._ready or self._nvml is None:
            return self._report(reason=self._reason)
        nvml = self._nvml
        try:
            count = nvml.nvmlDeviceGetCount()
        except nvml.NVMLError as err:
            return self._report(reason=f"NVML could not count GPUs: {err}")
        if count == 0:
            return self._report(reason="NVML found no NVIDIA GPU")
        gpus = []
        for index in range(count):
            try:
                gpus.append(self._read_gpu(index))
            except (nvml.NVMLError, _GpuLostError) as err:
                _LOGGER.warning("GPU %d could not be read and is left out: %s", index, err)
        if not gpus:
            return self._report(reason=f"None of the {count} GPUs NVML lists could be read")
        return self._report(gpus=tuple(gpus))

    def _report(self, *, reason: str | None = None, gpus: tuple[GpuInfo, ...] = ()) -> GpuReport:
        return GpuReport(
            backend=self.backend,
            available=bool(gpus),
            reason=reason,
            driver_version=self._driver_version,
            gpus=gpus,
        )

    def _read_gpu(self, index: int) -> GpuInfo:
        nvml = self._nvml
        assert nvml is not None
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        uuid = _text(nvml.nvmlDeviceGetUUID(handle))
        name = _text(nvml.nvmlDeviceGetName(handle))

        def value(getter: str, *args: Any) -> Any:
            return self._optional(uuid, getter, handle, *args)

        utilization = value("nvmlDeviceGetUtilizationRates")
        memory = value("nvmlDeviceGetMemoryInfo")
        constraints = value("nvmlDeviceGetPowerManagementLimitConstraints")
        return GpuInfo(
            index=index,
            uuid=uuid,
            name=name,
            utilization_percent=_attr(utilization, "gpu", float),
            memory_utilization_percent=_attr(utilization, "memory", float),
            memory_total_bytes=_attr(memory, "total", int),
            memory_used_bytes=_attr(memory, "used", int),
            memory_free_bytes=_attr(memory, "free", int),
            temperature_c=_number(value("nvmlDeviceGetTemperature", nvml.NVML_TEMPERATURE_GPU)),
            power_draw_w=_watts(value("nvmlDeviceGetPowerUsage")),
            power_limit_w=_watts(value("nvmlDeviceGetEnforcedPowerLimit")),
            power_limit_min_w=_watts(constraints[0] if constraints else None),
            power_limit_max_w=_watts(constraints[1] if constraints else None),
            power_limit_default_w=_watts(value("nvmlDeviceGetPowerManagementDefaultLimit")),
            fan_percent=_number(value("nvmlDeviceGetFanSpeed")),
            slowdown_temperature_c=_number(
                value(
                    "nvmlDeviceGetTemperatureThreshold",
                    nvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN,
                )
            ),
        )

    def set_power_limit(self, index: int, uuid: str, watts: float) -> None:
        """Set the GPU's power management limit; NVML wants root (in a container: SYS_ADMIN)."""
        if not self._ready or self._nvml is None:
            raise PowerLimitError("not_supported", self._reason or "NVML is not initialised")
        nvml = self._nvml
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            if _text(nvml.nvmlDeviceGetUUID(handle)) != uuid:
                raise PowerLimitError("failed", f"GPU {index} is no longer {uuid}")
            nvml.nvmlDeviceSetPowerManagementLimit(handle, round(watts * _MW_PER_W))
        except nvml.NVMLError as err:
            raise _power_limit_error(nvml, err, index, watts) from err

    def _optional(self, uuid: str, getter: str, *args: Any) -> Any:
        """Call one NVML getter; a value the card does not offer becomes None."""
        nvml = self._nvml
        assert nvml is not None
        function: Callable[..., Any] = getattr(nvml, getter)
        try:
            return function(*args)
        except nvml.NVMLError as err:
            if err.value == nvml.NVML_ERROR_GPU_IS_LOST:
                raise _GpuLostError(str(err)) from err
            if (uuid, getter) not in self._unsupported:
                self._unsupported.add((uuid, getter))
                _LOGGER.debug("%s on %s: %s; reporting no value", getter, uuid, err)
            return None


def _init_failure_reason(nvml: ModuleType, err: Exception) -> str:
    reasons = {
        nvml.NVML_ERROR_LIBRARY_NOT_FOUND: "No NVIDIA driver found (libnvidia-ml is missing)",
        nvml.NVML_ERROR_DRIVER_NOT_LOADED: "The NVIDIA driver is not loaded",
        nvml.NVML_ERROR_NO_PERMISSION: "No permission to talk to the NVIDIA driver",
        nvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH: (
            "The NVIDIA driver and library versions differ; reboot after a driver update"
        ),
    }
    return reasons.get(getattr(err, "value", None), f"NVML failed to initialise: {err}")


def _power_limit_error(
    nvml: ModuleType, err: Exception, index: int, watts: float
) -> PowerLimitError:
    code = getattr(err, "value", None)
    if code == nvml.NVML_ERROR_NO_PERMISSION:
        return PowerLimitError(
            "not_permitted",
            f"Not permitted to change the power limit of GPU {index}: run the worker as root, or"
            " give its container the SYS_ADMIN capability (the Hydra add-on: full access,"
            " protection mode off)",
        )
    if code == nvml.NVML_ERROR_NOT_SUPPORTED:
        return PowerLimitError(
            "not_supported", f"GPU {index} does not support changing its power limit"
        )
    if code == nvml.NVML_ERROR_INVALID_ARGUMENT:
        return PowerLimitError(
            "out_of_range", f"GPU {index} refused a power limit of {watts:g} W as out of range"
        )
    return PowerLimitError("failed", f"Setting the power limit of GPU {index} failed: {err}")


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _attr(source: Any, name: str, kind: Callable[[Any], _T]) -> _T | None:
    return None if source is None else kind(getattr(source, name))


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _watts(milliwatts: Any) -> float | None:
    return None if milliwatts is None else milliwatts / _MW_PER_W
