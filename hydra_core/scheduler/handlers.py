"""What a task kind is: its payload schema, its resource needs, and the work itself."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ..gpu.models import GpuReport


class PayloadError(ValueError):
    """The payload does not fit the kind's schema; the message says what is wrong."""


class PermanentTaskError(Exception):
    """A failure retrying cannot fix (bad input, missing file): the task fails at once."""


class AttemptLostError(Exception):
    """The attempt ended with the machine that ran it (a cluster node lost): it counts, and the
    task is queued again at once, without the backoff of a failure."""


class TaskCancelledError(Exception):
    """Raised by ``TaskContext.check_cancelled`` once the task was cancelled."""


@dataclass(slots=True)
class TaskContext:
    """What a running handler may use: progress, cancellation and the latest GPU reading."""

    task_id: int
    attempt: int
    _report: Callable[[float, str | None], Awaitable[None]]
    _cancelled: Callable[[], bool]
    _resources: Callable[[], GpuReport | None]
    _stopping: Callable[[], bool] = lambda: False
    # The task's priority: what a coordinator gives the tasks it queues.
    priority: int = 50

    async def report_progress(self, percent: float, message: str | None = None) -> None:
        """Tell Home Assistant how far the task is (0-100)."""
        await self._report(max(0.0, min(100.0, percent)), message)

    @property
    def cancelled(self) -> bool:
        """Whether the task was cancelled (or the worker is stopping) since it started."""
        return self._cancelled()

    def check_cancelled(self) -> None:
        """Stop here if the task was cancelled; handlers call it between steps."""
        if self._cancelled():
            raise TaskCancelledError

    @property
    def stopping(self) -> bool:
        """Whether the worker is stopping: the task goes back to the queue, it was not cancelled."""
        return self._stopping()

    @property
    def resources(self) -> GpuReport | None:
        """The GPUs as last read by the scheduler."""
        return self._resources()


class TaskHandler(ABC):
    """One kind of task. Registered with the scheduler under ``kind``."""

    kind: ClassVar[str]
    # A class attribute that a handler may also decide per instance (scoring on the CPU).
    needs_gpu: bool = False
    vram_gb: ClassVar[float] = 0.0
    # The models a task of this kind needs loaded (ids or names the VRAM arbiter knows, or a
    # backend with one model: "comfyui"): on a worker with the models part, the gate asks the
    # arbiter to make room for them, and they are leased to the task while it runs.
    models: tuple[str, ...] = ()
    max_attempts: ClassVar[int] = 3
    # A coordinator queues other tasks and waits for them (a chapter and its assets): it takes
    # no slot of ``max_concurrent`` and no GPU, so its tasks can run even with one slot.
    coordinator: ClassVar[bool] = False

    @abstractmethod
    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Check and normalise a payload; raise ``PayloadError`` saying what is wrong."""

    @abstractmethod
    async def run(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        """Do the work and return its result (JSON-serialisable)."""


def require_keys(payload: dict[str, Any], allowed: dict[str, type | tuple[type, ...]]) -> None:
    """Reject unknown keys and wrongly typed values (a shared first check for schemas)."""
    unknown = sorted(set(payload) - set(allowed))
    if unknown:
        raise PayloadError(f"Unknown payload field(s): {', '.join(unknown)}")
    for key, kind in allowed.items():
        if key not in payload:
            continue
        value = payload[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int to Python; accept it only where a bool is asked for.
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise PayloadError(f"{key} must be {' or '.join(k.__name__ for k in kinds)}")
