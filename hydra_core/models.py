"""Data that crosses the worker API, shared by the worker and its client.

The worker builds these objects and serialises them with ``as_dict``; the client parses the JSON
back with ``from_dict``. Both sides use the same classes so the wire format is defined once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Self

API_VERSION = "v1"


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuInfo:
    """One GPU as NVML reports it. A value the card cannot report is None."""

    index: int
    uuid: str
    name: str
    utilization_percent: float | None = None
    memory_utilization_percent: float | None = None
    memory_total_bytes: int | None = None
    memory_used_bytes: int | None = None
    memory_free_bytes: int | None = None
    temperature_c: float | None = None
    power_draw_w: float | None = None
    power_limit_w: float | None = None
    power_limit_min_w: float | None = None
    power_limit_max_w: float | None = None
    power_limit_default_w: float | None = None
    fan_percent: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form, ignoring fields a newer worker may add."""
        return cls(**{key: data[key] for key in _GPU_FIELDS if key in data})


_GPU_FIELDS = tuple(GpuInfo.__dataclass_fields__)


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuReport:
    """All GPUs of a host, or why there are none."""

    backend: str
    available: bool
    reason: str | None = None
    driver_version: str | None = None
    gpus: tuple[GpuInfo, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "backend": self.backend,
            "available": self.available,
            "reason": self.reason,
            "driver_version": self.driver_version,
            "gpus": [gpu.as_dict() for gpu in self.gpus],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form."""
        return cls(
            backend=data["backend"],
            available=data["available"],
            reason=data.get("reason"),
            driver_version=data.get("driver_version"),
            gpus=tuple(GpuInfo.from_dict(gpu) for gpu in data.get("gpus", ())),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class HostInfo:
    """Facts about the machine the worker runs on."""

    hostname: str
    os: str
    kernel: str
    python: str
    cpu_count: int
    memory_total_bytes: int | None = None
    memory_available_bytes: int | None = None
    load_average: tuple[float, float, float] | None = None
    boot_time: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form."""
        load = data.get("load_average")
        return cls(
            **{key: data[key] for key in _HOST_FIELDS if key in data},
            load_average=tuple(load) if load is not None else None,
        )


_HOST_FIELDS = tuple(key for key in HostInfo.__dataclass_fields__ if key != "load_average")


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerInfo:
    """Who the worker is: what ``/api/v1/health`` answers without a token."""

    worker_id: str
    name: str
    version: str
    api_version: str = API_VERSION

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form."""
        return cls(
            worker_id=data["worker_id"],
            name=data["name"],
            version=data["version"],
            api_version=data.get("api_version", API_VERSION),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerStatus:
    """Everything ``/api/v1/status`` reports: the worker, its host and its GPUs."""

    worker: WorkerInfo
    started_at: float
    host: HostInfo
    gpu: GpuReport = field(default_factory=lambda: GpuReport(backend="none", available=False))

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "worker": self.worker.as_dict(),
            "started_at": self.started_at,
            "host": self.host.as_dict(),
            "gpu": self.gpu.as_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Parse the JSON form."""
        return cls(
            worker=WorkerInfo.from_dict(data["worker"]),
            started_at=data["started_at"],
            host=HostInfo.from_dict(data["host"]),
            gpu=GpuReport.from_dict(data["gpu"]),
        )

    def gpu_by_uuid(self) -> dict[str, GpuInfo]:
        """Return the GPUs keyed by their NVML UUID, which survives reboots and re-indexing."""
        return {gpu.uuid: gpu for gpu in self.gpu.gpus}
