"""The forecasts part: disk use and growth, predicted problems, and the prune."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Self

from ..containers.part import ContainersPart
from ..containers.policy import ProtectionPolicy
from ..gpu.part import GpuPart
from ..scheduler.options import TaskOptions
from ..scheduler.part import outputs_dir
from ..worker.part import BuildContext, RunningPart
from .models import EVENT_FORECASTS
from .options import ForecastOptions
from .prune import PruneHandler, Pruner
from .service import ForecastService
from .store import ForecastStore

if TYPE_CHECKING:
    from ..scheduler.handlers import TaskHandler

FORECASTS_FILE = "forecasts.db"
_GB = 10**9


class ForecastsPart(RunningPart[ForecastService]):
    """Watches the disks, the GPUs' and containers' histories, and prunes on request."""

    name = "forecasts"
    options = ForecastOptions
    event_types = (EVENT_FORECASTS,)
    disabled_code = "forecasts_disabled"
    disabled_message = "Forecasts and disk management are off on this worker (forecasts=false)"
    route_modules = ("routes",)  # ``/disk``, ``/forecasts`` and ``/prune``

    def __init__(self, service: ForecastService, pruner: Pruner) -> None:
        super().__init__(service)
        self.pruner = pruner

    @classmethod
    def build(cls, context: BuildContext) -> Self | None:
        """Off when the option says so; uses the engine and the GPU samples where the worker
        has them."""
        options = context.options(ForecastOptions)
        if not options.forecasts:
            return None
        containers = next(
            (part for part in context.built if isinstance(part, ContainersPart)), None
        )
        gpu = next((part for part in context.built if isinstance(part, GpuPart)), None)
        engine = containers.service.engine if containers is not None else None
        tasks = context.options(TaskOptions)
        paths = [
            context.data_dir,
            outputs_dir(context),
            *(Path(path) for path in tasks.maintenance_paths),
        ]
        service = ForecastService(
            ForecastStore(context.data_dir / FORECASTS_FILE),
            paths=paths,
            bus=context.bus,
            probe=context.probe,
            engine=engine,
            gpu_history=gpu.service if gpu is not None else None,
            interval_s=options.disk_interval,
            horizon_days=options.forecast_horizon_days,
        )
        pruner = Pruner(
            data_dir=context.data_dir,
            audit=context.audit,
            engine=engine,
            policy=containers.service.policy if containers is not None else ProtectionPolicy(),
            budget_bytes=round(options.prune_budget_gb * _GB),
            audit_retention_days=options.audit_retention_days,
        )
        return cls(service, pruner)

    def capabilities(self) -> tuple[str, ...]:
        """What this worker forecasts and prunes."""
        found = ["disk", "forecasts", "prune"]
        if self.pruner.engine is not None:
            found.append("engine")
        return tuple(found)

    def task_handlers(self) -> Sequence[TaskHandler]:
        """The ``prune`` task kind."""
        return (PruneHandler(self.pruner),)
