"""Containers: the engine client, protection policy, self-healing and the service tying them."""

from .engine import EngineClient, EngineError, resolve_docker_host
from .policy import PROTECTED_LABEL, ProtectionPolicy
from .service import (
    ContainerActionError,
    ContainerNotFoundError,
    ContainerProtectedError,
    ContainerService,
    EngineUnavailableError,
)

__all__ = [
    "PROTECTED_LABEL",
    "ContainerActionError",
    "ContainerNotFoundError",
    "ContainerProtectedError",
    "ContainerService",
    "EngineClient",
    "EngineError",
    "EngineUnavailableError",
    "ProtectionPolicy",
    "resolve_docker_host",
]
