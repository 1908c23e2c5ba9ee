"""The containers part: every container of the engine, protection, self-healing and actions."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Self

from ..models import EVENT_AUDIT
from ..worker.part import BuildContext, RunningPart
from .engine import DEFAULT_DOCKER_HOST, EngineClient, resolve_docker_host
from .models import (
    EVENT_CONTAINER,
    EVENT_CONTAINER_REMOVED,
    EVENT_ENGINE,
    EVENT_HEAL_EXHAUSTED,
    EVENT_HEALING,
    HealingSettings,
)
from .options import ContainerOptions
from .policy import ProtectionPolicy
from .service import ContainerService

_LOGGER = logging.getLogger(__name__)


class ContainersPart(RunningPart[ContainerService]):
    """Follows one container engine."""

    name = "containers"
    options = ContainerOptions
    # Audit entries are the core's model, but every action audited today is a container's.
    event_types = (
        EVENT_AUDIT,
        EVENT_CONTAINER,
        EVENT_CONTAINER_REMOVED,
        EVENT_ENGINE,
        EVENT_HEALING,
        EVENT_HEAL_EXHAUSTED,
    )
    disabled_code = "containers_disabled"
    disabled_message = (
        "Container monitoring is off on this worker (no engine configured: set docker_host)"
    )
    route_modules = ("routes",)  # ``/containers`` and ``/healing``

    @classmethod
    def build(cls, context: BuildContext) -> Self | None:
        """Off when docker_host is none, or when none is set and no local engine is found."""
        options = context.options(ContainerOptions)
        if (options.docker_host or "").lower() == "none":
            return None
        docker_host = resolve_docker_host(options.docker_host)
        local_socket = Path(DEFAULT_DOCKER_HOST.removeprefix("unix://"))
        if (
            not options.docker_host
            and docker_host == DEFAULT_DOCKER_HOST
            and not local_socket.exists()
        ):
            _LOGGER.info("No container engine found; container monitoring is off")
            return None
        _LOGGER.info("Following the container engine at %s", docker_host)
        return cls(
            ContainerService(
                EngineClient(docker_host),
                policy=ProtectionPolicy.from_patterns(options.protected_containers),
                audit=context.audit,
                bus=context.bus,
                data_dir=context.data_dir,
                healing=HealingSettings(
                    enabled=options.self_healing,
                    unhealthy_checks=options.heal_after_checks,
                    max_restarts_per_hour=options.heal_max_restarts,
                ),
                interval_s=options.container_interval,
            )
        )
