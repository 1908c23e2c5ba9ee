"""The VRAM arbiter: what every model server holds, and loads that make room by evicting.

It keeps one record per model of every backend (Hydra's own, Ollama, llama.cpp, ComfyUI):
expected size, measured size (the GPU probe's used memory before and after a load), measured
load times, priority, pin, TTL, leases and work in flight. A load takes a turn (one decision
at a time, highest priority first), reads the GPU, asks the policy what to evict, unloads that
(each eviction audited and announced), waits until the probe shows the memory back, then loads.
A look at every server every ``models_refresh_interval`` picks up what others loaded (Home
Assistant's Ollama with ``keep_alive: -1``), ends leases and unloads models past their TTL.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
import contextlib
from dataclasses import dataclass, field
import fnmatch
import logging
import sqlite3
import statistics
import time
from typing import Any

from ..audit import PENDING, AuditLog
from ..background import cancel, repeat
from ..errors import Refusal
from ..events import EventBus
from ..gpu import GpuProbe
from ..gpu.models import GpuInfo
from ..models import EVENT_AUDIT, Actor, AuditEntry
from ..wire import dump
from .backend import BackendError, ModelBackend
from .models import (
    AUDIT_EVICT,
    AUDIT_UNLOAD,
    EVENT_MODEL,
    MAX_LEASE_S,
    PRIORITY_BACKGROUND,
    BackendInfo,
    Blocker,
    Eviction,
    Lease,
    LoadPlan,
    LoadResult,
    ModelInfo,
    ModelsStatus,
)
from .options import ModelsOptions
from .policy import BLOCKED, EVICT, FITS, LOADED, TOO_LARGE, Loaded, decide
from .turns import Turns

_LOGGER = logging.getLogger(__name__)

_GIB = 1024**3
# How often the GPU is read while waiting for an evicted model's memory to come back.
_FREE_POLL_S = 0.05
# Loads whose times make the median.
_LOAD_TIMES = 20
# Reload cost before a load was measured: seconds per GiB read from disk.
_GUESS_S_PER_GIB = 0.5
# The longest the queue waits at a start for the first look at the model servers.
_FIRST_LOOK_TIMEOUT_S = 60.0
_SYSTEM = Actor(type="self_heal", name="VRAM arbiter")


class ModelNotFoundError(Refusal, code="model_not_found", status=404):
    """No model by that id (or name) on any backend."""


class ModelBlockedError(Refusal, code="model_blocked", status=409):
    """It would fit, but the models in the way are leased, busy, or outrank the load."""


class InsufficientVramError(Refusal, code="insufficient_vram", status=507):
    """It cannot fit even with every model that may be evicted unloaded."""


class VramNotReleasedError(Refusal, code="vram_not_released", status=503):
    """Evicted models' memory did not show free on the GPU in time."""


class AuditUnavailableError(Refusal, code="audit_unavailable", status=503):
    """The audit log cannot be written, so no model is evicted."""


@dataclass(slots=True, kw_only=True)
class _Record:
    """One model and all the arbiter knows of it."""

    id: str
    name: str
    backend: ModelBackend
    estimated: int | None
    priority: int
    pinned: bool
    ttl_s: float
    measured: int | None = None
    load_times: deque[float] = field(default_factory=lambda: deque(maxlen=_LOAD_TIMES))
    loaded: bool = False
    # Room made but the memory not taken yet (ComfyUI before its prompt, one of Hydra's own
    # models while it loads): counted as used until the backend shows the model.
    reserved: bool = False
    reported: int | None = None
    backend_expires_at: float | None = None
    last_used: float | None = None
    in_flight: int = 0
    leases: dict[str, float] = field(default_factory=dict)
    # When the arbiter last loaded or unloaded it (monotonic): a look at the server that began
    # before then saw the server as it was, and must not undo it.
    changed: float = 0.0

    def mark(self, *, loaded: bool, reserved: bool = False) -> None:
        """The arbiter loaded (or reserved) or unloaded it."""
        self.loaded, self.reserved = loaded, reserved
        if not loaded:
            self.reported = None
            self.leases.clear()
        self.changed = time.monotonic()

    def expected(self, default: int) -> int:
        """The bytes it takes (loaded) or will take (not)."""
        if self.loaded and self.reported:
            return self.reported
        return self.measured or self.estimated or default

    def busy(self) -> int:
        """Work using it now, the arbiter's count and the backend's."""
        return self.in_flight + self.backend.in_flight(self.name)

    def lease(self) -> Lease | None:
        """The lease that lasts longest."""
        if not self.leases:
            return None
        holder = max(self.leases, key=self.leases.__getitem__)
        return Lease(holder=holder, until=self.leases[holder])

    def reload_cost(self, default: int) -> float:
        """Seconds a reload would take: the median of measured loads, else a guess by size."""
        if self.load_times:
            return statistics.median(self.load_times)
        return self.expected(default) / _GIB * _GUESS_S_PER_GIB


