"""The task queue's entities: its counts, the progress of the newest research and maintenance
task, the autonomous work switch, the scheduler's settings and the queue as a to-do list (an
item per task; adding one queues a task, completing or deleting one cancels its task, re-opening
a failed or cancelled one retries it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, override

from homeassistant.components.number import (
    NumberDeviceClass,
    NumberEntity,
    NumberEntityDescription,
    NumberMode,
)
from homeassistant.components.sensor import (
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.components.todo.const import TodoItemStatus, TodoListEntityFeature
from homeassistant.components.todo.entity import TodoItem, TodoListEntity
from homeassistant.const import PERCENTAGE, EntityCategory, UnitOfInformation, UnitOfTime
from homeassistant.core import callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from hydra_core.knowledge.models import RESEARCH_KIND
from hydra_core.scheduler.models import SETTING_LIMITS, Task

from ...const import CONF_DEFAULT_KIND, DEFAULT_KIND
from ...data import HydraConfigEntry
from ...entity import HydraWorkerPartEntity
from .coordinator import HydraTaskCoordinator
from .describe import task_description, task_summary
from .requests import (
    MAINTENANCE_KIND,
    async_cancel_task,
    async_queue_task,
    async_retry_task,
    async_set_paused,
    async_update_scheduler,
)


@dataclass(frozen=True, kw_only=True)
class HydraQueueSensorDescription(SensorEntityDescription):
    """A count of tasks in one state; ``today`` counts only those finished since midnight."""

    task_state: str
    today: bool = False


QUEUE_SENSORS: tuple[HydraQueueSensorDescription, ...] = (
    HydraQueueSensorDescription(
        key="tasks_queued",
        translation_key="tasks_queued",
        task_state="queued",
        state_class=SensorStateClass.MEASUREMENT,
    ),
    HydraQueueSensorDescription(
        key="tasks_running",
        translation_key="tasks_running",
        task_state="running",
        state_class=SensorStateClass.MEASUREMENT,
    ),
    HydraQueueSensorDescription(
        key="tasks_waiting",
        translation_key="tasks_waiting",
        task_state="waiting",
        state_class=SensorStateClass.MEASUREMENT,
    ),
    # A retried task leaves the failed count again: a total that may go down, reset at midnight.
    HydraQueueSensorDescription(
        key="tasks_succeeded_today",
        translation_key="tasks_succeeded_today",
        task_state="succeeded",
        today=True,
        state_class=SensorStateClass.TOTAL,
    ),
    HydraQueueSensorDescription(
        key="tasks_failed_today",
        translation_key="tasks_failed_today",
        task_state="failed",
        today=True,
        state_class=SensorStateClass.TOTAL,
    ),
)


@dataclass(frozen=True, kw_only=True)
class HydraWorkSensorDescription(SensorEntityDescription):
    """How far the newest task of one kind is, for a worker whose queue runs that kind."""

    kind: str


WORK_SENSORS: tuple[HydraWorkSensorDescription, ...] = tuple(
    HydraWorkSensorDescription(
        key=f"{kind}_progress",
        translation_key=f"{kind}_progress",
        kind=kind,
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=0,
    )
    for kind in (RESEARCH_KIND, MAINTENANCE_KIND)
)
# A finished task's stage; a running one's is what its handler last reported.
STAGE_DONE = "done"


AUTONOMOUS_WORK = SwitchEntityDescription(key="autonomous_work", translation_key="autonomous_work")


@dataclass(frozen=True, kw_only=True)
class HydraSchedulerNumberDescription(NumberEntityDescription):
    """A scheduler setting; ``key`` is its name in SchedulerSettings."""

    whole: bool = False


def _setting(
    key: str, translation_key: str, step: float, mode: NumberMode, **unit: Any
) -> HydraSchedulerNumberDescription:
    """A setting's number, over the range the worker accepts."""
    low, high = SETTING_LIMITS[key]
    return HydraSchedulerNumberDescription(
        key=key,
        translation_key=translation_key,
        entity_category=EntityCategory.CONFIG,
        native_min_value=low,
        native_max_value=high,
        native_step=step,
        mode=mode,
        whole=key == "max_concurrent",
        **unit,
    )


