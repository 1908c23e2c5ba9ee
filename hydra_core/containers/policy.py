"""Which containers Hydra must never stop, restart or remove."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

PROTECTED_LABEL = "hydra.protected"
_TRUE = frozenset({"true", "1", "yes", "on"})


@dataclass(frozen=True, slots=True)
class ProtectionPolicy:
    """Protected by name pattern (the worker's option) or by the label ``hydra.protected=true``."""

    patterns: tuple[str, ...] = ()

    @classmethod
    def from_patterns(cls, patterns: Iterable[str]) -> ProtectionPolicy:
        """Build from option values, ignoring blanks."""
        return cls(tuple(pattern.strip() for pattern in patterns if pattern.strip()))

    def is_protected(self, name: str, labels: Mapping[str, str] | None) -> bool:
        """Whether the container is off-limits for stop, restart and self-healing."""
        if labels and labels.get(PROTECTED_LABEL, "").strip().lower() in _TRUE:
            return True
        return any(fnmatchcase(name, pattern) for pattern in self.patterns)
