"""What every worker has on the wire: who it is, its host, its parts, actors and the audit log.

Each part's own wire models live in its folder (``containers/models.py``, ``gpu/models.py``,
...). The models are plain frozen dataclasses; ``hydra_core.wire`` turns them into JSON
(``dump``) and back (``load``), so the worker and its client share one definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import StringConstraints

from .gpu.models import GpuInfo, GpuReport
from .wire import request_model

API_VERSION = "v1"


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


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerInfo:
    """Who the worker is: what ``/api/v1/health`` answers without a token."""

    worker_id: str
    name: str
    version: str
    api_version: str = API_VERSION


@dataclass(frozen=True, slots=True, kw_only=True)
class PartInfo:
    """One part a worker runs (containers, tasks, voice, ...): its version and what it offers."""

    version: str
    capabilities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SetAsideFile:
    """A state file the worker could not use (corrupt, or not of the expected types): renamed
    to ``moved_to`` and kept there; the worker started afresh without it."""

    path: str
    moved_to: str
    reason: str
    time: float


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerStatus:
    """Everything ``/api/v1/status`` reports: the worker, its host, its GPUs and its parts."""

    worker: WorkerInfo
    started_at: float
    host: HostInfo
    gpu: GpuReport = field(default_factory=lambda: GpuReport(backend="none", available=False))
    # The parts this worker runs, by name; a part that is off is absent.
    parts: dict[str, PartInfo] = field(default_factory=dict)
    # State files this worker set aside since it started, oldest first.
    set_aside: tuple[SetAsideFile, ...] = ()

    def gpu_by_uuid(self) -> dict[str, GpuInfo]:
        """Return the GPUs keyed by their NVML UUID, which survives reboots and re-indexing."""
        return {gpu.uuid: gpu for gpu in self.gpu.gpus}


# Who may be named as the actor of a request; "self_heal" is the worker's own.
CALLER_ACTOR_TYPES = ("user", "automation", "api", "presence", "schedule")
ACTOR_TYPES = ("user", "automation", "self_heal", "api", "presence", "schedule")
AUDIT_RESULTS = ("ok", "refused", "failed")
# The longest actor id or name a request may send.
MAX_ACTOR_TEXT = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class Actor:
    """Who asked for an action: a Home Assistant user, an automation, self-healing, or the API."""

    type: str
    id: str | None = None
    name: str | None = None


_ActorText = Annotated[str, StringConstraints(max_length=MAX_ACTOR_TEXT)]


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class CallerActor:
    """The ``actor`` of a request body: who the caller acts for (never ``self_heal``)."""

    type: Literal["user", "automation", "api", "presence", "schedule"]
    id: _ActorText | None = None
    name: _ActorText | None = None

    @staticmethod
    def resolve(actor: CallerActor | None) -> Actor:
        """The request's actor; none given is the API itself."""
        if actor is None:
            return Actor(type="api")
        return Actor(type=actor.type, id=actor.id, name=actor.name)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One action Hydra attempted, whatever came of it."""

    id: int
    time: float
    actor: Actor
    container: str
    action: str
    result: str
    reason: str | None = None
    detail: str | None = None


# The types of messages on /api/v1/events every worker sends; each part adds its own.
EVENT_HELLO = "hello"  # WorkerInfo, first message of every connection
EVENT_KEEPALIVE = "keepalive"  # {}: sent when nothing else was for KEEPALIVE_S
KEEPALIVE_S = 30.0
EVENT_AUDIT = "audit"  # AuditEntry: an action was attempted


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerEvent:
    """A message on ``/api/v1/events``: a type and its data."""

    type: str
    time: float
    data: dict[str, Any] = field(default_factory=dict)
