"""The models part's wire models: each model the arbiter knows, what is loaded, the answers of
``can-load``, ``load`` and ``unload``, and the requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, StringConstraints

from ..models import CallerActor
from ..wire import request_model

# The type of message on /api/v1/events this part sends: {"event", "model", ...} where event is
# loaded, unloaded, evicted, expired or load_failed, and model a ModelInfo.
EVENT_MODEL = "model"

# The audit log's ``container`` column holds what an action was done to; model actions are
# recorded against ``model:<id>`` with these actions.
AUDIT_EVICT = "evict_model"
AUDIT_UNLOAD = "unload_model"

# Priorities: who outranks whom when memory runs short (0 to 100). A load may only evict models
# of its own priority or lower; an interactive voice request runs above background work.
PRIORITY_BACKGROUND = 50
PRIORITY_INTERACTIVE = 90
MAX_PRIORITY = 100

# The longest lease a request may take, and the longest TTL: a day.
MAX_LEASE_S = 86_400.0
MAX_TTL_S = 86_400.0

_ModelId = Annotated[str, StringConstraints(min_length=1, max_length=300)]
_Holder = Annotated[str, StringConstraints(min_length=1, max_length=200)]


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """A holder keeps a model loaded until ``until`` (unix time): it is never evicted meanwhile."""

    holder: str
    until: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelInfo:
    """One model the arbiter knows: where it runs, what it costs, and whether it is loaded.

    ``vram_bytes`` is what it takes now when loaded (as the backend or the GPU probe saw it),
    else the best guess for a load: the measured size when one was measured, else the estimate.
    ``load_seconds_p50`` is the median of the loads the arbiter measured (None before the
    first). ``last_used`` and ``expires_at`` are unix times; ``ttl_s`` 0 means no TTL.
    """

    id: str
    name: str
    backend: str
    node: str
    loaded: bool
    estimated_vram_bytes: int | None = None
    measured_vram_bytes: int | None = None
    vram_bytes: int | None = None
    load_seconds_p50: float | None = None
    priority: int = PRIORITY_BACKGROUND
    pinned: bool = False
    ttl_s: float = 0.0
    last_used: float | None = None
    expires_at: float | None = None
    in_flight: int = 0
    lease: Lease | None = None
    # The backend's own word on when it unloads the model (Ollama's expires_at): a date years
    # away is Ollama's ``keep_alive: -1``, loaded forever unless someone unloads it.
    backend_expires_at: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendInfo:
    """One model server the arbiter talks to, and whether it answered its last call."""

    name: str
    kind: str
    url: str | None = None
    reachable: bool = True
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelsStatus:
    """``GET /models/available`` and ``/models/loaded``: the models, the backends and the GPU."""

    models: tuple[ModelInfo, ...] = ()
    backends: tuple[BackendInfo, ...] = ()
    # The GPU the arbiter keeps room on, as last read: total and free bytes (None: not read).
    gpu_index: int = 0
    vram_total_bytes: int | None = None
    vram_free_bytes: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Blocker:
    """A loaded model that stands in the way and may not be evicted now, and why."""

    id: str
    reason: str
    vram_bytes: int = 0
    holder: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadPlan:
    """``GET /models/can-load/{id}``: whether a load fits now, what it would evict, or what
    blocks it.

    ``verdict`` is ``loaded`` (nothing to do), ``fits``, ``evict`` (fits once ``evict`` is
    unloaded), ``blocked`` (it would fit if ``blocked_by``'s leases or work ended) or
    ``too_large`` (it cannot fit even with everything but pinned models unloaded).
    """

    model: str
    verdict: str
    need_bytes: int
    free_bytes: int
    evict: tuple[str, ...] = ()
    blocked_by: tuple[Blocker, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Eviction:
    """One model unloaded to make room, and the bytes the GPU got back."""

    id: str
    vram_bytes: int
    freed_bytes: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadResult:
    """``POST /models/load``: the model as loaded, what was evicted for it, and the time taken:
    ``wait_seconds`` waiting for evicted models' memory to come back, ``load_seconds`` the
    backend's load, ``seconds`` the whole call."""

    model: ModelInfo
    evicted: tuple[Eviction, ...] = ()
    already_loaded: bool = False
    wait_seconds: float = 0.0
    load_seconds: float = 0.0
    seconds: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class UnloadResult:
    """``POST /models/unload``: the models unloaded, and those left because they are in use."""

    unloaded: tuple[str, ...] = ()
    kept: tuple[Blocker, ...] = ()


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseRequest:
    """Keep the model loaded for ``holder`` during ``seconds``."""

    holder: _Holder
    seconds: Annotated[float, Field(gt=0, le=MAX_LEASE_S)]


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class LoadRequest:
    """``POST /models/load``: load ``model``, evicting idle models if memory is short.

    ``ttl_s`` unloads it after that long unused (0: never; absent: the model's own TTL);
    ``priority`` is the load's (default background): it evicts only models at or below it.
    """

    model: _ModelId
    ttl_s: Annotated[float, Field(ge=0, le=MAX_TTL_S)] | None = None
    lease: LeaseRequest | None = None
    priority: Annotated[int, Field(ge=0, le=MAX_PRIORITY)] = PRIORITY_BACKGROUND
    actor: CallerActor | None = None


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class UnloadRequest:
    """``POST /models/unload``: one model, or ``all`` of them (pinned ones only when forced);
    ``force`` also unloads leased models and ends their leases (never one with work in flight)."""

    model: _ModelId | None = None
    all: bool = False
    force: bool = False
    actor: CallerActor | None = None
