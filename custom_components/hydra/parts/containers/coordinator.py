"""The worker's containers: pushed by the event stream, polled every minute to fill gaps; the
engine and self-healing repairs issues."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, override

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.util import dt as dt_util

from hydra_core.client import HydraClient, HydraError
from hydra_core.containers.client import ContainersClient
from hydra_core.containers.models import (
    EVENT_CONTAINER,
    EVENT_CONTAINER_REMOVED,
    EVENT_ENGINE,
    EVENT_HEAL_EXHAUSTED,
    EVENT_HEALING,
    ContainerInfo,
    ContainerReport,
    HealingSettings,
)
from hydra_core.models import EVENT_AUDIT, AuditEntry, WorkerEvent
from hydra_core.wire import dump, load

from ...const import CONTAINER_SCAN_INTERVAL, DOMAIN, ENGINE_ISSUE_AFTER, LOGGER
from ...coordinator import HydraPartCoordinator, show_issue
from .device import container_identifier
from .events import CATCH_UP_LIMIT, ContainerEvents
from .tracker import ContainerTracker

if TYPE_CHECKING:
    from ...data import HydraConfigEntry


class HydraContainerCoordinator(HydraPartCoordinator[ContainerReport, ContainersClient]):
    """The worker's containers: pushed by the event stream, polled every minute to fill gaps.

    The poll also brings CPU and memory, which the worker does not push.
    """

    part = "containers"
    api_type = ContainersClient
    disabled = "containers_disabled"
    interval = CONTAINER_SCAN_INTERVAL

    def __init__(
        self, hass: HomeAssistant, entry: HydraConfigEntry, client: HydraClient, worker_id: str
    ) -> None:
        """Set up the coordinator for one worker's container engine."""
        super().__init__(hass, entry, client, worker_id)
        self.containers: dict[str, ContainerInfo] = {}
        self.tracker: ContainerTracker | None = None
        self.events = ContainerEvents(hass, entry, worker_id)
        self._engine_down_since: datetime | None = None
        self._heal_exhausted: set[str] = set()

    @override
    async def async_fetch(self) -> ContainerReport:
        report = await self.api.async_containers()
        self._take(report)
        return report

    @override
    async def async_start(self) -> None:
        self.tracker = await ContainerTracker.async_load(self.hass, self.config_entry, self)

    @override
    async def async_handle_event(self, event: WorkerEvent) -> None:
        if event.type == EVENT_AUDIT:
            self.events.fire_audit(load(AuditEntry, event.data))
        elif event.type == EVENT_HEAL_EXHAUSTED:
            name, restarts = event.data["container"], int(event.data["restarts"])
            window_s = event.data["window_s"]
            self.async_heal_exhausted(name, restarts, window_s)
            await self.events.async_fire_heal_failed(
                restarts, window_s, self.heal_placeholders(name, restarts, window_s)
            )
        else:
            self.async_apply_event(event)

    @override
    async def async_stream_live(self, hello: WorkerEvent, *, reconnected: bool) -> None:
        if not reconnected:
            self.events.audit_since = hello.time
            return
        try:
            entries = await self.client.async_audit(
                since=self.events.audit_since, limit=CATCH_UP_LIMIT
            )
        except HydraError as err:
            LOGGER.debug("Could not catch up on the audit log: %s", err)
            return
        for entry in sorted(entries, key=lambda item: (item.time, item.id)):
            self.events.fire_audit(entry)

    @override
    def diagnostics(self) -> dict[str, Any]:
        return {
            **super().diagnostics(),
            "event_stream_connected": self.pushed,
            "report": dump(self.data),
        }

    @override
    def device_identifiers(self) -> set[str]:
        return {container_identifier(self.worker_id, name) for name in self.containers}

    @override
    def forget_device(self, device: dr.DeviceEntry) -> None:
        if self.tracker is not None:
            self.tracker.async_forget(device)

    @callback
    @override
    def async_set_updated_data(self, data: ContainerReport) -> None:
        self._take(data)
        super().async_set_updated_data(data)

    @callback
    def async_apply_event(self, event: WorkerEvent) -> None:
        """Apply a pushed change to the latest report, as if it had been polled."""
        report = self.data
        containers = dict(self.containers)
        if event.type == EVENT_CONTAINER:
            container = load(ContainerInfo, event.data)
            containers[container.name] = container
            report = replace(report, containers=_sorted(containers))
        elif event.type == EVENT_CONTAINER_REMOVED:
            name = event.data["name"]
            # A removal that arrives after the same name was created again is about the old one.
            if name not in containers or containers[name].id != event.data.get("id"):
                return
            del containers[name]
            report = replace(report, containers=_sorted(containers))
        elif event.type == EVENT_ENGINE:
            report = replace(
                report,
                engine_available=bool(event.data["available"]),
                engine_error=event.data.get("error"),
            )
        elif event.type == EVENT_HEALING:
            report = replace(report, healing=load(HealingSettings, event.data))
        else:
            return
        self.async_set_updated_data(report)

    @callback
    def async_apply_healing(self, healing: HealingSettings) -> None:
        """The worker answered a change of its self-healing settings."""
        self.async_set_updated_data(replace(self.data, healing=healing))

    @callback
    def async_heal_exhausted(self, name: str, restarts: int, window_s: float) -> None:
        """Self-healing gave up on a container: Repairs says so until it is healthy again."""
        self._heal_exhausted.add(name)
        show_issue(
            self.hass,
            self._heal_issue_id(name),
            "heal_exhausted",
            self.heal_placeholders(name, restarts, window_s),
        )

    def heal_placeholders(self, name: str, restarts: int, window_s: float) -> dict[str, str]:
        """What the heal-exhausted issue and notification say."""
        return {
            "container": name,
            "worker": self.config_entry.title,
            "restarts": str(restarts),
            "minutes": f"{window_s / 60:g}",
        }

    def _take(self, report: ContainerReport) -> None:
        """Index a new report and bring the engine and self-healing issues up to date."""
        self.containers = report.by_name()
        self._update_engine_issue(report)
        for name in list(self._heal_exhausted):
            container = self.containers.get(name)
            if container is None or (
                container.state == "running" and container.health in ("healthy", "none")
            ):
                self._heal_exhausted.discard(name)
                ir.async_delete_issue(self.hass, DOMAIN, self._heal_issue_id(name))

    def _update_engine_issue(self, report: ContainerReport) -> None:
        """Repairs tells the user once the engine has been unreachable for five minutes."""
        issue_id = f"engine_unavailable_{self.config_entry.entry_id}"
        if report.engine_available:
            self._engine_down_since = None
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        now = dt_util.utcnow()
        if self._engine_down_since is None:
            self._engine_down_since = now
        if now - self._engine_down_since < ENGINE_ISSUE_AFTER:
            return
        show_issue(
            self.hass,
            issue_id,
            "engine_unavailable",
            {
                "worker": self.config_entry.title,
                "error": report.engine_error or "unknown",
            },
        )

    def _heal_issue_id(self, name: str) -> str:
        return f"heal_exhausted_{self.config_entry.entry_id}_{name}"


def _sorted(containers: dict[str, ContainerInfo]) -> tuple[ContainerInfo, ...]:
    return tuple(containers[name] for name in sorted(containers))
