"""The worker's event stream: containers, tasks, voice and GPU power pushed to their
coordinators, container actions and task outcomes to HA's event bus.

One WebSocket per entry, run as the entry's background task. It reconnects by itself with a
growing pause; after every (re)connection the coordinators are refreshed, so what changed while
it was down is not lost, and audit entries recorded meanwhile are fired late rather than never.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from homeassistant.core import Context, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.translation import async_get_translations

from hydra_core.client import HydraAuthError, HydraClient, HydraError
from hydra_core.models import (
    EVENT_ASSET,
    EVENT_AUDIT,
    EVENT_HEAL_EXHAUSTED,
    EVENT_HELLO,
    EVENT_POWER,
    EVENT_QUALITY,
    EVENT_SCHEDULER,
    EVENT_TASK,
    EVENT_VOICE,
    Asset,
    AuditEntry,
    PowerStatus,
    QualityStatus,
    Task,
    VoiceStatus,
    WorkerEvent,
)

from .const import (
    DOMAIN,
    EVENT_CONTAINER_ACTION,
    EVENT_CONTAINER_HEAL_FAILED,
    LOGGER,
    RECONNECT_DELAYS_S,
)
from .coordinator import (
    HydraConfigEntry,
    HydraContainerCoordinator,
    HydraPowerCoordinator,
    HydraQualityCoordinator,
    HydraStatusCoordinator,
    HydraTaskCoordinator,
    HydraVoiceCoordinator,
)
from .entity import container_identifier
from .review import async_asset_event
from .task_events import async_task_event

# Most audit entries fetched after a reconnection to catch up on what happened meanwhile.
CATCH_UP_LIMIT = 1000


class HydraEventStream:
    """Follows ``/api/v1/events`` for as long as the entry is loaded."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HydraConfigEntry,
        client: HydraClient,
        status: HydraStatusCoordinator,
        *,
        containers: HydraContainerCoordinator | None,
        tasks: HydraTaskCoordinator | None,
        voice: HydraVoiceCoordinator | None = None,
        power: HydraPowerCoordinator | None = None,
        quality: HydraQualityCoordinator | None = None,
    ) -> None:
        """Prepare; ``async_start`` connects."""
        self._hass = hass
        self._entry = entry
        self._client = client
        self._status = status
        self._containers = containers
        self._tasks = tasks
        self._voice = voice
        self._power = power
        self._quality = quality
        self._pushed = False
        # Where a catch-up on the audit log starts, and what was already fired (as id, time).
        self._audit_since: float | None = None
        self._fired: deque[tuple[int, float]] = deque(maxlen=CATCH_UP_LIMIT)

    @callback
    def async_start(self) -> None:
        """Connect in the background; the task ends when the entry unloads."""
        self._entry.async_create_background_task(
            self._hass, self._async_run(), f"{DOMAIN} event stream {self._entry.title}"
        )

    async def _async_run(self) -> None:
        failures = 0
        connected_before = False
        while True:
            try:
                async for event in self._client.async_events():
                    if event.type == EVENT_HELLO:
                        failures = 0
                        self._set_pushed(True)
                        await self._async_resync(event, reconnected=connected_before)
                        connected_before = True
                    else:
                        await self._async_handle(event)
            except HydraAuthError:
                self._set_pushed(False)
                LOGGER.warning("The Hydra worker refused the token on its event stream")
                self._entry.async_start_reauth(self._hass)
                return
            except HydraError as err:
                log = LOGGER.info if self._pushed else LOGGER.debug
                log("Hydra event stream of %s: %s", self._entry.title, err)
            except Exception:
                # A bug must not end the push updates for good: log it, then reconnect.
                LOGGER.exception("Hydra event stream of %s failed", self._entry.title)
            self._set_pushed(False)
            await asyncio.sleep(RECONNECT_DELAYS_S[min(failures, len(RECONNECT_DELAYS_S) - 1)])
            failures += 1

    def _set_pushed(self, pushed: bool) -> None:
        """Tell the coordinators whether changes reach them without a poll."""
        self._pushed = pushed
        for coordinator in (self._containers, self._tasks):
            if coordinator is not None:
                coordinator.pushed = pushed

    async def _async_resync(self, hello: WorkerEvent, *, reconnected: bool) -> None:
        """Catch up on what the stream could not tell: from now on it is live."""
        for coordinator in (
            self._containers,
            self._tasks,
            self._voice,
            self._power,
            self._quality,
        ):
            if coordinator is not None:
                await coordinator.async_refresh()
        if not reconnected:
            self._audit_since = hello.time
            return
        await self._status.async_refresh()
        if self._containers is None:
            return
        try:
            entries = await self._client.async_audit(since=self._audit_since, limit=CATCH_UP_LIMIT)
        except HydraError as err:
            LOGGER.debug("Could not catch up on the audit log: %s", err)
            return
        for entry in sorted(entries, key=lambda item: (item.time, item.id)):
            self._fire_audit(entry)

    async def _async_handle(self, event: WorkerEvent) -> None:
        try:
            if event.type in (EVENT_TASK, EVENT_SCHEDULER):
                self._handle_task_event(event)
            elif event.type in (EVENT_VOICE, EVENT_POWER, EVENT_ASSET, EVENT_QUALITY):
                self._apply_part_event(event)
            elif self._containers is None:
                return
            elif event.type == EVENT_AUDIT:
                self._fire_audit(AuditEntry.from_dict(event.data))
            elif event.type == EVENT_HEAL_EXHAUSTED:
                await self._async_heal_exhausted(
                    self._containers,
                    event.data["container"],
                    int(event.data["restarts"]),
                    event.data["window_s"],
                )
            else:
                self._containers.async_apply_event(event)
        except (KeyError, TypeError, ValueError) as err:
            LOGGER.warning("Ignoring a malformed %s event from the worker: %r", event.type, err)

    @callback
    def _apply_part_event(self, event: WorkerEvent) -> None:
        """The voice, power and review parts: their coordinators take what is pushed."""
        if event.type == EVENT_VOICE and self._voice is not None:
            self._voice.async_set_updated_data(VoiceStatus.from_dict(event.data))
        elif event.type == EVENT_POWER and self._power is not None:
            self._power.async_set_updated_data(PowerStatus.from_dict(event.data))
        elif event.type == EVENT_ASSET and self._quality is not None:
            asset = Asset.from_dict(event.data)
            self._quality.async_apply_asset(asset)
            async_asset_event(self._hass, self._entry, asset)
        elif event.type == EVENT_QUALITY and self._quality is not None:
            self._quality.async_apply_status(QualityStatus.from_dict(event.data))

    @callback
    def _handle_task_event(self, event: WorkerEvent) -> None:
        """Update the queue's entities; tell automations (and notify targets) how tasks went."""
        if self._tasks is None:
            return
        self._tasks.async_apply_event(event)
        if event.type == EVENT_TASK:
            task = Task.from_dict(event.data["task"])
            async_task_event(self._hass, self._entry, event.data["event"], task)

    @callback
    def _fire_audit(self, entry: AuditEntry) -> None:
        """Tell the event bus (and so the logbook) about an action, each one once."""
        if (entry.id, entry.time) in self._fired:
            return
        self._fired.append((entry.id, entry.time))
        self._audit_since = max(self._audit_since or entry.time, entry.time)
        actor = entry.actor
        self._hass.bus.async_fire(
            EVENT_CONTAINER_ACTION,
            {
                **self._container_data(self._status.data.worker.worker_id, entry.container),
                "action": entry.action,
                "result": entry.result,
                "reason": entry.reason,
                "detail": entry.detail,
                "actor_type": actor.type,
                "actor_id": actor.id,
                "actor_name": actor.name,
                "audit_id": entry.id,
            },
            context=Context(user_id=actor.id) if actor.type == "user" else None,
        )

    async def _async_heal_exhausted(
        self, containers: HydraContainerCoordinator, name: str, restarts: int, window_s: float
    ) -> None:
        """Raise the repairs issue, and an event an automation can turn into a notification."""
        containers.async_heal_exhausted(name, restarts, window_s)
        placeholders = containers.heal_placeholders(name, restarts, window_s)
        texts = await async_get_translations(
            self._hass, self._hass.config.language, "issues", {DOMAIN}
        )
        key = f"component.{DOMAIN}.issues.heal_exhausted"
        self._hass.bus.async_fire(
            EVENT_CONTAINER_HEAL_FAILED,
            {
                **self._container_data(containers.worker_id, name),
                "restarts": restarts,
                "window_s": window_s,
                "title": texts[f"{key}.title"].format(**placeholders),
                "message": texts[f"{key}.description"].format(**placeholders),
            },
        )

    def _container_data(self, worker_id: str, name: str) -> dict[str, Any]:
        """What identifies a container in an event: its name and, if it has one, its device."""
        device = dr.async_get(self._hass).async_get_device_by_identifier(
            (DOMAIN, container_identifier(worker_id, name)),
            self._entry.entry_id,
        )
        return {
            "entry_id": self._entry.entry_id,
            "device_id": device.id if device else None,
            "container": name,
        }
