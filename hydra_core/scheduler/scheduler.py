"""The scheduler: runs queued tasks when the GPUs have room, retries failures with backoff.

A dispatch decision reads the GPUs once, asks the store for the best runnable tasks (one indexed
query, whatever the queue's length) and starts those that fit, up to ``max_concurrent``. A task
whose kind needs the GPU waits, with the reason recorded, while utilization is above the limit
or too little VRAM is free; tasks behind it that fit still run. The loop wakes on a new task, a
finished task, a settings change, the next retry time, or the poll interval.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
import contextlib
from dataclasses import replace
from functools import partial
import json
import logging
from pathlib import Path
import random
import time
from typing import Any, Protocol

from ..errors import Refusal
from ..events import EventBus
from ..gpu import GpuProbe
from ..gpu.models import GpuReport
from ..models import Actor
from ..settings_file import load_typed_settings, save_settings
from ..wire import dump
from .handlers import (
    AttemptLostError,
    PayloadError,
    PermanentTaskError,
    TaskCancelledError,
    TaskContext,
    TaskHandler,
)
from .models import (
    EVENT_SCHEDULER,
    EVENT_TASK,
    SETTING_LIMITS,
    TASK_STATES,
    SchedulerSettings,
    Task,
)
from .store import MAX_LIST, ReadyTask, TaskQuery, TaskStore

_LOGGER = logging.getLogger(__name__)

MIN_PRIORITY, MAX_PRIORITY, DEFAULT_PRIORITY = 0, 100, 50
MAX_ATTEMPTS_LIMIT = 20
# Unfinished tasks the queue holds at most: far more than a night's work (the benchmarks queue
# 10,000), yet a bound on what a runaway script can pile up.
MAX_UNFINISHED = 50_000
SETTINGS_FILE = "scheduler.json"
_GIB = 1024**3
# Runnable tasks read per decision beyond the free slots, so blocked GPU tasks at the head do
# not starve tasks behind them that need no GPU.
_LOOKAHEAD = 50
# The arbiter's refusals that mean "not now": leases or work in flight in the way (409), memory
# not back yet (503), too little memory for now (507).
_NO_ROOM = (409, 503, 507)
# Seconds before an attempt a cluster node could not begin is placed again.
_UNREACHABLE_RETRY_S = 1.0
# How often a cancel looks whether the queue, which claimed the task as it looked, has begun it.
_CANCEL_POLL_S = 0.01


class QueueError(Refusal, code="invalid_task"):
    """A request the queue refuses; ``code`` and ``status`` are what the API answers."""


class UnknownKindError(QueueError, code="unknown_kind"):
    """No handler for that kind of task (yet)."""


class InvalidPayloadError(QueueError, code="invalid_payload"):
    """The payload does not fit the kind's schema."""


class InvalidPriorityError(QueueError, code="invalid_priority"):
    """Priority or attempts out of range."""


class InvalidSettingError(QueueError, code="invalid_setting"):
    """A scheduler setting out of range or of the wrong type."""


class QueueFullError(QueueError, code="queue_full", status=503):
    """The queue holds as many unfinished tasks as it takes."""


class NoNodeFitsError(QueueError, code="no_node_fits"):
    """No node of the cluster could ever run a task of that kind (too much VRAM, no label)."""


class TaskNotFoundError(QueueError, code="task_not_found", status=404):
    """No task with that id."""


class TaskStateError(QueueError, code="task_finished", status=409):
    """The task's state does not allow that (cancel a finished task, retry a running one)."""


class TaskNotRetryableError(TaskStateError, code="task_not_retryable"):
    """Only failed or cancelled tasks can be retried."""


class PlacedTaskError(Exception):
    """A handler failed on a cluster node; the message is the node's, already for people."""


