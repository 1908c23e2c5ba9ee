"""The power part's wire models: profiles, each GPU's power state, and the request to set one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field

from ..models import CallerActor
from ..wire import request_model

POWER_PROFILES = ("eco", "balanced", "full")
# A limit set in watts rather than through a profile.
POWER_CUSTOM = "custom"

# The type of message on /api/v1/events this part sends.
EVENT_POWER = "power"  # PowerStatus: a profile was set, re-applied, or failed to apply


@dataclass(frozen=True, slots=True, kw_only=True)
class PowerSettings:
    """What the eco and balanced profiles mean, in percent of each card's default limit."""

    eco_percent: float = 60.0
    balanced_percent: float = 80.0


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuPower:
    """One GPU's power profile: what was asked for, what the card enforces, and its range.

    ``profile`` is None until one was chosen (the card runs whatever it runs). ``target_w`` is
    the limit the profile means for this card (clamped into ``min_w``..``max_w``); ``error``
    says why the card does not enforce it (no permission, the card refused), else None.
    """

    index: int
    uuid: str
    name: str
    profile: str | None = None
    target_w: float | None = None
    enforced_w: float | None = None
    default_w: float | None = None
    min_w: float | None = None
    max_w: float | None = None
    error: str | None = None
    # Machine-readable form of ``error``: "not_permitted", "not_supported", "failed".
    error_code: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PowerStatus:
    """What ``/api/v1/power`` answers: the profile settings and every GPU's power state."""

    available: bool
    # Why power cannot be managed at all (no NVML, no GPU), else None.
    reason: str | None = None
    settings: PowerSettings = field(default_factory=PowerSettings)
    gpus: tuple[GpuPower, ...] = ()


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class PowerRequest:
    """``PUT /power``: a profile or a limit in watts (exactly one; the manager checks that),
    on some GPUs by index (default all), on behalf of an actor."""

    profile: str | None = None
    limit_w: float | None = None
    gpus: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)] | None = None
    actor: CallerActor | None = None
