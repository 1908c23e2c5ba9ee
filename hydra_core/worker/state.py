"""What the worker's handlers share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from ..audit import AuditLog
from ..events import EventBus
from ..gpu import GpuProbe
from ..models import WorkerInfo


@dataclass(frozen=True, slots=True)
class WorkerState:
    """What the handlers share: who the worker is and how it reads the machine."""

    info: WorkerInfo
    probe: GpuProbe
    started_at: float
    # Where it keeps its state; None for a worker that keeps nothing (tests).
    data_dir: Path | None = None


STATE_KEY = web.AppKey("state", WorkerState)
AUDIT_KEY = web.AppKey("audit", AuditLog)
BUS_KEY = web.AppKey("bus", EventBus)
