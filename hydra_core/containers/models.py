"""The containers part's wire models: containers, self-healing, and the requests that act."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from pydantic import StringConstraints

from ..models import CallerActor
from ..wire import request_model

CONTAINER_STATES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")
CONTAINER_HEALTH = ("none", "starting", "healthy", "unhealthy")
CONTAINER_ACTIONS = ("start", "stop", "restart")
# Exit codes of a container that exited cleanly or was stopped (SIGKILL 137, SIGTERM 143).
STOP_EXIT_CODES = frozenset({None, 0, 137, 143})
# The longest reason an action may give.
MAX_REASON = 500

# The types of messages on /api/v1/events this part sends, and what their data holds.
EVENT_CONTAINER = "container"  # ContainerInfo: created, changed state or health
EVENT_CONTAINER_REMOVED = "container_removed"  # {"name", "id"}
EVENT_ENGINE = "engine"  # {"available", "error"}: the container engine came or went
EVENT_HEALING = "healing"  # HealingSettings: self-healing switched or changed
EVENT_HEAL_EXHAUSTED = "heal_exhausted"  # {"container", "restarts", "window_s"}: gave up


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerInfo:
    """One container as the engine reports it, known by name: a recreated container keeps it."""

    name: str
    id: str
    image: str
    state: str
    health: str = "none"
    exit_code: int | None = None
    restart_count: int = 0
    restart_policy: str | None = None
    started_at: str | None = None
    cpu_percent: float | None = None
    memory_used_bytes: int | None = None
    memory_limit_bytes: int | None = None
    protected: bool = False

    @property
    def problem(self) -> bool:
        """Unhealthy, or stopped by a failure rather than by a stop or kill (SIGTERM, SIGKILL)."""
        if self.health == "unhealthy" or self.state == "dead":
            return True
        return self.state == "exited" and self.exit_code not in STOP_EXIT_CODES


@dataclass(frozen=True, slots=True, kw_only=True)
class HealingSettings:
    """How the worker heals containers; ``enabled`` can be switched at run time."""

    enabled: bool = True
    unhealthy_checks: int = 3
    max_restarts_per_hour: int = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerReport:
    """Every container of the engine, or why the engine cannot be read."""

    engine_available: bool
    engine_error: str | None = None
    engine_version: str | None = None
    containers: tuple[ContainerInfo, ...] = ()
    healing: HealingSettings = field(default_factory=HealingSettings)

    def by_name(self) -> dict[str, ContainerInfo]:
        """The containers keyed by name."""
        return {container.name: container for container in self.containers}


# Requests


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerActionRequest:
    """``POST /containers/{name}/{action}``: who asks, and why."""

    actor: CallerActor | None = None
    reason: Annotated[str, StringConstraints(max_length=MAX_REASON)] | None = None


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class HealingRequest:
    """``PUT /healing``: switch self-healing on or off."""

    enabled: bool