SCHEDULER_NUMBERS: tuple[HydraSchedulerNumberDescription, ...] = (
    _setting(
        "max_gpu_utilization",
        "max_gpu_utilization",
        1,
        NumberMode.SLIDER,
        native_unit_of_measurement=PERCENTAGE,
    ),
    _setting(
        "min_free_vram_gb",
        "min_free_vram",
        0.5,
        NumberMode.BOX,
        device_class=NumberDeviceClass.DATA_SIZE,
        # The worker counts VRAM in units of 1024³ bytes.
        native_unit_of_measurement=UnitOfInformation.GIBIBYTES,
    ),
    _setting(
        "poll_interval_s",
        "poll_interval",
        1,
        NumberMode.BOX,
        device_class=NumberDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
    ),
    _setting("max_concurrent", "max_concurrent", 1, NumberMode.BOX),
)


QUEUE = EntityDescription(key="queue", translation_key="queue")


@callback
def async_setup_sensors(
    entry: HydraConfigEntry,
    coordinator: HydraTaskCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The queue's counts, and the progress of each long kind of work the queue runs."""
    async_add_entities(HydraQueueSensor(coordinator, description) for description in QUEUE_SENSORS)
    kinds = coordinator.data.scheduler.kinds
    async_add_entities(
        HydraWorkSensor(coordinator, description)
        for description in WORK_SENSORS
        if description.kind in kinds
    )


@callback
def async_setup_switches(
    entry: HydraConfigEntry,
    coordinator: HydraTaskCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The autonomous work switch."""
    async_add_entities([HydraAutonomousWorkSwitch(coordinator, AUTONOMOUS_WORK)])


@callback
def async_setup_numbers(
    entry: HydraConfigEntry,
    coordinator: HydraTaskCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The scheduler's settings."""
    async_add_entities(
        HydraSchedulerNumber(coordinator, description) for description in SCHEDULER_NUMBERS
    )


@callback
def async_setup_todo(
    entry: HydraConfigEntry,
    coordinator: HydraTaskCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The queue as a to-do list."""
    async_add_entities([HydraQueueTodo(coordinator, QUEUE)])


class HydraQueueEntity(HydraWorkerPartEntity[HydraTaskCoordinator]):
    """An entity of the worker's task queue, on the worker's device."""


class HydraQueueSensor(HydraQueueEntity, SensorEntity):
    """How many of the worker's tasks are in one state."""

    entity_description: HydraQueueSensorDescription

    @property
    @override
    def native_value(self) -> int:
        return self.coordinator.data.scheduler.counts.get(self.entity_description.task_state, 0)

    @property
    @override
    def last_reset(self) -> datetime | None:
        return dt_util.start_of_local_day() if self.entity_description.today else None


class HydraWorkSensor(HydraQueueEntity, SensorEntity):
    """The percent done of the running task of one kind (else the newest), pushed with each
    progress event; its stage ("queued", what the handler is doing, "done", "failed"), task
    and topic as attributes. Unknown until the first task of the kind."""

    entity_description: HydraWorkSensorDescription

    @property
    def task(self) -> Task | None:
        """The running task of the kind, else the newest one Home Assistant keeps."""
        tasks = [
            task
            for task in self.coordinator.data.tasks
            if task.kind == self.entity_description.kind
        ]
        return next((task for task in tasks if task.state == "running"), None) or max(
            tasks, key=lambda task: task.id, default=None
        )

    @property
    @override
    def native_value(self) -> float | None:
        task = self.task
        return None if task is None else round(task.progress, 1)

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any]:
        if (task := self.task) is None:
            return {}
        if task.state == "succeeded":
            stage = STAGE_DONE
        elif task.state == "running":
            stage = task.progress_message or task.state
        else:
            stage = task.state
        return {
            "task_id": task.id,
            "state": task.state,
            "stage": stage,
            "topic": task.payload.get("topic"),
            "error": task.error,
        }


class HydraAutonomousWorkSwitch(HydraQueueEntity, SwitchEntity):
    """On while the worker starts queued tasks by itself; off pauses the queue (running tasks
    finish)."""

    @property
    @override
    def is_on(self) -> bool:
        return not self.coordinator.data.scheduler.settings.paused

    @override
    async def async_turn_on(self, **kwargs: Any) -> None:
        await self._async_set(paused=False)

    @override
    async def async_turn_off(self, **kwargs: Any) -> None:
        await self._async_set(paused=True)

    async def _async_set(self, *, paused: bool) -> None:
        await async_set_paused(self.coordinator, self._context, paused=paused)


class HydraSchedulerNumber(HydraQueueEntity, NumberEntity):
    """One of the scheduler's settings."""

    entity_description: HydraSchedulerNumberDescription

    @property
    @override
    def native_value(self) -> float:
        value: float = getattr(
            self.coordinator.data.scheduler.settings, self.entity_description.key
        )
        return value

    @override
    async def async_set_native_value(self, value: float) -> None:
        setting = int(value) if self.entity_description.whole else value
        await async_update_scheduler(
            self.coordinator, self._context, **{self.entity_description.key: setting}
        )


def _dispatch_order(task: Task) -> tuple[int, int, int]:
    """Running tasks first, then the order the worker will start the others in."""
    return (task.state != "running", -task.priority, task.id)


def _item(task: Task) -> TodoItem:
    finished_at = task.finished_at
    return TodoItem(
        uid=str(task.id),
        summary=task_summary(task),
        status=TodoItemStatus.COMPLETED if task.finished else TodoItemStatus.NEEDS_ACTION,
        description=task_description(task),
        completed=None
        if finished_at is None
        else datetime.fromtimestamp(finished_at, tz=dt_util.UTC),
    )


class HydraQueueTodo(HydraQueueEntity, TodoListEntity):
    """The worker's newest tasks: unfinished ones in the order they run, then finished ones."""

    _attr_supported_features = (
        TodoListEntityFeature.CREATE_TODO_ITEM
        | TodoListEntityFeature.UPDATE_TODO_ITEM
        | TodoListEntityFeature.DELETE_TODO_ITEM
    )

    def __init__(self, coordinator: HydraTaskCoordinator, description: EntityDescription) -> None:
        """Describe the list."""
        super().__init__(coordinator, description)
        self._attr_todo_items = self._items()

    def _items(self) -> list[TodoItem]:
        tasks = self.coordinator.data.tasks
        active = sorted((task for task in tasks if not task.finished), key=_dispatch_order)
        return [_item(task) for task in (*active, *(task for task in tasks if task.finished))]

    @callback
    @override
    def _handle_coordinator_update(self) -> None:
        self._attr_todo_items = self._items()
        super()._handle_coordinator_update()

    @override
    async def async_create_todo_item(self, item: TodoItem) -> None:
        """Queue a task: of the kind the item names, else of the kind chosen in the options."""
        summary = (item.summary or "").strip()
        kind = (
            summary
            if summary in self.coordinator.data.scheduler.kinds
            else self.coordinator.config_entry.options.get(CONF_DEFAULT_KIND, DEFAULT_KIND)
        )
        await async_queue_task(self.coordinator, kind, {}, self._context)

    @override
    async def async_update_todo_item(self, item: TodoItem) -> None:
        """Completing an item cancels its task; re-opening a failed or cancelled one retries it.

        Other edits have nothing to change: a task's kind and payload are fixed once queued.
        """
        if item.uid is None:
            return
        task = self.coordinator.tasks.get(int(item.uid))
        if task is None:
            return
        if item.status == TodoItemStatus.COMPLETED and not task.finished:
            await async_cancel_task(self.coordinator, task.id)
        elif item.status == TodoItemStatus.NEEDS_ACTION and task.finished:
            await async_retry_task(self.coordinator, task.id)

    @override
    async def async_delete_todo_items(self, uids: list[str]) -> None:
        """Cancel the tasks; finished ones stay in the worker's history and on the list."""
        for uid in uids:
            try:
                await async_cancel_task(self.coordinator, int(uid))
            except ServiceValidationError as err:
                if err.translation_key != "task_finished":
                    raise
