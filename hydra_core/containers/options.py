"""The containers part's options."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import option


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerOptions:
    """Which engine to follow, what is protected, and how self-healing behaves."""

    docker_host: str | None = option(
        None,
        help="the container engine: unix:///path, tcp://host:port or https://host:port (TLS as"
        " the Docker CLI reads DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, the certificate always"
        " verified); none turns container monitoring off",
        default_text="DOCKER_HOST, else /var/run/docker.sock if it exists",
    )
    protected_containers: tuple[str, ...] = option(
        (),
        help="comma-separated name patterns (fnmatch, e.g. 'homeassistant,db-*') of containers"
        " Hydra never starts, stops, restarts or self-heals; the label hydra.protected=true"
        " protects a container too",
        addon=True,
    )
    self_healing: bool = option(
        True,
        help="restart broken containers (switchable at run time from Home Assistant; the switch is"
        " kept in the data folder)",
        addon=True,
    )
    heal_after_checks: int = option(
        3,
        help="consecutive unhealthy checks before self-healing restarts a container",
        low=1,
        high=100,
    )
    heal_max_restarts: int = option(
        3,
        help="self-healing restarts per container per hour; past it Hydra stops trying and says so",
        low=0,
        high=100,
    )
    container_interval: float = option(
        10.0,
        help="seconds between container status checks (changes are pushed at once regardless)",
        low=1,
        high=3600,
    )
