"""What a pushed chapter event becomes in Home Assistant: an event for automations, and a
notification to the targets chosen in the options as the chapter moves on and when it ends.

A chapter's notifications share a tag, so a phone shows one notification per chapter that
each stage replaces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from homeassistant.core import HomeAssistant, callback

from hydra_core.creative.models import ChapterStatus
from hydra_core.wire import dump

from ...const import (
    CONF_NOTIFY_FAILURE,
    CONF_NOTIFY_TARGETS,
    DOMAIN,
    EVENT_CHAPTER_FAILED,
    EVENT_CHAPTER_FINISHED,
    EVENT_CHAPTER_PROGRESS,
    EVENT_CHAPTER_STARTED,
)
from ...notify import async_send
from ...wording import plural
from .describe import chapter_name, made

if TYPE_CHECKING:
    from ...data import HydraConfigEntry

# The worker's chapter events that Home Assistant's event bus hears about ("stage" is progress
# that moved the chapter to its next stage).
HA_EVENTS: Final = {
    "started": EVENT_CHAPTER_STARTED,
    "progress": EVENT_CHAPTER_PROGRESS,
    "stage": EVENT_CHAPTER_PROGRESS,
    "finished": EVENT_CHAPTER_FINISHED,
    "failed": EVENT_CHAPTER_FAILED,
}


def chapter_event_data(entry: HydraConfigEntry, chapter: ChapterStatus) -> dict[str, Any]:
    """What an event about a chapter holds: the entry, and the chapter with its id as
    ``chapter_id``."""
    data = dump(chapter)
    return {"entry_id": entry.entry_id, "chapter_id": data.pop("id"), **data}


@callback
def async_chapter_event(
    hass: HomeAssistant, entry: HydraConfigEntry, event: str, chapter: ChapterStatus
) -> None:
    """Fire the event an automation can react to; notify at each new stage and at the end."""
    if (event_type := HA_EVENTS.get(event)) is None:
        return
    hass.bus.async_fire(
        event_type, {**chapter_event_data(entry, chapter), "stage_changed": event == "stage"}
    )
    options = entry.options
    if not (targets := options.get(CONF_NOTIFY_TARGETS, [])):
        return
    if event == "failed" and not options.get(CONF_NOTIFY_FAILURE, True):
        return
    if (message := _message(event, chapter)) is None:
        return
    entry.async_create_background_task(
        hass,
        async_send(
            hass,
            targets,
            f"Hydra chapter ({entry.title})",
            message,
            about="a chapter",
            tag=f"{DOMAIN}-chapter-{entry.entry_id}-{chapter.id}",
        ),
        f"{DOMAIN} notify chapter {chapter.id} {event}",
    )


def _message(event: str, chapter: ChapterStatus) -> str | None:
    """What the chapter's notification says now; None when there is nothing to tell."""
    name = f"Chapter '{chapter_name(chapter)}'"
    if event == "failed":
        return f"{name} failed: {chapter.error or 'no error given'}"
    if event == "finished":
        return f"{name}: package ready: {made(chapter)}"
    if event != "stage":
        return None
    if chapter.stage == "voices":
        return (
            f"{name}: images done ({chapter.images.done}), "
            f"speaking {plural(chapter.voices.total, 'line')}"
        )
    if chapter.stage == "package":
        done = [f"images done ({chapter.images.done})"]
        if chapter.voices.total:
            done.append(f"voice lines done ({chapter.voices.done})")
        return f"{name}: {', '.join(done)}, writing the Ren'Py package"
    return None
