"""The task queue part: persistent, resource-aware autonomous work, and the night report."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from ..worker.part import BuildContext, RunningPart
from .handlers import TaskHandler
from .maintenance import OUTPUTS_FOLDER, MaintenanceHandler
from .models import EVENT_SCHEDULER, EVENT_TASK
from .options import TaskOptions
from .scheduler import Scheduler
from .store import TaskStore

TASKS_FILE = "tasks.db"


class TasksPart(RunningPart[Scheduler]):
    """The queue and the handlers of every part built before it (maintenance is its own)."""

    name = "tasks"
    options = TaskOptions
    event_types = (EVENT_TASK, EVENT_SCHEDULER)
    disabled_code = "scheduler_disabled"
    disabled_message = "This worker runs no task queue"
    route_modules = ("routes", "report")  # ``/tasks``, ``/scheduler`` and ``/report``

    @classmethod
    def build(cls, context: BuildContext) -> Self:
        """Always on; runs maintenance and whatever the other parts hand it."""
        options = context.options(TaskOptions)
        handlers: list[TaskHandler] = [
            MaintenanceHandler(
                data_dir=context.data_dir,
                outputs_dir=outputs_dir(context),
                extra_paths=tuple(Path(path) for path in options.maintenance_paths),
                retention_days=options.retention_days,
                audit=context.audit,
            )
        ]
        for part in context.built:
            handlers.extend(part.task_handlers())
        return cls(
            Scheduler(
                TaskStore(context.data_dir / TASKS_FILE),
                handlers=handlers,
                probe=context.probe,
                bus=context.bus,
                data_dir=context.data_dir,
                backoff_base_s=options.retry_backoff,
            )
        )

    def capabilities(self) -> tuple[str, ...]:
        """The task kinds this worker runs."""
        return self.service.kinds


def outputs_dir(context: BuildContext) -> Path:
    """Where generated outputs go."""
    return context.options(TaskOptions).outputs_dir or context.data_dir / OUTPUTS_FOLDER
