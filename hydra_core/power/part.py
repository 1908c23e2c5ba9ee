"""The power part: GPU power profiles set through NVML and re-applied when they drift."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Self

from aiohttp import web

from ..gpu.options import GpuOptions
from ..worker.part import BuildContext, Part
from .manager import SETTINGS_FILE, PowerManager
from .models import EVENT_POWER, PowerSettings
from .options import PowerOptions


class PowerPart(Part):
    """Power profiles per GPU."""

    name = "power"
    options = PowerOptions
    event_types = (EVENT_POWER,)
    disabled_code = "power_disabled"
    disabled_message = "This worker does not manage GPU power"

    @classmethod
    def route_table(cls) -> Iterable[web.AbstractRouteDef]:
        """``/power``."""
        from .routes import routes  # noqa: PLC0415 - the routes look this class up

        return routes

    def __init__(self, manager: PowerManager) -> None:
        self.manager = manager

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

    async def async_start(self) -> None:
        """Apply the kept profiles and start watching for drift."""
        await self.manager.async_start()

    async def async_stop(self) -> None:
        """Stop watching."""
        await self.manager.async_stop()
