"""Coordinators: the worker's status (polled); containers and the task queue (pushed; polled as
a safety net)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar, NoReturn, override

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from hydra_core.client import HydraApiError, HydraAuthError, HydraClient, HydraError
from hydra_core.models import (
    EVENT_CONTAINER,
    EVENT_CONTAINER_REMOVED,
    EVENT_ENGINE,
    EVENT_HEALING,
    EVENT_SCHEDULER,
    EVENT_TASK,
    Asset,
    ContainerInfo,
    ContainerReport,
    GpuInfo,
    HealingSettings,
    PowerStatus,
    QualityStatus,
    SchedulerSettings,
    SchedulerState,
    Task,
    VoiceStatus,
    WorkerEvent,
    WorkerStatus,
)

from .const import (
    CONF_SCAN_INTERVAL,
    CONTAINER_SCAN_INTERVAL,
    COUNTS_COOLDOWN_S,
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
    ENGINE_ISSUE_AFTER,
    LOGGER,
    PENDING_LIMIT,
    POWER_SCAN_INTERVAL,
    QUALITY_SCAN_INTERVAL,
    TASK_LIST_LIMIT,
    TASKS_SCAN_INTERVAL,
    VOICE_SCAN_INTERVAL,
)

if TYPE_CHECKING:
    from .containers import ContainerTracker
    from .event_stream import HydraEventStream
    from .routine import HydraRoutine


@dataclass(slots=True)
class HydraData:
    """What a config entry holds while it is loaded."""

    client: HydraClient
    status: HydraStatusCoordinator
    # The rest is None when the worker has no container engine configured.
    containers: HydraContainerCoordinator | None = None
    tracker: ContainerTracker | None = None
    # None when the worker runs no task queue.
    tasks: HydraTaskCoordinator | None = None
    # None when the worker serves no voice services.
    voice: HydraVoiceCoordinator | None = None
    # None when the worker does not manage GPU power (no GPU backend, or an older worker).
    power: HydraPowerCoordinator | None = None
    events: HydraEventStream | None = None
    # None when the worker keeps no assets for review.
    quality: HydraQualityCoordinator | None = None
    # Leaving, arriving, bedtime and the briefing; set once the platforms are up.
    routine: HydraRoutine | None = None


type HydraConfigEntry = ConfigEntry[HydraData]


def _raise_update_failed(err: HydraError) -> NoReturn:
    """Turn a client error into what a coordinator raises."""
    if isinstance(err, HydraAuthError):
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key="invalid_auth"
        ) from err
    raise UpdateFailed(
        translation_domain=DOMAIN,
        translation_key="cannot_connect",
        translation_placeholders={"error": str(err)},
    ) from err


def _show_issue(
    hass: HomeAssistant,
    issue_id: str,
    translation_key: str,
    placeholders: dict[str, str],
    severity: ir.IssueSeverity = ir.IssueSeverity.ERROR,
) -> None:
    """Raise (or update) one of Hydra's repairs issues, which the user fixes outside Hydra."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=False,
        severity=severity,
        translation_key=translation_key,
        translation_placeholders=placeholders,
    )


class HydraStatusCoordinator(DataUpdateCoordinator[WorkerStatus]):
    """Polls ``/api/v1/status`` at the interval chosen in the options (30 s by default)."""

    config_entry: HydraConfigEntry

    def __init__(self, hass: HomeAssistant, entry: HydraConfigEntry, client: HydraClient) -> None:
        """Set up the coordinator for one worker."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} status {entry.title}",
            update_interval=timedelta(
                seconds=entry.options.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL.total_seconds())
            ),
        )
        self.client = client
        self.gpus: dict[str, GpuInfo] = {}

    @override
    async def _async_update_data(self) -> WorkerStatus:
        try:
            status = await self.client.async_status()
        except HydraError as err:
            _raise_update_failed(err)
        self.gpus = status.gpu_by_uuid()
        self._update_no_gpu_issue(status)
        return status

    def _update_no_gpu_issue(self, status: WorkerStatus) -> None:
        """Tell the user, through a repairs issue, when a worker that should see GPUs sees none."""
        issue_id = f"no_gpu_{self.config_entry.entry_id}"
        if status.gpu.available or status.gpu.backend == "none":
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        _show_issue(
            self.hass,
            issue_id,
            "no_gpu",
            {
                "worker": status.worker.name,
                "reason": status.gpu.reason or "unknown",
            },
            severity=ir.IssueSeverity.WARNING,
        )


class HydraPartCoordinator[T](DataUpdateCoordinator[T]):
    """One part of the worker (containers, tasks, voice, power, quality): pushed by the event
    stream, polled to fill gaps."""

    config_entry: HydraConfigEntry
    part: ClassVar[str]
    interval: ClassVar[timedelta]

    def __init__(
        self, hass: HomeAssistant, entry: HydraConfigEntry, client: HydraClient, worker_id: str
    ) -> None:
        """Set up the coordinator for one worker."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {self.part} {entry.title}",
            update_interval=self.interval,
        )
        self.client = client
        self.worker_id = worker_id


