"""The eviction policy: which loaded models to unload so that another fits.

Candidates are loaded models that are not pinned, not leased, have nothing in flight and do
not outrank the load. They are taken in order of priority (lowest first), then reload cost
(cheapest to bring back first), then least recently used, until enough memory is freed; then
any taken model the rest already make up for is put back, so the set is the smallest the order
allows. When the candidates cannot free enough, the answer says whether leases, work in flight
or higher priorities stand in the way (409) or nothing could make it fit (507).

Reload costs are compared in powers of two, and a reload under 0.1 s costs nothing: a model
that loads in 0.6 s and one that loads in 0.9 s cost the same, and least recent use decides
between them, rather than the noise of one measurement.

A pure function over a list: with 50 models loaded it decides in microseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import math

from .models import Blocker

FITS, LOADED, EVICT, BLOCKED, TOO_LARGE = "fits", "loaded", "evict", "blocked", "too_large"
# Reloads quicker than this are all as cheap.
FREE_RELOAD_S = 0.1


@dataclass(frozen=True, slots=True, kw_only=True)
class Loaded:
    """A loaded model as the policy sees it."""

    id: str
    vram_bytes: int
    priority: int
    reload_cost_s: float
    last_used: float
    pinned: bool = False
    lease_holder: str | None = None
    in_flight: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What to do for one load: the verdict, the models to evict, and what blocks it."""

    verdict: str
    evict: tuple[Loaded, ...] = ()
    blocked_by: tuple[Blocker, ...] = ()


def decide(loaded: Sequence[Loaded], *, need: int, free: int, priority: int) -> Decision:
    """What a load of ``need`` bytes at ``priority`` takes when ``free`` bytes are free."""
    shortfall = need - free
    if shortfall <= 0:
        return Decision(verdict=FITS)
    candidates: list[Loaded] = []
    blockers: list[tuple[Loaded, Blocker]] = []
    for model in loaded:
        if model.pinned:
            continue
        if (reason := _blocked(model, priority)) is not None:
            blockers.append(
                (
                    model,
                    Blocker(
                        id=model.id,
                        reason=reason,
                        vram_bytes=model.vram_bytes,
                        holder=model.lease_holder,
                    ),
                )
            )
        else:
            candidates.append(model)
    candidates.sort(key=lambda model: (model.priority, cost_class(model), model.last_used))
    chosen = _smallest_prefix(candidates, shortfall)
    if chosen is not None:
        return Decision(verdict=EVICT, evict=tuple(chosen))
    available = sum(model.vram_bytes for model in candidates)
    if available + sum(model.vram_bytes for model, _ in blockers) >= shortfall:
        return Decision(verdict=BLOCKED, blocked_by=tuple(blocker for _, blocker in blockers))
    return Decision(verdict=TOO_LARGE)


def cost_class(model: Loaded) -> int:
    """The reload cost in powers of two of seconds, from ``FREE_RELOAD_S`` up."""
    return round(math.log2(max(model.reload_cost_s, FREE_RELOAD_S) / FREE_RELOAD_S))


def _blocked(model: Loaded, priority: int) -> str | None:
    if model.in_flight:
        return "in_flight"
    if model.lease_holder is not None:
        return "leased"
    if model.priority > priority:
        return "outranks"
    return None


def _smallest_prefix(ordered: list[Loaded], shortfall: int) -> list[Loaded] | None:
    """The shortest run from the front that frees ``shortfall``, less any model the others
    already make up for (tried from the most valuable back), or None if all are too few."""
    chosen: list[Loaded] = []
    freed = 0
    for model in ordered:
        if freed >= shortfall:
            break
        chosen.append(model)
        freed += model.vram_bytes
    if freed < shortfall:
        return None
    for model in reversed(chosen[:-1]):
        if freed - model.vram_bytes >= shortfall:
            chosen.remove(model)
            freed -= model.vram_bytes
    return chosen
