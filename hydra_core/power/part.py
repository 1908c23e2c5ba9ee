"""The power part: GPU power profiles set through NVML and re-applied when they drift."""

from __future__ import annotations

from typing import Self

from ..gpu.options import GpuOptions
from ..worker.part import BuildContext, RunningPart
from .manager import SETTINGS_FILE, PowerManager
from .models import EVENT_POWER, PowerSettings
from .options import PowerOptions


class PowerPart(RunningPart[PowerManager]):
    """Power profiles per GPU."""

    name = "power"
    options = PowerOptions
    event_types = (EVENT_POWER,)
    disabled_code = "power_disabled"
    disabled_message = "This worker does not manage GPU power"
    route_modules = ("routes",)  # ``/power``

    @classmethod
    def build(cls, context: BuildContext) -> Self | None:
        """Off when the GPU backend is none."""
        if context.options(GpuOptions).gpu_backend == "none":
            return None
        options = context.options(PowerOptions)
        return cls(
            PowerManager(
                context.probe,
                path=context.data_dir / SETTINGS_FILE,
                settings=PowerSettings(
                    eco_percent=options.power_eco_percent,
                    balanced_percent=options.power_balanced_percent,
                ),
                bus=context.bus,
                interval_s=options.power_interval,
            )
        )