def gate_reason(
    settings: SchedulerSettings,
    report: GpuReport | None,
    handler: TaskHandler,
    *,
    vram: bool = True,
) -> str | None:
    """Why a task of this kind cannot start now, or None if some GPU has room for it; without
    ``vram`` only how busy the GPUs are counts (the VRAM arbiter decides the memory)."""
    if not handler.needs_gpu:
        return None
    if report is None or not report.available or not report.gpus:
        return f"no GPU available ({report.reason if report else 'not read yet'})"
    need_gb = max(settings.min_free_vram_gb, handler.vram_gb) if vram else 0.0
    reasons = []
    for gpu in report.gpus:
        busy = gpu.utilization_percent or 0.0
        free_gb = (gpu.memory_free_bytes or 0) / _GIB
        if busy > settings.max_gpu_utilization:
            reasons.append(
                f"GPU {gpu.index} at {busy:.0f} % (limit {settings.max_gpu_utilization:.0f} %)"
            )
        elif free_gb < need_gb:
            reasons.append(f"GPU {gpu.index} has {free_gb:.1f} GB free (needs {need_gb:.1f} GB)")
        else:
            return None
    return "waiting for resources: " + "; ".join(reasons)


def settings_problem(changes: Mapping[str, Any]) -> str | None:
    """What is wrong with these scheduler settings (type or range), or None."""
    for key, value in changes.items():
        if key == "paused":
            if not isinstance(value, bool):
                return "paused must be true or false"
            continue
        low, high = SETTING_LIMITS[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{key} must be a number"
        if not low <= value <= high:
            return f"{key} must be between {low:g} and {high:g}"
    if "max_concurrent" in changes and changes["max_concurrent"] != int(changes["max_concurrent"]):
        return "max_concurrent must be a whole number"
    return None


class ModelsGate(Protocol):
    """The VRAM arbiter as the queue sees it (the models part sets ``Scheduler.models_gate``)."""

    async def async_admission(self, models: tuple[str, ...], priority: int) -> str | None:
        """Why a task needing ``models`` cannot start now (leases, work in flight, too large),
        or None when they are loaded or can be made to fit by evicting idle models."""

    async def async_acquire(
        self, holder: str, models: tuple[str, ...], *, priority: int, actor: Actor
    ) -> None:
        """Load the models (evicting idle ones) and lease them to ``holder``; a Refusal says
        why not."""

    def release(self, holder: str) -> None:
        """End ``holder``'s leases."""


class PlacedAnswer(Protocol):
    """What a cluster node's worker answered for one attempt."""

    @property
    def node(self) -> str:
        """The node that ran it."""

    @property
    def result(self) -> dict[str, Any] | None:
        """The handler's result."""

    @property
    def error(self) -> str | None:
        """Why the attempt failed."""

    @property
    def permanent(self) -> bool:
        """Whether retrying cannot help."""


PlacedReport = Callable[[str, float | None, str | None], Awaitable[None]]
"""What a placed attempt tells while it runs: its node, and its progress (None: only started)."""


class Placer(Protocol):
    """The cluster's head as the queue sees it (the cluster part sets ``Scheduler.placer``)."""

    def places(self, handler: TaskHandler) -> bool:
        """Whether tasks of this kind run on the cluster's nodes instead of here."""

    async def async_unfit(self, handler: TaskHandler) -> str | None:
        """Why no node could ever run a task of this kind, or None."""

    async def async_held(self, handler: TaskHandler) -> str | None:
        """Why a task of this kind must wait now (no node has the room it needs free, or the
        workers of those that could do not answer), or None: place it."""

    async def async_run(
        self, task: Task, handler: TaskHandler, report: PlacedReport
    ) -> PlacedAnswer:
        """Run one attempt on a node that fits, telling ``report`` its node and progress;
        ``AttemptLostError`` when its node is lost."""

    async def async_take_answers(self, task_ids: Iterable[int]) -> Mapping[int, tuple[int, Any]]:
        """The answers (attempt, PlacedAnswer) of attempts that finished while the queue was
        stopped, by task id."""


class Scheduler:
    """The queue's owner: accepts, runs, retries, cancels, and reports tasks."""

    # Asked instead of the VRAM threshold for kinds that declare their models.
    models_gate: ModelsGate | None = None
    # Where admitted tasks of the kinds it places run, on a cluster's head.
    placer: Placer | None = None

    def __init__(
        self,
        store: TaskStore,
        *,
        handlers: Iterable[TaskHandler],
        probe: GpuProbe,
        bus: EventBus,
        data_dir: Path | None,
        settings: SchedulerSettings | None = None,
        backoff_base_s: float = 30.0,
        backoff_max_s: float = 3600.0,
        stop_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.time,
        max_unfinished: int = MAX_UNFINISHED,
    ) -> None:
        self._store = store
        self._max_unfinished = max_unfinished
        self._handlers = {handler.kind: handler for handler in handlers}
        self._probe = probe
        self._bus = bus
        self._settings_path = None if data_dir is None else data_dir / SETTINGS_FILE
        self.settings = settings or SchedulerSettings()
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._stop_timeout_s = stop_timeout_s
        self._clock = clock
        self._running: dict[int, asyncio.Task[None]] = {}
        # The running tasks that are coordinators (they take no slot).
        self._coordinating: set[int] = set()
        # Set (and replaced) whenever a task finishes, for coordinators waiting on theirs.
        self._settled = asyncio.Event()
        self._cancel_requested: set[int] = set()
        self._stopping = False
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self.last_report: GpuReport | None = None
        # Called once the queue has stopped: what its handlers use may close then.
        self.on_stopped: list[Callable[[], Awaitable[None]]] = []

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds of task this worker accepts."""
        return tuple(sorted(self._handlers))

    def handler(self, kind: str) -> TaskHandler | None:
        """The handler of a kind of task, if this worker has it."""
        return self._handlers.get(kind)

    def add_handlers(self, handlers: Iterable[TaskHandler]) -> None:
        """Run these kinds too (a part built after the queue that queues its own tasks)."""
        for handler in handlers:
            if handler.kind in self._handlers:
                raise ValueError(f"Two handlers for task kind {handler.kind!r}")
            self._handlers[handler.kind] = handler

    @property
    def settled(self) -> asyncio.Event:
        """Set when the next task finishes: take it before looking at tasks, then wait on it
        with ``async_wait_settled``, and a task finishing while you looked is not missed."""
        return self._settled

    async def async_wait_settled(self, within: float, settled: asyncio.Event | None = None) -> None:
        """Wait until some task finishes (succeeded, failed, cancelled) after ``settled`` was
        taken (or from now), at most ``within`` s."""
        settled = settled or self._settled
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await settled.wait()

    async def async_states(self, task_ids: Iterable[int]) -> dict[int, Task]:
        """The tasks with these ids (those that exist), by id."""
        return await self._store.async_many(task_ids)

    # Life cycle

    async def async_start(self) -> None:
        """Open the queue, put back what a crash interrupted, and start dispatching."""
        await self._store.async_open()
        self.settings = await asyncio.get_running_loop().run_in_executor(None, self._load_settings)
        if self.placer is not None:
            await self._reconcile(self.placer)
        for task in await self._store.async_recover():
            _LOGGER.warning("Task %d (%s) was interrupted: %s", task.id, task.kind, task.state)
            self._publish("requeued" if task.state == "queued" else "failed", task)
        self._loop_task = asyncio.create_task(self._dispatch_forever(), name="hydra scheduler")

    async def _reconcile(self, placer: Placer) -> None:
        """Tasks the cluster ran while the queue was stopped: an attempt that finished keeps
        its answer; the others are put back by ``recover``."""
        running = await self._store.async_list(TaskQuery(state="running", limit=MAX_LIST))
        by_id = {task.id: task for task in running}
        for task_id, (attempt, answer) in (await placer.async_take_answers(by_id)).items():
            task = by_id[task_id]
            if attempt != task.attempts:
                continue
            _LOGGER.warning(
                "Task %d (%s) finished on %s meanwhile", task.id, task.kind, answer.node
            )
            task = await self._store.async_update(task.id, node=answer.node)
            if answer.error is None:
                await self._finish(task, "succeeded", result=answer.result)
            elif answer.permanent:
                await self._finish(task, "failed", error=answer.error)
            else:
                await self._failed_attempt(task, answer.error)

    async def async_stop(self) -> None:
        """Stop dispatching; let running tasks finish, or put them back after the timeout."""
        self._stopping = True
        self._settle()  # coordinators waiting for their tasks look again, and stop
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if self._running:
            _, pending = await asyncio.wait(
                list(self._running.values()), timeout=self._stop_timeout_s
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._store.async_close()
        for stopped in self.on_stopped:
            try:
                await stopped()
            except Exception:
                _LOGGER.exception("Closing after the queue stopped failed")

    # Requests

    async def async_enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        actor: Actor,
        priority: int = DEFAULT_PRIORITY,
        max_attempts: int | None = None,
    ) -> Task:
        """Validate and queue a task."""
        handler = self._handlers.get(kind)
        if handler is None:
            accepted = ", ".join(self.kinds) or "none"
            raise UnknownKindError(f"Unknown task kind {kind!r}; this worker accepts: {accepted}")
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise InvalidPriorityError("priority must be a whole number")
        if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
            raise InvalidPriorityError(
                f"priority must be between {MIN_PRIORITY} and {MAX_PRIORITY} (higher runs first)"
            )
        attempts = handler.max_attempts if max_attempts is None else max_attempts
        if not isinstance(attempts, int) or not 1 <= attempts <= MAX_ATTEMPTS_LIMIT:
            raise InvalidPriorityError(f"max_attempts must be between 1 and {MAX_ATTEMPTS_LIMIT}")
        if not isinstance(payload, dict):
            raise InvalidPayloadError("payload must be an object")
        try:
            clean = handler.validate(payload)
        except PayloadError as err:
            raise InvalidPayloadError(f"Invalid {kind} payload: {err}") from err
        if (
            self.placer is not None
            and self.placer.places(handler)
            and (problem := await self.placer.async_unfit(handler)) is not None
        ):
            raise NoNodeFitsError(problem)
        task = await self._store.async_add(
            kind=kind,
            payload=clean,
            priority=priority,
            max_attempts=attempts,
            actor=actor,
            limit=self._max_unfinished,
        )
        if task is None:
            raise QueueFullError(
                f"The queue already holds {self._max_unfinished} unfinished tasks; let some"
                " finish or cancel some first"
            )
        self._publish("queued", task)
        self._wake.set()
        return task

    async def async_get(self, task_id: int) -> Task:
        """One task, or TaskNotFoundError."""
        task = await self._store.async_get(task_id)
        if task is None:
            raise TaskNotFoundError(f"No task {task_id}")
        return task

    async def async_list(self, query: TaskQuery) -> list[Task]:
        """Tasks, newest first."""
        return await self._store.async_list(query)

    async def async_finished(self, since: float, until: float, limit: int) -> list[Task]:
        """Tasks that finished in ``since``..``until``: the latest ``limit``, oldest first."""
        return await self._store.async_finished(since, until, limit)

    async def async_cancel(self, task_id: int) -> Task:
        """Cancel a queued, waiting or running task."""
        task = await self.async_get(task_id)
        if task.finished:
            raise TaskStateError(f"Task {task_id} has already {task.state}; nothing to cancel")
        self._cancel_requested.add(task_id)
        if (running := self._running.get(task_id)) is None:
            # Only if it has not started: the queue may be claiming it right now.
            cancelled = await self._store.async_claim(
                task_id, state="cancelled", finished_at=self._clock(), waiting_reason=None
            )
            if cancelled is not None:
                self._cancel_requested.discard(task_id)
                self._publish("cancelled", cancelled)
                self._settle()
                return cancelled
            # The queue claimed it as this looked: it ends it before its handler runs (see
            # _start), or it is running by now and is cancelled as such.
            while (running := self._running.get(task_id)) is None:
                if (task := await self.async_get(task_id)).finished:
                    self._cancel_requested.discard(task_id)
                    return task
                await asyncio.sleep(_CANCEL_POLL_S)
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        if self._running.get(task_id) is running:
            # Cancelled before its first step: _run never began, so nothing recorded the end
            # (its finally forgets it); the task ends here.
            self._running.pop(task_id)
            self._coordinating.discard(task_id)
            self._cancel_requested.discard(task_id)
            await self._finish(await self.async_get(task_id), "cancelled", error="cancelled")
            self._wake.set()
        return await self.async_get(task_id)

    async def async_retry(self, task_id: int) -> Task:
        """Queue a failed or cancelled task again, with a fresh set of attempts."""
        task = await self.async_get(task_id)
        if task.state not in ("failed", "cancelled"):
            raise TaskNotRetryableError(
                f"Task {task_id} is {task.state}; only failed or cancelled tasks can be retried"
            )
        task = await self._store.async_update(
            task_id,
            state="queued",
            attempts=0,
            next_attempt_at=None,
            error=None,
            result=None,
            progress=0.0,
            progress_message=None,
            finished_at=None,
        )
        self._publish("queued", task)
        self._wake.set()
        return task

    async def async_update_settings(self, **changes: Any) -> SchedulerSettings:
        """Change thresholds, concurrency or the pause switch; kept across restarts."""
        unknown = sorted(set(changes) - set(SchedulerSettings.__dataclass_fields__))
        if unknown:
            raise InvalidSettingError(f"Unknown setting(s): {', '.join(unknown)}")
        if (problem := settings_problem(changes)) is not None:
            raise InvalidSettingError(problem)
        self.settings = replace(self.settings, **changes)
        await asyncio.get_running_loop().run_in_executor(None, self._save_settings)
        self._bus.publish(EVENT_SCHEDULER, dump(self.settings))
        self._wake.set()
        return self.settings

    def wake(self) -> None:
        """Look at the queue now (the placer saw a node's room change)."""
        self._wake.set()

    async def async_counts(self) -> dict[str, int]:
        """Tasks per state; succeeded/failed/cancelled counted since local midnight."""
        today = time.localtime(self._clock())
        midnight = time.mktime((*today[:3], 0, 0, 0, 0, 0, -1))
        counts = await self._store.async_counts(midnight)
        return {state: counts.get(state, 0) for state in TASK_STATES}

    # Dispatching

    async def _dispatch_forever(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.async_dispatch()
            except Exception:
                _LOGGER.exception("Dispatching tasks failed")
            timeout = self.settings.poll_interval_s
            next_retry = await self._store.async_next_attempt_at()
            if next_retry is not None:
                timeout = min(timeout, max(next_retry - self._clock(), 0.05))
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation that
            # arrives as the wake-up does (a task queued just before a stop), and the stop hangs.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def async_dispatch(self) -> list[Task]:
        """One decision: start every runnable task that fits now; return those started."""
        if self.settings.paused or self._stopping:
            return []
        free = self.settings.max_concurrent - (len(self._running) - len(self._coordinating))
        coordinators = any(handler.coordinator for handler in self._handlers.values())
        if free <= 0 and not coordinators:
            return []
        now = self._clock()
        candidates = await self._store.async_ready(now, max(free, 0) + _LOOKAHEAD)
        if not candidates:
            return []
        if any(self._handlers[c.kind].needs_gpu for c in candidates if c.kind in self._handlers):
            self.last_report = await self._probe.async_read()
        started: list[Task] = []
        slots_taken = 0
        for task in candidates:
            handler = self._handlers.get(task.kind)
            if handler is not None and handler.coordinator:
                if (coordinator := await self._start(task, handler)) is not None:
                    started.append(coordinator)
                continue
            if slots_taken >= free:
                if coordinators:
                    continue  # a coordinator further on still starts
                break
            if await self._held(task, handler) or handler is None:
                continue
            if (begun := await self._start(task, handler)) is not None:
                started.append(begun)
                slots_taken += 1
        return started

    async def _held(self, task: ReadyTask, handler: TaskHandler | None) -> bool:
        """Whether the task must wait (no handler here, or the GPU gate); recorded once."""
        if handler is None:
            reason: str | None = f"no handler for {task.kind!r} on this worker"
        elif self.placer is not None and self.placer.places(handler):
            # The placer says why no node can take it now; Ray holds it until the node it is
            # placed on has the resources it asks for.
            reason = await self.placer.async_held(handler)
        else:
            gate = self.models_gate if handler.models else None
            reason = gate_reason(self.settings, self.last_report, handler, vram=gate is None)
            if reason is None and gate is not None:
                reason = await gate.async_admission(handler.models, task.priority)
        if reason is None:
            return False
        if (task.state, task.waiting_reason) != ("waiting", reason):
            waiting = await self._store.async_update(
                task.id, state="waiting", waiting_reason=reason
            )
            self._publish("waiting", waiting)
        return True

    async def _start(self, ready: ReadyTask, handler: TaskHandler) -> Task | None:
        # Only if still queued or waiting: a cancel may have come since the task was read.
        task = await self._store.async_claim(
            ready.id,
            state="running",
            attempts=ready.attempts + 1,
            started_at=self._clock(),
            waiting_reason=None,
            next_attempt_at=None,
            progress=0.0,
            progress_message=None,
        )
        if task is None:
            return None
        if task.id in self._cancel_requested:
            # Cancelled while the queue claimed it: it ends before its handler runs.
            self._cancel_requested.discard(task.id)
            await self._finish(task, "cancelled", error="cancelled")
            return None
        self._publish("started", task)
        if handler.coordinator:
            self._coordinating.add(task.id)
        self._running[task.id] = asyncio.create_task(
            self._run(task, handler), name=f"hydra task {task.id} {task.kind}"
        )
        return task

    async def _run(self, task: Task, handler: TaskHandler) -> None:
        context = TaskContext(
            task_id=task.id,
            attempt=task.attempts,
            _report=partial(self._progress, task.id),
            _cancelled=lambda: task.id in self._cancel_requested or self._stopping,
            _resources=lambda: self.last_report,
            _stopping=lambda: self._stopping,
            priority=task.priority,
        )
        holder = f"task {task.id}"
        placer = self.placer if self.placer is not None and self.placer.places(handler) else None
        try:
            if placer is not None:
                task, result = await self._run_placed(placer, task, handler)
            else:
                if not await self._acquire_models(task, handler, holder):
                    return
                result = await handler.run(task.payload, context)
            json.dumps(result)  # a result that cannot be stored is the handler's failure
        except (asyncio.CancelledError, TaskCancelledError):
            await self._interrupted(task)
        except AttemptLostError as err:
            await self._lost_attempt(task, err)
        except PermanentTaskError as err:
            await self._finish(task, "failed", error=str(err) or type(err).__name__)
        except Exception as err:
            _LOGGER.warning("Task %d (%s) failed: %s", task.id, task.kind, err, exc_info=True)
            # A refusal's message is written for people already; other errors name their type.
            message = (
                err.message
                if isinstance(err, Refusal)
                else str(err)
                if isinstance(err, PlacedTaskError)
                else f"{type(err).__name__}: {err}"
            )
            await self._failed_attempt(task, message)
        else:
            await self._finish(task, "succeeded", result=result)
        finally:
            if placer is None and handler.models and self.models_gate is not None:
                self.models_gate.release(holder)
            self._running.pop(task.id, None)
            self._coordinating.discard(task.id)
            self._cancel_requested.discard(task.id)
            self._wake.set()

    async def _run_placed(
        self, placer: Placer, task: Task, handler: TaskHandler
    ) -> tuple[Task, dict[str, Any]]:
        """One attempt on a cluster node: the task as recorded with its node, and the result."""

        async def report(node: str, percent: float | None, message: str | None) -> None:
            changes: dict[str, Any] = {"node": node}
            if percent is not None:
                changes.update(progress=percent, progress_message=message)
            self._publish("progress", await self._store.async_update(task.id, **changes))

        answer = await placer.async_run(task, handler, report)
        task = await self._store.async_update(task.id, node=answer.node)
        if answer.error is not None:
            if answer.permanent:
                raise PermanentTaskError(answer.error)
            raise PlacedTaskError(answer.error)
        return task, answer.result or {}

    async def _acquire_models(self, task: Task, handler: TaskHandler, holder: str) -> bool:
        """Load and lease the task's models; if the arbiter refuses (another load took the room
        first), the task waits again with the reason, this attempt not counted."""
        if not handler.models or self.models_gate is None:
            return True
        try:
            await self.models_gate.async_acquire(
                holder, handler.models, priority=task.priority, actor=task.actor
            )
        except Refusal as err:
            if err.status not in _NO_ROOM:
                raise  # the model server failed: an attempt that failed, retried with backoff
            waiting = await self._store.async_update(
                task.id,
                state="waiting",
                waiting_reason=f"models: {err.message}",
                attempts=max(task.attempts - 1, 0),
                started_at=None,
            )
            self._publish("waiting", waiting)
            return False
        return True

    async def _interrupted(self, task: Task) -> None:
        if task.id in self._cancel_requested:
            await self._finish(task, "cancelled", error="cancelled")
            return
        # Stopping: the task goes back to the queue; this attempt was not its fault.
        task = await self._store.async_update(
            task.id, state="queued", attempts=max(task.attempts - 1, 0), progress=0.0
        )
        self._publish("requeued", task)

    async def _lost_attempt(self, task: Task, err: AttemptLostError) -> None:
        error = str(err) or type(err).__name__
        _LOGGER.warning("Task %d (%s): %s", task.id, task.kind, error)
        if not err.started:
            # Not begun: not counted, and tried again in a moment (the cluster may not know
            # yet that the node is gone, and place it there again).
            task = await self._store.async_update(
                task.id,
                state="queued",
                attempts=max(task.attempts - 1, 0),
                error=error,
                next_attempt_at=self._clock() + _UNREACHABLE_RETRY_S,
            )
            self._publish("requeued", task)
            return
        if task.attempts >= task.max_attempts:
            await self._finish(task, "failed", error=error)
            return
        task = await self._store.async_update(task.id, state="queued", error=error)
        self._publish("retrying", task)

    async def _failed_attempt(self, task: Task, error: str) -> None:
        if task.attempts >= task.max_attempts:
            await self._finish(task, "failed", error=error)
            return
        # Exponential backoff with jitter, so retries of many tasks do not arrive together.
        delay = min(self._backoff_base_s * 2 ** (task.attempts - 1), self._backoff_max_s)
        delay *= 0.5 + random.random()  # noqa: S311 - jitter, not security
        task = await self._store.async_update(
            task.id, state="queued", error=error, next_attempt_at=self._clock() + delay
        )
        self._publish("retrying", task)

    async def _finish(
        self,
        task: Task,
        state: str,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        changes: dict[str, Any] = {"state": state, "finished_at": self._clock(), "error": error}
        if state == "succeeded":
            changes.update(result=result, progress=100.0)
        task = await self._store.async_update(task.id, **changes)
        self._publish(state, task)
        self._settle()

    def _settle(self) -> None:
        settled, self._settled = self._settled, asyncio.Event()
        settled.set()

    async def _progress(self, task_id: int, percent: float, message: str | None) -> None:
        task = await self._store.async_update(task_id, progress=percent, progress_message=message)
        self._publish("progress", task)

    def _publish(self, event: str, task: Task) -> None:
        self._bus.publish(EVENT_TASK, {"event": event, "task": dump(task)})

    # Settings file

    def _load_settings(self) -> SchedulerSettings:
        if self._settings_path is None:
            return self.settings
        return load_typed_settings(self._settings_path, self.settings, settings_problem)

    def _save_settings(self) -> None:
        if self._settings_path is not None:
            save_settings(self._settings_path, dump(self.settings))
