"""The container service: follows the engine, keeps every container's state, acts and heals.

Each status cycle costs one list request plus one stats request per running container; full
inspects happen only for containers that are new or changed state, and when the engine's event
stream says something happened (start, die, health_status...). Events are pushed to the bus at
once, so Home Assistant hears of a container dying or turning unhealthy within a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
import logging
from pathlib import Path
import sqlite3
from typing import Any

from ..audit import PENDING, AuditLog
from ..background import repeat
from ..errors import Refusal
from ..events import EventBus
from ..models import EVENT_AUDIT, Actor, AuditEntry
from ..settings_file import load_settings, save_settings
from ..wire import dump
from .engine import EngineClient, EngineError, EngineNotFoundError
from .healer import GiveUp, Heal, Healer, Refuse
from .models import (
    CONTAINER_ACTIONS,
    EVENT_CONTAINER,
    EVENT_CONTAINER_REMOVED,
    EVENT_ENGINE,
    EVENT_HEAL_EXHAUSTED,
    EVENT_HEALING,
    ContainerInfo,
    ContainerReport,
    HealingSettings,
)
from .policy import ProtectionPolicy

_LOGGER = logging.getLogger(__name__)

HEALING_FILE = "healing.json"
HEALTH_SETTLE_S = 0.5
SELF_HEAL = Actor(type="self_heal", name="Self-healing")
# Engine events after which a container's state is read again.
_REFRESH_ACTIONS = frozenset(
    {
        "create",
        "start",
        "restart",
        "die",
        "stop",
        "kill",
        "pause",
        "unpause",
        "oom",
        "health_status",
        "rename",
        "update",
    }
)
_GONE_ACTIONS = frozenset({"destroy", "remove"})
# podman's own states, as the Docker API states they stand for. Docker shows a container that is
# being stopped as running until it has exited; podman says "stopping" meanwhile.
_STATE_ALIASES = {
    "stopped": "exited",
    "configured": "created",
    "initialized": "created",
    "stopping": "running",
}
_STOP_ACTIONS = frozenset({"stop", "kill"})
_RUN_ACTIONS = frozenset({"start", "restart", "unpause"})
# What is pushed at once; CPU and memory reach Home Assistant with its regular poll.
_PUSHED_FIELDS = ("id", "state", "health", "exit_code", "restart_count", "protected", "image")


class ContainerActionError(Refusal, code="engine_error", status=502):
    """An action was not carried out; ``entry`` is its audit record (None when even that
    could not be written)."""

    def __init__(self, message: str, entry: AuditEntry | None) -> None:
        super().__init__(message)
        self.entry = entry


class ContainerProtectedError(ContainerActionError, code="container_protected", status=403):
    """The container is protected: Hydra never starts, stops or restarts it."""


class ContainerNotFoundError(ContainerActionError, code="container_not_found", status=404):
    """No container of that name."""


class EngineUnavailableError(ContainerActionError, code="engine_unavailable", status=503):
    """The engine cannot be reached right now."""


class AuditUnavailableError(ContainerActionError, code="audit_unavailable", status=503):
    """The audit log cannot be written, so the action is not attempted."""


# CPU %, memory used, memory limit; None where the engine could not say.
_Usage = tuple[float | None, int | None, int | None]


@dataclass(frozen=True, slots=True)
class _Facts:
    """What an inspect tells that a list does not."""

    state: str
    info: ContainerInfo


class ContainerService:
    """All of the worker's container work; one per engine."""

    def __init__(
        self,
        engine: EngineClient,
        *,
        policy: ProtectionPolicy,
        audit: AuditLog,
        bus: EventBus,
        data_dir: Path,
        healing: HealingSettings,
        interval_s: float = 10.0,
        heal_backoff_s: float = 30.0,
        stats_concurrency: int = 16,
    ) -> None:
        self._engine = engine
        self._policy = policy
        self._audit = audit
        self._bus = bus
        self._healing_path = data_dir / HEALING_FILE
        self._interval_s = interval_s
        self._healer = Healer(healing, backoff_s=heal_backoff_s)
        self._stats_slots = asyncio.Semaphore(stats_concurrency)
        self._facts: dict[str, _Facts] = {}  # by container id
        self._containers: dict[str, ContainerInfo] = {}  # by name
        self._cpu_samples: dict[str, tuple[int, int]] = {}  # id -> (container, system) ns
        self._stopped_on_purpose: set[str] = set()  # ids
        self._engine_available = False
        self._engine_error: str | None = "Not contacted yet"
        self._engine_version: str | None = None
        self._batch_stats = False  # podman's stats of every container in one request
        self._refresh_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def engine(self) -> EngineClient:
        """The engine followed (the disk part measures and prunes through it)."""
        return self._engine

    @property
    def policy(self) -> ProtectionPolicy:
        """Which containers are protected."""
        return self._policy

    @property
    def healing(self) -> HealingSettings:
        """The self-healing settings in force."""
        return self._healer.settings

    async def async_start(self) -> None:
        """Read the engine once, then follow it in the background (the audit log is open)."""
        saved = await asyncio.get_running_loop().run_in_executor(None, self._load_healing)
        self._healer.settings = replace(self._healer.settings, **saved)
        await self.async_refresh()
        self._tasks = [
            asyncio.create_task(
                repeat(
                    self.async_refresh,
                    self._interval_s,
                    logger=_LOGGER,
                    failure="Container status cycle failed",
                ),
                name="hydra containers poll",
            ),
            asyncio.create_task(self._follow_events(), name="hydra containers events"),
        ]

    async def async_stop(self) -> None:
        """Stop following the engine and close what is open."""
        tasks = [*self._tasks, *self._pending]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []
        await self._engine.close()

    def report(self) -> ContainerReport:
        """Every container as last seen."""
        return ContainerReport(
            engine_available=self._engine_available,
            engine_error=self._engine_error,
            engine_version=self._engine_version,
            containers=tuple(sorted(self._containers.values(), key=lambda item: item.name)),
            healing=self._healer.settings,
        )

    def get(self, name: str) -> ContainerInfo | None:
        """One container by name."""
        return self._containers.get(name)

    # Reading the engine

    async def async_refresh(self) -> None:
        """One status cycle: list, inspect what changed, sample stats, then heal."""
        async with self._refresh_lock:
            try:
                listing = await self._engine.list_containers()
            except EngineError as err:
                self._set_engine(available=False, error=str(err))
                return
            if not self._engine_available:
                await self._read_version()
            self._set_engine(available=True, error=None)
            listed = {item["Id"]: item for item in listing}
            changed = [
                container_id
                for container_id, item in listed.items()
                if (facts := self._facts.get(container_id)) is None
                or facts.state != _STATE_ALIASES.get(item["State"], item["State"])
                or f"/{facts.info.name}" not in (item.get("Names") or ())
            ]
            await asyncio.gather(*(self._inspect(container_id) for container_id in changed))
            for container_id in set(self._facts) - set(listed):
                self._forget(container_id)
            running = [
                facts.info.id for facts in self._facts.values() if facts.info.state == "running"
            ]
            usage = await self._usage(running)
            for facts in list(self._facts.values()):
                cpu, memory, limit = usage.get(facts.info.id, (None, None, None))
                self._store(
                    replace(
                        facts.info,
                        cpu_percent=cpu,
                        memory_used_bytes=memory,
                        memory_limit_bytes=limit,
                    )
                )
        await self._heal_all()

    async def _follow_events(self) -> None:
        delay = 1.0
        while True:
            events = self._engine.events()
            try:
                async for event in events:
                    delay = 1.0
                    await self._on_event(event)
            except EngineError as err:
                _LOGGER.debug("Engine event stream: %s", err)
            except Exception:
                _LOGGER.exception("Handling an engine event failed")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            # Events may have been missed while the stream was down: read everything again.
            self._facts = {key: replace(facts, state="") for key, facts in self._facts.items()}
            await self.async_refresh()

    async def _on_event(self, event: Mapping[str, Any]) -> None:
        action = str(event.get("Action") or event.get("status") or "").split(":", 1)[0]
        container_id = (event.get("Actor") or {}).get("ID") or event.get("id")
        if not container_id:
            return
        if action in _STOP_ACTIONS:
            self._stopped_on_purpose.add(container_id)
        elif action in _RUN_ACTIONS:
            self._stopped_on_purpose.discard(container_id)
        if action in _GONE_ACTIONS:
            self._forget(container_id)
        elif action in _REFRESH_ACTIONS:
            info = await self._inspect(container_id)
            if info is not None and action == "die":
                await self._heal(info)
            if action == "health_status":
                # podman announces a check before it stores the result: look again shortly.
                self._later(HEALTH_SETTLE_S, partial(self._inspect, container_id))

    def _later(self, delay_s: float, work: Callable[[], Awaitable[object]]) -> None:
        async def run() -> None:
            await asyncio.sleep(delay_s)
            await work()

        task = asyncio.create_task(run())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _inspect(self, container_id: str) -> ContainerInfo | None:
        try:
            data = await self._engine.inspect(container_id)
        except EngineNotFoundError:
            self._forget(container_id)
            return None
        except EngineError as err:
            _LOGGER.debug("Inspect of %s failed: %s", container_id[:12], err)
            return None
        return self._take(data)

    def _take(self, data: Mapping[str, Any]) -> ContainerInfo:
        """Keep what an inspect says; a container renamed since loses its old name."""
        container_id = str(data["Id"])
        state = data.get("State") or {}
        config = data.get("Config") or {}
        labels = config.get("Labels") or {}
        name = str(data.get("Name", "")).lstrip("/")
        previous = self._facts.get(container_id)
        info = ContainerInfo(
            name=name,
            id=container_id,
            image=config.get("Image") or data.get("Image", ""),
            state=_STATE_ALIASES.get(state.get("Status", ""), state.get("Status") or "dead"),
            health=(state.get("Health") or {}).get("Status") or "none",
            exit_code=state.get("ExitCode"),
            restart_count=data.get("RestartCount") or 0,
            restart_policy=((data.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name")
            or None,
            started_at=state.get("StartedAt") or None,
            protected=self._policy.is_protected(name, labels),
        )
        if previous is not None and previous.info.name != name:
            self._drop_name(previous.info.name, container_id)
        if previous is not None and info.state == "running":
            info = replace(
                info,
                cpu_percent=previous.info.cpu_percent,
                memory_used_bytes=previous.info.memory_used_bytes,
                memory_limit_bytes=previous.info.memory_limit_bytes,
            )
        self._facts[container_id] = _Facts(state=info.state, info=info)
        self._store(info)
        return info

    async def _usage(self, running: list[str]) -> dict[str, _Usage]:
        """CPU %, memory and limit of every running container."""
        if self._batch_stats:
            try:
                return self._podman_usage(await self._engine.podman_stats())
            except EngineNotFoundError:
                # Only the Docker API is served (libpod's paths are not): stop asking.
                self._batch_stats = False
            except EngineError as err:
                _LOGGER.debug("podman's batch stats failed (%s); asking per container", err)
        samples = await asyncio.gather(*(self._sample(item) for item in running))
        return dict(zip(running, samples, strict=True))

    def _podman_usage(self, stats: list[dict[str, Any]]) -> dict[str, _Usage]:
        """From podman's batch stats: CPU time and wall time in ns, memory in bytes."""
        usage: dict[str, _Usage] = {}
        for item in stats:
            container_id = item.get("ContainerID")
            cpu_ns, wall_ns = item.get("CPUNano"), item.get("SystemNano")
            if not container_id or cpu_ns is None or wall_ns is None:
                continue
            previous = self._cpu_samples.get(container_id)
            self._cpu_samples[container_id] = (cpu_ns, wall_ns)
            cpu = None
            if previous and wall_ns > previous[1]:
                cpu = max(round(100.0 * (cpu_ns - previous[0]) / (wall_ns - previous[1]), 2), 0.0)
            usage[container_id] = (cpu, item.get("MemUsage"), item.get("MemLimit"))
        return usage

    async def _sample(self, container_id: str) -> _Usage:
        """CPU % since the previous sample, and memory in use (page cache excluded)."""
        async with self._stats_slots:
            try:
                stats = await self._engine.stats(container_id)
            except EngineError:
                return None, None, None
        cpu_stats = stats.get("cpu_stats") or {}
        usage = (cpu_stats.get("cpu_usage") or {}).get("total_usage")
        system = cpu_stats.get("system_cpu_usage")
        cpu = None
        if usage is not None and system is not None:
            previous = self._cpu_samples.get(container_id)
            self._cpu_samples[container_id] = (usage, system)
            if previous and system > previous[1]:
                cpus = cpu_stats.get("online_cpus") or len(
                    (cpu_stats.get("cpu_usage") or {}).get("percpu_usage") or ()
                )
                cpu = round(100.0 * (usage - previous[0]) / (system - previous[1]) * (cpus or 1), 2)
                cpu = max(cpu, 0.0)
        memory_stats = stats.get("memory_stats") or {}
        memory = memory_stats.get("usage")
        if memory is not None:
            details = memory_stats.get("stats") or {}
            memory -= details.get("inactive_file", details.get("total_inactive_file", 0))
        limit = memory_stats.get("limit")
        return cpu, memory, limit

    def _store(self, info: ContainerInfo) -> None:
        previous = self._containers.get(info.name)
        self._containers[info.name] = info
        if previous is None or any(
            getattr(previous, key) != getattr(info, key) for key in _PUSHED_FIELDS
        ):
            self._bus.publish(EVENT_CONTAINER, dump(info))

    def _forget(self, container_id: str) -> None:
        facts = self._facts.pop(container_id, None)
        self._cpu_samples.pop(container_id, None)
        self._stopped_on_purpose.discard(container_id)
        if facts is not None:
            self._drop_name(facts.info.name, container_id)

    def _drop_name(self, name: str, container_id: str | None = None) -> None:
        """Forget a name no container has now (with ``container_id``: that one no longer has)."""
        current = self._containers.get(name)
        if current is None or (container_id is not None and current.id != container_id):
            return
        del self._containers[name]
        self._healer.forget(name)
        self._bus.publish(EVENT_CONTAINER_REMOVED, {"name": name, "id": current.id})

    def _set_engine(self, *, available: bool, error: str | None) -> None:
        if (available, error) == (self._engine_available, self._engine_error):
            return
        if available:
            _LOGGER.info("Container engine at %s is reachable", self._engine.docker_host)
        else:
            _LOGGER.warning("Container engine unavailable: %s", error)
        self._engine_available, self._engine_error = available, error
        self._bus.publish(EVENT_ENGINE, {"available": available, "error": error})

    async def _read_version(self) -> None:
        try:
            version = await self._engine.version()
        except EngineError:
            return
        names = {item.get("Name") for item in version.get("Components", ())}
        self._batch_stats = "Podman Engine" in names
        engine = "Podman" if self._batch_stats else "Docker"
        self._engine_version = f"{engine} {version.get('Version', '')}".strip()

    # Acting

    async def async_action(
        self, name: str, action: str, actor: Actor, reason: str | None = None
    ) -> tuple[AuditEntry, ContainerInfo | None]:
        """Start, stop or restart a container after checking the protection policy.

        The name is resolved by the engine now and the protection checked on that fresh
        inspect, never on what was cached: a name can have moved to another container since.
        The action then goes to the id that was checked. Every attempt is audited, refused and
        failed ones included.
        """
        if action not in CONTAINER_ACTIONS:
            raise ValueError(f"Unknown action {action!r}; use {', '.join(CONTAINER_ACTIONS)}")
        try:
            container = await self._resolve(name)
        except EngineError as err:
            if err.status is not None:  # the engine answered, with an error
                entry = await self._record(
                    actor, name, action, "failed", reason=reason, detail=str(err)
                )
                raise ContainerActionError(f"The engine cannot find {name}: {err}", entry) from err
            entry = await self._record(
                actor, name, action, "failed", reason=reason, detail=f"engine unavailable: {err}"
            )
            raise EngineUnavailableError(
                f"The container engine is unavailable: {err}", entry
            ) from err
        if container is None:
            entry = await self._record(
                actor, name, action, "failed", reason=reason, detail="no such container"
            )
            raise ContainerNotFoundError(f"No container named {name!r}", entry)
        if container.protected:
            entry = await self._record(
                actor, name, action, "refused", reason=reason, detail="protected"
            )
            raise ContainerProtectedError(
                f"{name} is protected: Hydra never starts, stops or restarts it", entry
            )
        pending = await self._begin(actor, name, action, reason)
        if action == "stop":
            self._stopped_on_purpose.add(container.id)
        try:
            await getattr(self._engine, action)(container.id)
        except EngineError as err:
            entry = await self._settle(pending, "failed", str(err))
            raise ContainerActionError(
                f"The engine refused to {action} {name}: {err}", entry
            ) from err
        entry = await self._settle(pending, "ok")
        return entry, await self._inspect(container.id)

    async def _resolve(self, name: str) -> ContainerInfo | None:
        """The container that has this name now, read afresh from the engine; None if none has.

        The engine also answers a name with the container whose id starts with it: only a
        container of exactly that name counts. Raises EngineError when the engine cannot say.
        """
        try:
            data = await self._engine.inspect(name)
        except EngineNotFoundError:
            self._drop_name(name)
            return None
        container = self._take(data)
        if container.name != name:
            self._drop_name(name)
            return None
        return container

    async def async_set_healing(self, *, enabled: bool) -> HealingSettings:
        """Switch self-healing on or off; kept in the data dir across restarts."""
        self._healer.settings = replace(self._healer.settings, enabled=enabled)
        await asyncio.get_running_loop().run_in_executor(None, self._save_healing, enabled)
        self._bus.publish(EVENT_HEALING, dump(self._healer.settings))
        return self._healer.settings

    async def _begin(self, actor: Actor, name: str, action: str, reason: str | None) -> AuditEntry:
        """The audit entry of an action about to be attempted; AuditUnavailableError when it
        cannot be written (then the action is not attempted)."""
        try:
            return await self._audit.async_record(
                actor=actor, container=name, action=action, result=PENDING, reason=reason
            )
        except (sqlite3.Error, OSError) as err:
            raise AuditUnavailableError(
                f"The audit log cannot be written ({err}); Hydra does not act unaudited", None
            ) from err

    async def _settle(
        self, pending: AuditEntry, result: str, detail: str | None = None
    ) -> AuditEntry:
        """Record what came of an attempted action, and tell Home Assistant."""
        entry = await self._audit.async_settle(pending, result, detail)
        self._told(entry)
        return entry

    async def _record(
        self,
        actor: Actor,
        name: str,
        action: str,
        result: str,
        *,
        reason: str | None,
        detail: str | None = None,
    ) -> AuditEntry:
        entry = await self._audit.async_record(
            actor=actor,
            container=name,
            action=action,
            result=result,
            reason=reason,
            detail=detail,
        )
        self._told(entry)
        return entry

    def _told(self, entry: AuditEntry) -> None:
        """Log an action's outcome and push it to Home Assistant."""
        log = _LOGGER.info if entry.result == "ok" else _LOGGER.warning
        log(
            "%s %s by %s: %s (%s)",
            entry.action,
            entry.container,
            entry.actor.type,
            entry.result,
            entry.reason or entry.detail or "",
        )
        self._bus.publish(EVENT_AUDIT, dump(entry))

    # Healing

    async def _heal_all(self) -> None:
        for container in list(self._containers.values()):
            await self._heal(container)

    async def _heal(self, container: ContainerInfo) -> None:
        decision = self._healer.check(
            container, stopped_on_purpose=container.id in self._stopped_on_purpose
        )
        if decision is None:
            return
        name = container.name
        if isinstance(decision, Refuse):
            await self._record(
                SELF_HEAL, name, "restart", "refused", reason=decision.reason, detail="protected"
            )
        elif isinstance(decision, GiveUp):
            reason = f"restart budget spent: {decision.restarts} restarts in the last hour"
            await self._record(SELF_HEAL, name, "restart", "refused", reason=reason, detail=None)
            self._bus.publish(
                EVENT_HEAL_EXHAUSTED,
                {"container": name, "restarts": decision.restarts, "window_s": decision.window_s},
            )
        elif isinstance(decision, Heal):
            # Read again right before acting: it may have been renamed, recreated or protected.
            fresh = await self._inspect(container.id)
            if fresh is None or fresh.protected or fresh.name != name:
                return
            try:
                pending = await self._begin(SELF_HEAL, name, "restart", decision.reason)
            except AuditUnavailableError as err:
                _LOGGER.error("Not restarting %s: %s", name, err)
                return
            self._healer.restarted(name)
            try:
                await self._engine.restart(container.id)
            except EngineError as err:
                await self._settle(pending, "failed", str(err))
                return
            await self._settle(pending, "ok")
            await self._inspect(container.id)

    def _load_healing(self) -> dict[str, Any]:
        enabled = load_settings(self._healing_path, ("enabled",)).get("enabled")
        return {"enabled": enabled} if isinstance(enabled, bool) else {}

    def _save_healing(self, enabled: bool) -> None:
        save_settings(self._healing_path, {"enabled": enabled})
