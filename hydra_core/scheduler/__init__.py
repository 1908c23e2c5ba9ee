"""Autonomous work: the persistent queue, the resource gate, handlers and retries."""

from .handlers import PayloadError, PermanentTaskError, TaskContext, TaskHandler
from .maintenance import MaintenanceHandler
from .scheduler import QueueError, Scheduler, gate_reason
from .store import TaskQuery, TaskStore

__all__ = [
    "MaintenanceHandler",
    "PayloadError",
    "PermanentTaskError",
    "QueueError",
    "Scheduler",
    "TaskContext",
    "TaskHandler",
    "TaskQuery",
    "TaskStore",
    "gate_reason",
]
