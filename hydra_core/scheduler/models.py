"""The tasks part's wire models: tasks, the scheduler's settings and state, the night report,
and the requests that queue tasks and change settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import StringConstraints
from typing_extensions import TypedDict

from ..gpu.models import GpuNight
from ..models import Actor, AuditEntry, CallerActor
from ..wire import request_model

TASK_STATES = ("queued", "waiting", "running", "succeeded", "failed", "cancelled")
FINISHED_TASK_STATES = frozenset({"succeeded", "failed", "cancelled"})

# The types of messages on /api/v1/events this part sends, and what their data holds.
EVENT_TASK = "task"  # {"event", "task"}: queued, started, progressed, finished, cancelled...
EVENT_SCHEDULER = "scheduler"  # SchedulerSettings: thresholds or the pause switch changed


@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    """One unit of autonomous work in the worker's queue."""

    id: int
    kind: str
    payload: dict[str, Any]
    priority: int
    state: str
    actor: Actor
    attempts: int = 0
    max_attempts: int = 3
    next_attempt_at: float | None = None
    progress: float = 0.0
    progress_message: str | None = None
    waiting_reason: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    # The cluster node that ran (or runs) it: None where the worker ran it itself.
    node: str | None = None

    @property
    def finished(self) -> bool:
        """Succeeded, failed or cancelled: it will not run again unless retried."""
        return self.state in FINISHED_TASK_STATES


# What each number of the settings may be set to, lowest and highest (the worker checks; Home
# Assistant's number entities offer the same range).
SETTING_LIMITS: dict[str, tuple[float, float]] = {
    "max_gpu_utilization": (0, 100),
    "min_free_vram_gb": (0, 1024),
    "poll_interval_s": (1, 3600),
    "max_concurrent": (1, 64),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerSettings:
    """When autonomous work may run: the resource gate, concurrency, and the pause switch."""

    max_gpu_utilization: float = 50.0
    min_free_vram_gb: float = 4.0
    poll_interval_s: float = 30.0
    max_concurrent: int = 3
    paused: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerState:
    """What ``/api/v1/scheduler`` answers: the settings, today's counts, the accepted kinds."""

    settings: SchedulerSettings
    counts: dict[str, int]
    kinds: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class NightReport:
    """What ``/api/v1/report?since=`` answers: what happened on the worker since a time.

    ``tasks`` are the tasks that finished (succeeded, failed or were cancelled) in the span,
    oldest first; ``waiting`` counts tasks queued now. ``healing`` is the audit log's entries in
    the span (self-healing and user actions on containers); ``unhealthy`` names the containers
    unhealthy or exited with an error now.
    """

    since: float
    until: float
    tasks: tuple[Task, ...] = ()
    waiting: int = 0
    gpus: tuple[GpuNight, ...] = ()
    healing: tuple[AuditEntry, ...] = ()
    unhealthy: tuple[str, ...] = ()
    # False when the worker has no container engine: the last two fields then say nothing.
    containers_available: bool = False


# Requests


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRequest:
    """``POST /tasks``: queue a task; the scheduler checks the kind, payload and ranges."""

    kind: Annotated[str, StringConstraints(min_length=1)]
    payload: dict[str, Any] = field(default_factory=dict)
    priority: int | None = None
    max_attempts: int | None = None
    actor: CallerActor | None = None


@request_model
class SchedulerChanges(TypedDict, total=False):
    """``PUT /scheduler``: the settings to change; the scheduler checks their ranges."""

    max_gpu_utilization: float
    min_free_vram_gb: float
    poll_interval_s: float
    max_concurrent: int
    paused: bool