class HydraContainerCoordinator(HydraPartCoordinator[ContainerReport]):
    """The worker's containers: pushed by the event stream, polled every minute to fill gaps.

    The poll also brings CPU and memory, which the worker does not push.
    """

    part = "containers"
    interval = CONTAINER_SCAN_INTERVAL

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HydraConfigEntry,
        client: HydraClient,
        worker_id: str,
    ) -> None:
        """Set up the coordinator for one worker's container engine."""
        super().__init__(hass, entry, client, worker_id)
        self.containers: dict[str, ContainerInfo] = {}
        # Set by the event stream; while it is down, actions ask for a poll to show their effect.
        self.pushed = False
        self._engine_down_since: datetime | None = None
        self._heal_exhausted: set[str] = set()

    @override
    async def _async_update_data(self) -> ContainerReport:
        try:
            report = await self.client.async_containers()
        except HydraError as err:
            _raise_update_failed(err)
        self._take(report)
        return report

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
            container = ContainerInfo.from_dict(event.data)
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
            report = replace(report, healing=HealingSettings.from_dict(event.data))
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
        _show_issue(
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
        _show_issue(
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


@dataclass(frozen=True, slots=True)
class HydraTaskData:
    """The scheduler (settings, today's counts, kinds) and the tasks Home Assistant shows."""

    scheduler: SchedulerState
    # The newest tasks and every running one, newest first.
    tasks: tuple[Task, ...]


def _keep(tasks: dict[int, Task]) -> tuple[Task, ...]:
    """The newest tasks, and running ones however old, newest first."""
    newest = sorted(tasks.values(), key=lambda task: task.id, reverse=True)
    older_running = [task for task in newest[TASK_LIST_LIMIT:] if task.state == "running"]
    return (*newest[:TASK_LIST_LIMIT], *older_running)


class HydraTaskCoordinator(HydraPartCoordinator[HydraTaskData]):
    """The worker's task queue: tasks pushed by the event stream, polled every minute.

    Today's counts are the worker's: a task that changes state has them read again (at most
    once per COUNTS_COOLDOWN_S, and always by a read that starts after the change).
    """

    part = "tasks"
    interval = TASKS_SCAN_INTERVAL

    def __init__(
        self, hass: HomeAssistant, entry: HydraConfigEntry, client: HydraClient, worker_id: str
    ) -> None:
        """Set up the coordinator for one worker's queue."""
        super().__init__(hass, entry, client, worker_id)
        # Set by the event stream; while it is down, actions ask for a poll to show their effect.
        self.pushed = False
        # Tasks pushed while a poll is under way, applied again on top of what it read.
        self._during_poll: list[Task] | None = None
        self._counts_stale = False
        self._counts_reader: asyncio.Task[None] | None = None

    @staticmethod
    async def async_fetch(client: HydraClient) -> HydraTaskData:
        """Read the scheduler, the newest tasks and the running ones."""
        scheduler, newest, running = await asyncio.gather(
            client.async_scheduler(),
            client.async_tasks(limit=TASK_LIST_LIMIT),
            client.async_tasks(state="running"),
        )
        return HydraTaskData(
            scheduler=scheduler, tasks=_keep({task.id: task for task in (*running, *newest)})
        )

    @override
    async def _async_update_data(self) -> HydraTaskData:
        self._during_poll = []
        try:
            data = await self.async_fetch(self.client)
        except HydraError as err:
            _raise_update_failed(err)
        finally:
            pushed, self._during_poll = self._during_poll, None
        tasks = {task.id: task for task in data.tasks}
        tasks.update((task.id, task) for task in pushed)
        return replace(data, tasks=_keep(tasks))

    @property
    def tasks(self) -> dict[int, Task]:
        """The tasks shown, by id."""
        return {task.id: task for task in self.data.tasks}

    @callback
    def async_apply_event(self, event: WorkerEvent) -> None:
        """Apply a pushed task or scheduler change."""
        if event.type == EVENT_SCHEDULER:
            self.async_apply_settings(SchedulerSettings.from_dict(event.data))
        elif event.type == EVENT_TASK:
            self.async_apply_task(Task.from_dict(event.data["task"]))
            if event.data["event"] != "progress":
                self._async_counts_changed()

    @callback
    def _async_counts_changed(self) -> None:
        """Have today's counts read again by a read that starts from now on."""
        self._counts_stale = True
        if self._counts_reader is None or self._counts_reader.done():
            self._counts_reader = self.config_entry.async_create_background_task(
                self.hass, self._async_read_counts(), f"{DOMAIN} task counts"
            )

    async def _async_read_counts(self) -> None:
        while self._counts_stale:
            self._counts_stale = False
            try:
                scheduler = await self.client.async_scheduler()
            except HydraError as err:
                # The next poll brings them.
                LOGGER.debug("Could not read the task counts: %s", err)
                return
            # Only the counts: the settings are pushed, and may have changed since.
            counts = replace(self.data.scheduler, counts=scheduler.counts)
            self.async_set_updated_data(replace(self.data, scheduler=counts))
            if self._counts_stale:
                await asyncio.sleep(COUNTS_COOLDOWN_S)

    @callback
    def async_apply_task(self, task: Task) -> None:
        """A task as the worker just told it."""
        if self._during_poll is not None:
            self._during_poll.append(task)
        tasks = self.tasks
        tasks[task.id] = task
        self.async_set_updated_data(replace(self.data, tasks=_keep(tasks)))

    @callback
    def async_apply_settings(self, settings: SchedulerSettings) -> None:
        """The scheduler's settings as the worker just told them."""
        scheduler = replace(self.data.scheduler, settings=settings)
        self.async_set_updated_data(replace(self.data, scheduler=scheduler))

    @callback
    def async_apply_scheduler(self, scheduler: SchedulerState) -> None:
        """The scheduler as the worker answered a change of its settings."""
        self.async_set_updated_data(replace(self.data, scheduler=scheduler))


class HydraVoiceCoordinator(HydraPartCoordinator[VoiceStatus]):
    """The worker's voice services and settings."""

    part = "voice"
    interval = VOICE_SCAN_INTERVAL

    @override
    async def _async_update_data(self) -> VoiceStatus:
        try:
            return await self.client.async_voice()
        except HydraError as err:
            _raise_update_failed(err)


class HydraPowerCoordinator(HydraPartCoordinator[PowerStatus]):
    """The worker's GPU power profiles.

    While a GPU cannot enforce its profile because the worker may not change power limits,
    Repairs says so; the issue goes once every GPU enforces its profile again.
    """

    part = "power"
    interval = POWER_SCAN_INTERVAL

    @staticmethod
    async def async_fetch(client: HydraClient) -> PowerStatus:
        """The power status; a worker that cannot manage power now says why, as a status."""
        try:
            return await client.async_power()
        except HydraApiError as err:
            if err.code != "power_unavailable":
                raise
            return PowerStatus(available=False, reason=err.message)

    @override
    async def _async_update_data(self) -> PowerStatus:
        try:
            status = await self.async_fetch(self.client)
        except HydraError as err:
            _raise_update_failed(err)
        self._update_permission_issue(status)
        return status

    @callback
    @override
    def async_set_updated_data(self, data: PowerStatus) -> None:
        self._update_permission_issue(data)
        super().async_set_updated_data(data)

    def _update_permission_issue(self, status: PowerStatus) -> None:
        issue_id = f"power_not_permitted_{self.config_entry.entry_id}"
        refused = [gpu for gpu in status.gpus if gpu.error_code == "not_permitted"]
        if not refused:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        _show_issue(
            self.hass,
            issue_id,
            "power_not_permitted",
            {
                "worker": self.config_entry.title,
                "error": refused[0].error or "not permitted",
            },
        )


@dataclass(frozen=True, slots=True)
class HydraQualityData:
    """Scoring's status (model, what was learnt) and the assets awaiting review, oldest first."""

    status: QualityStatus
    pending: tuple[Asset, ...]

    def pending_asset(self, asset_id: int | None = None) -> Asset | None:
        """An asset awaiting review: the one asked for, else the oldest."""
        if asset_id is None:
            return self.pending[0] if self.pending else None
        return next((asset for asset in self.pending if asset.id == asset_id), None)


class HydraQualityCoordinator(HydraPartCoordinator[HydraQualityData]):
    """Image quality scoring and the review loop."""

    part = "quality"
    interval = QUALITY_SCAN_INTERVAL

    @staticmethod
    async def async_fetch(client: HydraClient) -> HydraQualityData:
        """The status and the oldest assets awaiting review."""
        status = await client.async_quality()
        pending = await client.async_assets(state="pending", limit=PENDING_LIMIT)
        return HydraQualityData(status=status, pending=tuple(pending))

    @override
    async def _async_update_data(self) -> HydraQualityData:
        try:
            return await self.async_fetch(self.client)
        except HydraError as err:
            _raise_update_failed(err)

    @callback
    def async_apply_asset(self, asset: Asset) -> None:
        """An asset was submitted or decided: it joins or leaves the review queue."""
        pending = [item for item in self.data.pending if item.id != asset.id]
        if asset.state == "pending":
            pending.append(asset)
            pending.sort(key=lambda item: (item.created_at, item.id))
        self.async_set_updated_data(replace(self.data, pending=tuple(pending[:PENDING_LIMIT])))

    @callback
    def async_apply_status(self, status: QualityStatus) -> None:
        """The worker's new status (model state, pending count, learning)."""
        self.async_set_updated_data(replace(self.data, status=status))
