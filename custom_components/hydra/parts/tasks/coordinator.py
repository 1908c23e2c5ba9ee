"""The worker's task queue: tasks pushed by the event stream, polled every minute."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, override

from homeassistant.core import HomeAssistant, callback

from hydra_core.client import HydraClient, HydraError
from hydra_core.models import WorkerEvent
from hydra_core.scheduler.client import TasksClient
from hydra_core.scheduler.models import (
    EVENT_SCHEDULER,
    EVENT_TASK,
    SchedulerSettings,
    SchedulerState,
    Task,
)
from hydra_core.wire import dump, load

from ...const import COUNTS_COOLDOWN_S, DOMAIN, LOGGER, TASK_LIST_LIMIT, TASKS_SCAN_INTERVAL
from ...coordinator import HydraPartCoordinator, raise_update_failed
from .events import async_task_event

if TYPE_CHECKING:
    from ...data import HydraConfigEntry


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


class HydraTaskCoordinator(HydraPartCoordinator[HydraTaskData, TasksClient]):
    """The worker's task queue: tasks pushed by the event stream, polled every minute.

    Today's counts are the worker's: a task that changes state has them read again (at most
    once per COUNTS_COOLDOWN_S, and always by a read that starts after the change).
    """

    part = "tasks"
    api_type = TasksClient
    disabled = "scheduler_disabled"
    interval = TASKS_SCAN_INTERVAL

    def __init__(
        self, hass: HomeAssistant, entry: HydraConfigEntry, client: HydraClient, worker_id: str
    ) -> None:
        """Set up the coordinator for one worker's queue."""
        super().__init__(hass, entry, client, worker_id)
        # Tasks pushed while a poll is under way, applied again on top of what it read.
        self._during_poll: list[Task] | None = None
        self._counts_stale = False
        self._counts_reader: asyncio.Task[None] | None = None

    @override
    async def async_fetch(self) -> HydraTaskData:
        """Read the scheduler, the newest tasks and the running ones."""
        scheduler, newest, running = await asyncio.gather(
            self.api.async_scheduler(),
            self.api.async_tasks(limit=TASK_LIST_LIMIT),
            self.api.async_tasks(state="running"),
        )
        return HydraTaskData(
            scheduler=scheduler, tasks=_keep({task.id: task for task in (*running, *newest)})
        )

    @override
    async def _async_update_data(self) -> HydraTaskData:
        self._during_poll = []
        try:
            data = await self.async_fetch()
        except HydraError as err:
            raise_update_failed(err)
        finally:
            pushed, self._during_poll = self._during_poll, None
        tasks = {task.id: task for task in data.tasks}
        tasks.update((task.id, task) for task in pushed)
        return replace(data, tasks=_keep(tasks))

    @property
    def tasks(self) -> dict[int, Task]:
        """The tasks shown, by id."""
        return {task.id: task for task in self.data.tasks}

    @override
    async def async_handle_event(self, event: WorkerEvent) -> None:
        """Apply a pushed task or scheduler change; tell automations (and notify targets) how
        tasks went."""
        if event.type == EVENT_SCHEDULER:
            self.async_apply_settings(load(SchedulerSettings, event.data))
        elif event.type == EVENT_TASK:
            task = load(Task, event.data["task"])
            self.async_apply_task(task)
            if event.data["event"] != "progress":
                self._async_counts_changed()
            async_task_event(self.hass, self.config_entry, event.data["event"], task)

    @override
    def diagnostics(self) -> dict[str, Any]:
        return {
            **super().diagnostics(),
            "event_stream_connected": self.pushed,
            "scheduler": dump(self.data.scheduler),
            # Payloads may hold what the user typed; kinds and states are enough to debug.
            "recent": [
                {"id": task.id, "kind": task.kind, "state": task.state, "error": task.error}
                for task in self.data.tasks
            ],
        }

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
                scheduler = await self.api.async_scheduler()
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
