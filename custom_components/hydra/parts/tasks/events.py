"""What a pushed task event becomes in Home Assistant: an event for automations, and a notification
to the targets chosen in the options when a task fails (or, if chosen, succeeds). A chapter's
tasks notify nobody: the chapter's own notifications speak for them (one per stage, not one per
image)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant, callback

from hydra_core.scheduler.models import Task
from hydra_core.wire import dump

from ...const import (
    CONF_NOTIFY_FAILURE,
    CONF_NOTIFY_SUCCESS,
    CONF_NOTIFY_TARGETS,
    DOMAIN,
    EVENT_TASK_FAILED,
    EVENT_TASK_STARTED,
    EVENT_TASK_SUCCEEDED,
)
from ...notify import async_send
from .describe import of_chapter, task_summary

if TYPE_CHECKING:
    from ...data import HydraConfigEntry

# The worker's task events that Home Assistant's event bus hears about.
HA_EVENTS = {
    "started": EVENT_TASK_STARTED,
    "succeeded": EVENT_TASK_SUCCEEDED,
    "failed": EVENT_TASK_FAILED,
}


def task_event_data(entry: HydraConfigEntry, task: Task) -> dict[str, Any]:
    """What an event about a task holds: the entry, and the task with its id as ``task_id``."""
    data = dump(task)
    return {"entry_id": entry.entry_id, "task_id": data.pop("id"), **data}


@callback
def async_task_event(hass: HomeAssistant, entry: HydraConfigEntry, event: str, task: Task) -> None:
    """Fire the event an automation can react to; notify when the options ask for it."""
    if (event_type := HA_EVENTS.get(event)) is None:
        return
    hass.bus.async_fire(event_type, task_event_data(entry, task))
    options = entry.options
    wanted = (event == "failed" and options.get(CONF_NOTIFY_FAILURE, True)) or (
        event == "succeeded" and options.get(CONF_NOTIFY_SUCCESS, False)
    )
    targets = options.get(CONF_NOTIFY_TARGETS, [])
    if wanted and targets and not of_chapter(task):
        title, message = _message(entry, task)
        entry.async_create_background_task(
            hass,
            async_send(hass, targets, title, message, about="a Hydra task"),
            f"{DOMAIN} notify task {task.id} {event}",
        )


def _message(entry: HydraConfigEntry, task: Task) -> tuple[str, str]:
    """A short title and message: what ran, where, and how it ended."""
    title = f"Hydra task {task.state}"
    message = f"{task_summary(task)} (task {task.id}) {task.state} on {entry.title}"
    if task.error:
        message += f": {task.error}"
    return title, message
