"""Self-healing decisions: when to restart a broken container, and when to stop trying.

Pure bookkeeping (no I/O), so the rules are easy to test: the service asks ``check`` once per
status cycle for every container and carries out what it answers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
import time

from .models import STOP_EXIT_CODES, ContainerInfo, HealingSettings

WINDOW_S = 3600.0
_OWN_RESTART_POLICIES = frozenset({"always", "unless-stopped", "on-failure"})


@dataclass(frozen=True, slots=True)
class Heal:
    """Restart the container now."""

    reason: str


@dataclass(frozen=True, slots=True)
class Refuse:
    """It is broken but protected: say so once, never touch it."""

    reason: str


@dataclass(frozen=True, slots=True)
class GiveUp:
    """The restart budget is spent: tell the user once."""

    restarts: int
    window_s: float


Decision = Heal | Refuse | GiveUp


@dataclass(slots=True)
class _Episode:
    unhealthy_checks: int = 0
    restarts: deque[float] = field(default_factory=deque)
    next_allowed: float = 0.0
    announced: bool = False  # a Refuse or GiveUp was already reported for this episode


class Healer:
    """Tracks each container's trouble and restart budget."""

    def __init__(
        self,
        settings: HealingSettings,
        *,
        backoff_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._backoff_s = backoff_s
        self._clock = clock
        self._episodes: dict[str, _Episode] = {}

    def trouble(self, container: ContainerInfo, *, stopped_on_purpose: bool) -> str | None:
        """Why the container needs healing, or None if it does not."""
        if container.health == "unhealthy" and container.state == "running":
            return "unhealthy"
        if container.state not in ("exited", "dead") or not container.exit_code:
            return None
        if stopped_on_purpose or (container.restart_policy or "no") in _OWN_RESTART_POLICIES:
            return None
        if container.exit_code in STOP_EXIT_CODES:
            return None
        return f"exited with code {container.exit_code}"

    def check(  # noqa: PLR0911 - one return per rule reads clearest
        self, container: ContainerInfo, *, stopped_on_purpose: bool
    ) -> Decision | None:
        """One check of one container: what to do about it now, if anything."""
        episode = self._episodes.setdefault(container.name, _Episode())
        now = self._clock()
        while episode.restarts and now - episode.restarts[0] > WINDOW_S:
            episode.restarts.popleft()
        trouble = self.trouble(container, stopped_on_purpose=stopped_on_purpose)
        if trouble is None:
            episode.unhealthy_checks = 0
            episode.announced = False
            return None
        if not self.settings.enabled:
            return None
        if trouble == "unhealthy":
            episode.unhealthy_checks += 1
            if episode.unhealthy_checks < self.settings.unhealthy_checks:
                return None
            trouble = f"unhealthy for {episode.unhealthy_checks} consecutive checks"
        if container.protected:
            return None if _announce(episode) else Refuse(f"{trouble}; the container is protected")
        if len(episode.restarts) >= self.settings.max_restarts_per_hour:
            return None if _announce(episode) else GiveUp(len(episode.restarts), WINDOW_S)
        if now < episode.next_allowed:
            return None
        return Heal(trouble)

    def restarted(self, name: str) -> None:
        """Count a self-healing restart against the budget and back off before the next."""
        episode = self._episodes.setdefault(name, _Episode())
        now = self._clock()
        episode.restarts.append(now)
        episode.unhealthy_checks = 0
        episode.next_allowed = now + self._backoff_s * 2 ** (len(episode.restarts) - 1)

    def forget(self, name: str) -> None:
        """The container is gone."""
        self._episodes.pop(name, None)


def _announce(episode: _Episode) -> bool:
    """True if this episode was already reported; marks it reported otherwise."""
    if episode.announced:
        return True
    episode.announced = True
    return False
