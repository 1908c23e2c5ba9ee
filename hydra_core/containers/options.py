"""The containers part's options."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import option


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerOptions:
    """Which engine to follow, what is protected, and how self-healing behaves."""

    docker_host: str | None = option(
        None,
        help="container engine address, unix:///path or tcp://host:port; 'none' turns container"
        " monitoring off",
        default_text="DOCKER_HOST, else /var/run/docker.sock if it exists",
    )
    protected_containers: tuple[str, ...] = option(
        (),
        help="comma-separated name patterns (fnmatch, e.g. 'homeassistant,db-*') Hydra never stops"
        " or restarts; containers labelled hydra.protected=true are protected too",
        addon=True,
    )
    self_healing: bool = option(True, help="restart broken containers", addon=True)
    heal_after_checks: int = option(
        3,
        help="consecutive unhealthy checks before self-healing restarts a container",
        low=1,
        high=100,
    )
    heal_max_restarts: int = option(
        3,
        help="self-healing restarts per container per hour before Hydra gives up",
        low=0,
        high=100,
    )
    container_interval: float = option(
        10.0, help="seconds between container status checks", low=1, high=3600
    )
