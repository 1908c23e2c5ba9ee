"""GPU probes: NVML on a real host, a clearly named simulation for development."""

from .base import GpuProbe, NoGpuProbe
from .nvml import NvmlProbe
from .simulated import SimulatedProbe

BACKENDS = ("nvml", "simulated", "none")


def create_probe(backend: str, *, simulated_count: int = 2) -> GpuProbe:
    """Return the probe for a backend name given on the command line or in options."""
    if backend == "nvml":
        return NvmlProbe()
    if backend == "simulated":
        return SimulatedProbe(count=simulated_count)
    if backend == "none":
        return NoGpuProbe()
    raise ValueError(f"Unknown GPU backend {backend!r}; choose one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "GpuProbe", "NoGpuProbe", "NvmlProbe", "SimulatedProbe", "create_probe"]
