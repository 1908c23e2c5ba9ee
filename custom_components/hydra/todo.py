"""The worker's task queue as a to-do list: an item per task; adding one queues a task,
completing or deleting one cancels its task, re-opening a failed or cancelled one retries it."""

from datetime import datetime
from typing import override

from homeassistant.components.todo import (
    TodoItem,
    TodoItemStatus,
    TodoListEntity,
    TodoListEntityFeature,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from hydra_core.models import Task

from .const import CONF_DEFAULT_KIND, DEFAULT_KIND
from .coordinator import HydraConfigEntry, HydraTaskCoordinator
from .entity import HydraQueueEntity
from .tasks import (
    async_cancel_task,
    async_queue_task,
    async_retry_task,
    task_description,
    task_summary,
)

# Each change is one request to the worker.
PARALLEL_UPDATES = 0

QUEUE = EntityDescription(key="queue", translation_key="queue")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HydraConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the queue when the worker runs one."""
    if (tasks := entry.runtime_data.tasks) is not None:
        async_add_entities([HydraQueueTodo(tasks)])


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

    entity_description = QUEUE
    _attr_supported_features = (
        TodoListEntityFeature.CREATE_TODO_ITEM
        | TodoListEntityFeature.UPDATE_TODO_ITEM
        | TodoListEntityFeature.DELETE_TODO_ITEM
    )

    def __init__(self, coordinator: HydraTaskCoordinator) -> None:
        """Describe the list."""
        super().__init__(coordinator, QUEUE.key)
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
