"""Which containers Hydra must never start, stop, restart or remove."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
import re

PROTECTED_LABEL = "hydra.protected"
_TRUE = frozenset({"true", "1", "yes", "on"})
# Docker Compose v2 recreates a container as "<old id[:12]>_<name>" and renames it to <name>
# once the old one is removed; meanwhile the new container is the service all the same.
_COMPOSE_TEMPORARY = re.compile(r"[0-9a-f]{12}_(?P<name>.+)")


@dataclass(frozen=True, slots=True)
class ProtectionPolicy:
    """Protected by name pattern (the worker's option) or by the label ``hydra.protected=true``."""

    patterns: tuple[str, ...] = ()

    @classmethod
    def from_patterns(cls, patterns: Iterable[str]) -> ProtectionPolicy:
        """Build from option values, ignoring blanks."""
        return cls(tuple(pattern.strip() for pattern in patterns if pattern.strip()))

    def is_protected(self, name: str, labels: Mapping[str, str] | None) -> bool:
        """Whether the container is off-limits for every action and self-healing.

        Every name the container goes by counts: its own, and, while Compose recreates it under
        a temporary name, the name it is about to take.
        """
        if labels and labels.get(PROTECTED_LABEL, "").strip().lower() in _TRUE:
            return True
        names = [name]
        if (temporary := _COMPOSE_TEMPORARY.fullmatch(name)) is not None:
            names.append(temporary["name"])
        return any(fnmatchcase(each, pattern) for each in names for pattern in self.patterns)