class ModelArbiter:
    """The models part's service."""

    def __init__(
        self,
        options: ModelsOptions,
        *,
        backends: Sequence[ModelBackend],
        probe: GpuProbe,
        bus: EventBus,
        audit: AuditLog,
        node: str,
    ) -> None:
        self.options = options
        self.backends = {backend.name: backend for backend in backends}
        self._probe = probe
        self._bus = bus
        self._audit = audit
        self._node = node
        self._records: dict[str, _Record] = {}
        self._errors: dict[str, str | None] = {}
        self._turns = Turns()
        self._default = int(options.models_default_vram_gb * _GIB)
        self._reserve = int(options.models_reserve_gb * _GIB)
        self._task: asyncio.Task[None] | None = None
        # Set once every server has been looked at (answered or failed): until then the arbiter
        # does not know ComfyUI's checkpoint, and a task needing it would take no lease.
        self._looked = asyncio.Event()
        self._gpu: GpuInfo | None = None

    # Lifecycle

    async def async_start(self) -> None:
        """Look at every server now and every refresh interval, in the background: a server
        that does not answer must not hold the worker's start up."""
        self._task = asyncio.create_task(
            repeat(
                self._tick,
                self.options.models_refresh_interval,
                logger=_LOGGER,
                failure="Looking at the model servers failed",
                at_once=True,
            ),
            name="hydra models refresh",
        )

    async def async_stop(self) -> None:
        """Stop looking."""
        await cancel(self._task)
        self._task = None

    async def _tick(self) -> None:
        await self.async_refresh()
        await self.async_expire()

    # What there is

    async def async_refresh(self) -> None:
        """Ask every backend what it offers and holds; a backend that fails is marked so."""
        try:
            await asyncio.gather(*(self._refresh(backend) for backend in self.backends.values()))
        finally:
            self._looked.set()

    async def _first_look(self) -> None:
        """Until the servers were looked at once (if the arbiter runs): a task admitted before
        then would find none of its models to lease. Bounded: a server that hangs answers
        within its client's timeout, and the queue must not wait forever."""
        if self._task is None or self._looked.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_FIRST_LOOK_TIMEOUT_S):
                await self._looked.wait()

    async def _refresh(self, backend: ModelBackend) -> None:
        started = time.monotonic()
        try:
            offered = await backend.async_models()
            running = await backend.async_running()
        except BackendError as err:
            if self._errors.get(backend.name) != err.message:
                _LOGGER.warning("Model server %s: %s", backend.name, err.message)
            self._errors[backend.name] = err.message
            for record in self._of(backend):
                record.loaded = record.reserved = False
            return
        self._errors[backend.name] = None
        now = time.time()
        for model in offered:
            model_id = f"{backend.name}/{model.name}"
            if model_id not in self._records:
                self._records[model_id] = self._new_record(backend, model.name, model.size_bytes)
        for record in self._of(backend):
            if record.changed >= started:
                continue
            seen = running.get(record.name)
            if seen is not None:
                if not record.loaded:
                    record.last_used = record.last_used or now
                record.loaded, record.reserved = True, False
                record.reported = seen.vram_bytes or None
                record.backend_expires_at = seen.expires_at
            elif not (record.reserved and backend.loads_on_demand):
                record.loaded = record.reserved = False
                record.reported = record.backend_expires_at = None
            used = backend.last_used(record.name)
            if used is not None:
                record.last_used = used

    def _new_record(self, backend: ModelBackend, name: str, size: int | None) -> _Record:
        model_id = f"{backend.name}/{name}"
        priority = backend.priority(name)
        # Hydra's own models unload themselves when idle; the TTL is for the servers' models.
        ttl = 0.0 if backend.unloads_when_idle else self.options.models_ttl
        if backend.loads_on_demand:
            size = int(self.options.comfyui_vram_gb * _GIB)
        if (gb := _rule(self.options.models_sizes, model_id)) is not None:
            size = int(gb * _GIB)
        if (rank := _rule(self.options.models_priorities, model_id)) is not None:
            priority = max(0, min(100, int(rank)))
        return _Record(
            id=model_id,
            name=name,
            backend=backend,
            estimated=size,
            priority=priority,
            pinned=any(
                fnmatch.fnmatchcase(model_id, pattern) for pattern in self.options.models_pinned
            ),
            ttl_s=ttl,
        )

    def _of(self, backend: ModelBackend) -> list[_Record]:
        return [record for record in self._records.values() if record.backend is backend]

    def resolve(self, ref: str) -> str:
        """A model's id from its id, its name on one backend, or a backend's only model."""
        if ref in self._records:
            return ref
        found = [
            record.id
            for record in self._records.values()
            if record.name in (ref, f"{ref}:latest")  # Ollama's default tag
            or (record.backend.name == ref and len(self._of(record.backend)) == 1)
        ]
        if len(found) != 1:
            raise ModelNotFoundError(
                f"No model {ref!r}" if not found else f"{ref!r} names {len(found)} models"
            )
        return found[0]

    def _record(self, ref: str) -> _Record:
        return self._records[self.resolve(ref)]

    async def _find(self, ref: str) -> _Record:
        """The record of ``ref``, looking at the servers again if it is not known (yet): a
        model pulled since the last look, or the worker just started."""
        try:
            return self._record(ref)
        except ModelNotFoundError:
            await self.async_refresh()
            return self._record(ref)

    def info(self, record: _Record) -> ModelInfo:
        """A record as the API shows it."""
        expires = None
        if record.loaded and record.ttl_s and record.last_used is not None:
            expires = record.last_used + record.ttl_s
        return ModelInfo(
            id=record.id,
            name=record.name,
            backend=record.backend.kind,
            node=record.backend.node or self._node,
            loaded=record.loaded,
            estimated_vram_bytes=record.estimated,
            measured_vram_bytes=record.measured,
            vram_bytes=record.expected(self._default),
            load_seconds_p50=statistics.median(record.load_times) if record.load_times else None,
            priority=record.priority,
            pinned=record.pinned,
            ttl_s=record.ttl_s,
            last_used=record.last_used,
            expires_at=expires,
            in_flight=record.busy(),
            lease=record.lease(),
            backend_expires_at=record.backend_expires_at,
        )

    async def async_status(self, *, loaded_only: bool = False) -> ModelsStatus:
        """Every model (or the loaded ones), the backends, and the GPU as read now."""
        self._end_leases()
        gpu = await self._read_gpu()
        return ModelsStatus(
            models=tuple(
                self.info(record)
                for record in sorted(self._records.values(), key=lambda record: record.id)
                if record.loaded or not loaded_only
            ),
            backends=tuple(
                BackendInfo(
                    name=backend.name,
                    kind=backend.kind,
                    url=backend.url,
                    reachable=self._errors.get(backend.name) is None,
                    error=self._errors.get(backend.name),
                )
                for backend in self.backends.values()
            ),
            gpu_index=self.options.models_gpu,
            vram_total_bytes=gpu.memory_total_bytes if gpu else None,
            vram_free_bytes=self._free(gpu),
        )

    # The GPU

    async def _read_gpu(self) -> GpuInfo | None:
        report = await self._probe.async_read()
        self._gpu = next((gpu for gpu in report.gpus if gpu.index == self.options.models_gpu), None)
        return self._gpu

    def _free(self, gpu: GpuInfo | None) -> int | None:
        """Free bytes, less the room promised to models that have not taken it yet."""
        if gpu is None or gpu.memory_free_bytes is None:
            return None
        promised = sum(
            max(record.expected(self._default) - (record.reported or 0), 0)
            for record in self._records.values()
            if record.reserved
        )
        return gpu.memory_free_bytes - promised

    # Deciding

    def _views(self, *, exclude: _Record) -> list[Loaded]:
        return [
            Loaded(
                id=record.id,
                vram_bytes=record.expected(self._default),
                priority=record.priority,
                reload_cost_s=record.reload_cost(self._default),
                last_used=record.last_used or 0.0,
                pinned=record.pinned,
                lease_holder=lease.holder if (lease := record.lease()) else None,
                in_flight=record.busy(),
            )
            for record in self._records.values()
            if record.loaded and record is not exclude
        ]

    async def _plan(self, record: _Record, priority: int) -> LoadPlan:
        self._end_leases()
        need = record.expected(self._default) + self._reserve
        if record.loaded:
            return LoadPlan(model=record.id, verdict=LOADED, need_bytes=need, free_bytes=0)
        free = self._free(await self._read_gpu())
        if free is None:  # no GPU to arbitrate: everything fits
            return LoadPlan(model=record.id, verdict=FITS, need_bytes=need, free_bytes=0)
        decision = decide(self._views(exclude=record), need=need, free=free, priority=priority)
        return LoadPlan(
            model=record.id,
            verdict=decision.verdict,
            need_bytes=need,
            free_bytes=free,
            evict=tuple(model.id for model in decision.evict),
            blocked_by=decision.blocked_by,
        )

    async def async_plan(self, ref: str, *, priority: int = PRIORITY_BACKGROUND) -> LoadPlan:
        """Whether ``ref`` fits now, what it would evict, or what blocks it (nothing changes)."""
        return await self._plan(await self._find(ref), priority)

    # Loading

    async def async_load(
        self,
        ref: str,
        *,
        actor: Actor,
        ttl_s: float | None = None,
        lease: tuple[str, float] | None = None,
        priority: int = PRIORITY_BACKGROUND,
    ) -> LoadResult:
        """Load ``ref``, evicting what the policy chooses; refusals: ModelNotFoundError (404),
        ModelBlockedError (409), InsufficientVramError (507), VramNotReleasedError (503),
        BackendError (502)."""
        started = time.perf_counter()
        record = await self._find(ref)
        async with self._turns.turn(priority):
            result = await self._load(record, actor=actor, ttl_s=ttl_s, priority=priority)
        if lease is not None:
            holder, seconds = lease
            record.leases[holder] = time.time() + min(seconds, MAX_LEASE_S)
        record.last_used = time.time()
        return LoadResult(
            model=self.info(record),
            evicted=result.evicted,
            already_loaded=result.already_loaded,
            wait_seconds=result.wait_seconds,
            load_seconds=result.load_seconds,
            seconds=time.perf_counter() - started,
        )

    async def _load(
        self, record: _Record, *, actor: Actor, ttl_s: float | None, priority: int
    ) -> LoadResult:
        if ttl_s is not None:
            record.ttl_s = ttl_s
        if record.loaded:
            return LoadResult(model=self.info(record), already_loaded=True)
        evicted, waited = await self._make_room(record, actor=actor, priority=priority)
        gpu = self._gpu
        used_before = gpu.memory_used_bytes if gpu else None
        loading = time.perf_counter()
        try:
            await record.backend.async_load(record.name, record.ttl_s)
        except BackendError as err:
            record.mark(loaded=False)
            self._publish("load_failed", record, error=err.message)
            raise
        load_seconds = time.perf_counter() - loading
        record.mark(loaded=True, reserved=record.backend.loads_on_demand)
        if not record.backend.loads_on_demand:
            record.load_times.append(load_seconds)
            gpu = await self._read_gpu()
            if used_before is not None and gpu is not None and gpu.memory_used_bytes is not None:
                delta = gpu.memory_used_bytes - used_before
                if delta > 0:
                    record.measured = delta
        record.last_used = time.time()
        self._publish("loaded", record, evicted=[dump(eviction) for eviction in evicted])
        return LoadResult(
            model=self.info(record),
            evicted=evicted,
            wait_seconds=waited,
            load_seconds=load_seconds,
        )

    async def _make_room(
        self, record: _Record, *, actor: Actor, priority: int
    ) -> tuple[tuple[Eviction, ...], float]:
        """Evict what the policy says (the turn held); the evictions and the seconds waited."""
        plan = await self._plan(record, priority)
        refusal: Refusal | None = None
        if plan.verdict == BLOCKED:
            refusal = ModelBlockedError(
                f"{record.id} would fit if {', '.join(b.id for b in plan.blocked_by)} were"
                " unloaded, but they are leased, busy or outrank this load"
            )
        elif plan.verdict == TOO_LARGE:
            refusal = InsufficientVramError(
                f"{record.id} needs {plan.need_bytes / _GIB:.1f} GB; not even unloading every"
                " model that may be unloaded frees that much"
            )
        if refusal is not None:
            refusal.details = {"plan": dump(plan)}
            raise refusal
        if plan.verdict != EVICT:
            return (), 0.0
        evictions = []
        for model_id in plan.evict:
            evictions.append(await self._evict(self._records[model_id], record, actor))
        waiting = time.perf_counter()
        await self._wait_free(plan.need_bytes)
        return tuple(evictions), time.perf_counter() - waiting

    async def _evict(self, victim: _Record, room_for: _Record, actor: Actor) -> Eviction:
        size = victim.expected(self._default)
        pending = await self._begin(actor, victim, AUDIT_EVICT, f"room for {room_for.id}")
        before = self._free(self._gpu)
        try:
            await victim.backend.async_unload(victim.name)
        except BackendError as err:
            await self._settle(pending, "failed", err.message)
            raise
        victim.mark(loaded=False)
        await self._settle(pending, "ok", f"{size / _GIB:.2f} GB")
        after = self._free(await self._read_gpu())
        freed = after - before if after is not None and before is not None else None
        self._publish("evicted", victim, room_for=room_for.id)
        return Eviction(id=victim.id, vram_bytes=size, freed_bytes=freed)

    async def _wait_free(self, need: int) -> None:
        """Until the GPU shows ``need`` bytes free; VramNotReleasedError after the timeout."""
        deadline = time.monotonic() + self.options.models_free_timeout
        while True:
            free = self._free(await self._read_gpu())
            if free is None or free >= need:
                return
            if time.monotonic() >= deadline:
                raise VramNotReleasedError(
                    f"The GPU shows {free / _GIB:.1f} GB free {self.options.models_free_timeout:g}"
                    f" s after evicting; {need / _GIB:.1f} GB are needed"
                )
            await asyncio.sleep(_FREE_POLL_S)

    async def async_make_room(self, ref: str, priority: int) -> None:
        """Room for a model a request is about to load by itself (one of Hydra's own): evict
        what must go, and reserve the room until the model shows as loaded."""
        record = await self._find(ref)
        async with self._turns.turn(priority):
            if record.loaded:
                return
            await self._make_room(record, actor=_SYSTEM, priority=priority)
            record.mark(loaded=True, reserved=True)
            record.last_used = time.time()

    # Unloading

    async def async_unload(
        self, ref: str | None, *, actor: Actor, force: bool = False
    ) -> tuple[list[str], list[Blocker]]:
        """Unload one model (``ref``) or every loaded one (None); leased and pinned ones only
        when forced, never one with work in flight. The ids unloaded, and those kept."""
        records = [await self._find(ref)] if ref is not None else list(self._records.values())
        unloaded: list[str] = []
        kept: list[Blocker] = []
        async with self._turns.turn(100):
            self._end_leases()
            for record in records:
                if not record.loaded:
                    continue
                reason = None
                if record.busy():
                    reason = "in_flight"
                elif not force and record.lease():
                    reason = "leased"
                elif not force and record.pinned and ref is None:
                    reason = "pinned"
                if reason is not None:
                    lease = record.lease()
                    kept.append(
                        Blocker(
                            id=record.id,
                            reason=reason,
                            vram_bytes=record.expected(self._default),
                            holder=lease.holder if lease else None,
                        )
                    )
                    continue
                await self._unload(record, actor, AUDIT_UNLOAD, "asked", "unloaded")
                unloaded.append(record.id)
        return unloaded, kept

    async def _unload(
        self, record: _Record, actor: Actor, action: str, reason: str, event: str
    ) -> None:
        pending = await self._begin(actor, record, action, reason)
        try:
            await record.backend.async_unload(record.name)
        except BackendError as err:
            await self._settle(pending, "failed", err.message)
            raise
        record.mark(loaded=False)
        await self._settle(pending, "ok")
        self._publish(event, record)

    async def async_expire(self) -> list[str]:
        """Unload the models past their TTL that nothing holds; the ids unloaded."""
        self._end_leases()
        now = time.time()
        expired = []
        for record in list(self._records.values()):
            if not (record.loaded and record.ttl_s and record.last_used is not None):
                continue
            if record.pinned or record.leases or record.busy():
                continue
            if record.last_used + record.ttl_s > now:
                continue
            async with self._turns.turn(0):
                if record.loaded and not record.busy():
                    await self._unload(
                        record, _SYSTEM, AUDIT_UNLOAD, f"unused for {record.ttl_s:g} s", "expired"
                    )
                    expired.append(record.id)
        return expired

    # Leases and work in flight

    def _end_leases(self) -> None:
        now = time.time()
        for record in self._records.values():
            for holder, until in list(record.leases.items()):
                if until <= now:
                    del record.leases[holder]

    def release(self, holder: str) -> None:
        """End every lease ``holder`` has."""
        for record in self._records.values():
            # The holder used it until now: its idle time (TTL, least recent use) starts here.
            if record.leases.pop(holder, None) is not None:
                record.last_used = time.time()

    @contextlib.asynccontextmanager
    async def use(self, ref: str) -> AsyncIterator[None]:
        """Count work on a model as in flight for the body: it is never evicted meanwhile."""
        record = await self._find(ref)
        record.in_flight += 1
        record.last_used = time.time()
        try:
            yield
        finally:
            record.in_flight -= 1
            record.last_used = time.time()

    def _known(self, refs: Iterable[str]) -> list[str]:
        """The ids of the models among ``refs`` the arbiter knows; others are not its to gate."""
        known = []
        for ref in refs:
            with contextlib.suppress(ModelNotFoundError):
                known.append(self.resolve(ref))
        return known

    async def async_admission(self, refs: tuple[str, ...], priority: int) -> str | None:
        """For the task queue's gate: why a task needing ``refs`` must wait, or None."""
        await self._first_look()
        for model_id in self._known(refs):
            plan = await self.async_plan(model_id, priority=priority)
            if plan.verdict == BLOCKED:
                held = ", ".join(f"{b.id} ({b.reason})" for b in plan.blocked_by)
                return f"waiting for room for {model_id}: {held}"
            if plan.verdict == TOO_LARGE:
                return (
                    f"waiting for room for {model_id}: it needs {plan.need_bytes / _GIB:.1f} GB,"
                    f" {plan.free_bytes / _GIB:.1f} GB are free and nothing more may be evicted"
                )
        return None

    async def async_acquire(
        self, holder: str, refs: tuple[str, ...], *, priority: int, actor: Actor
    ) -> None:
        """Load each model for ``holder`` and lease it until ``release(holder)``."""
        await self._first_look()
        for model_id in self._known(refs):
            await self.async_load(
                model_id, actor=actor, priority=priority, lease=(holder, MAX_LEASE_S)
            )

    # Audit and events

    async def _begin(self, actor: Actor, record: _Record, action: str, reason: str) -> AuditEntry:
        try:
            return await self._audit.async_record(
                actor=actor,
                container=f"model:{record.id}",
                action=action,
                result=PENDING,
                reason=reason,
            )
        except (sqlite3.Error, OSError) as err:
            raise AuditUnavailableError(
                f"The audit log cannot be written ({err}); Hydra does not unload unaudited"
            ) from err

    async def _settle(self, pending: AuditEntry, result: str, detail: str | None = None) -> None:
        entry = await self._audit.async_settle(pending, result, detail)
        self._bus.publish(EVENT_AUDIT, dump(entry))

    def _publish(self, event: str, record: _Record, **extra: Any) -> None:
        log = _LOGGER.warning if event == "load_failed" else _LOGGER.info
        log("Model %s %s %s", record.id, event, extra or "")
        self._bus.publish(EVENT_MODEL, {"event": event, "model": dump(self.info(record)), **extra})


def _rule(rules: Iterable[str], model_id: str) -> float | None:
    """The value of the last ``PATTERN=NUMBER`` rule whose pattern matches ``model_id``."""
    found = None
    for rule in rules:
        pattern, _, value = rule.rpartition("=")
        if fnmatch.fnmatchcase(model_id, pattern.strip()):
            with contextlib.suppress(ValueError):
                found = float(value)
    return found
