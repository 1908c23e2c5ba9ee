"""The chapters' actions. ``hydra.process_chapter``: a Fountain chapter, typed in or read from
Home Assistant's media folder, goes to the worker's creative pipeline; it answers with the
chapter. ``hydra.cancel_chapter`` and ``hydra.retry_chapter`` stop one, or run a failed or
cancelled one again (what was made is kept, and not made again).

Only an administrator may send, cancel or retry a chapter (it reads files and keeps the GPUs
busy for hours); automations act as the administrator who set them up. The worker judges the
chapter, and its refusals (each problem with its line) are translated.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

from homeassistant.core import ServiceCall, ServiceResponse
from homeassistant.helpers import config_validation as cv
import probatio

from hydra_core.creative.client import CreativeClient
from hydra_core.creative.models import MAX_CHAPTER_CHARS, START_CHOICES, ChapterStatus

from ...actions import ENTRY_SCHEMA, Action, action_part
from ...entity import async_actor
from .coordinator import HydraCreativeCoordinator
from .media import async_read_chapter_file
from .requests import async_chapter_request

SERVICE_PROCESS_CHAPTER: Final = "process_chapter"
SERVICE_CANCEL_CHAPTER: Final = "cancel_chapter"
SERVICE_RETRY_CHAPTER: Final = "retry_chapter"
ATTR_CHAPTER_ID: Final = "chapter_id"
ATTR_TEXT: Final = "text"
ATTR_FILE: Final = "file"
ATTR_PROJECT: Final = "project"
ATTR_NAME: Final = "name"
ATTR_START: Final = "start"
ATTR_REGENERATE: Final = "regenerate"
_ONE_CHAPTER: Final = "chapter"

PROCESS_CHAPTER_SCHEMA: Final = probatio.All(
    ENTRY_SCHEMA.extend(
        {
            probatio.Exclusive(ATTR_TEXT, _ONE_CHAPTER): probatio.All(
                cv.string, probatio.Length(min=1, max=MAX_CHAPTER_CHARS)
            ),
            probatio.Exclusive(ATTR_FILE, _ONE_CHAPTER): probatio.All(
                cv.string, probatio.Length(min=1, max=4096)
            ),
            # The worker judges the project's name (its refusal is translated).
            probatio.Optional(ATTR_PROJECT): cv.string,
            probatio.Optional(ATTR_NAME): probatio.All(cv.string, probatio.Length(max=200)),
            probatio.Optional(ATTR_START, default="now"): probatio.In(START_CHOICES),
            probatio.Optional(ATTR_REGENERATE, default=False): cv.boolean,
        }
    ),
    cv.has_at_least_one_key(ATTR_TEXT, ATTR_FILE),
)
CHAPTER_SCHEMA: Final = ENTRY_SCHEMA.extend({probatio.Required(ATTR_CHAPTER_ID): cv.positive_int})


async def _async_process_chapter(call: ServiceCall) -> ServiceResponse:
    creative = action_part(call, HydraCreativeCoordinator)
    # The administrator is checked before any file is looked at.
    actor = await async_actor(call.hass, call.context, admin="chapters")
    text = call.data.get(ATTR_TEXT)
    if text is None:
        text = await async_read_chapter_file(call.hass, call.data[ATTR_FILE])
    chapter = await async_chapter_request(
        creative,
        creative.api.async_process_chapter(
            text,
            actor=actor,
            project=call.data.get(ATTR_PROJECT),
            name=call.data.get(ATTR_NAME),
            start=call.data[ATTR_START],
            regenerate=call.data[ATTR_REGENERATE],
        ),
    )
    return {
        "chapter_id": chapter.id,
        "state": chapter.state,
        "title": chapter.title,
        "project": chapter.project,
        "scenes": chapter.scenes,
        "lines": chapter.lines,
        "images": chapter.images.total,
        "voice_lines": chapter.voices.total,
    }


def _chapter_action(
    request: Callable[[CreativeClient, int], Awaitable[ChapterStatus]],
) -> Callable[[ServiceCall], Coroutine[Any, Any, ServiceResponse]]:
    """An action on one chapter, for an administrator; it answers with the chapter's state."""

    async def handle(call: ServiceCall) -> ServiceResponse:
        creative = action_part(call, HydraCreativeCoordinator)
        await async_actor(call.hass, call.context, admin="chapters")
        chapter = await async_chapter_request(
            creative, request(creative.api, call.data[ATTR_CHAPTER_ID])
        )
        return {"chapter_id": chapter.id, "state": chapter.state}

    return handle


CHAPTER_ACTIONS: Final[dict[str, Action]] = {
    SERVICE_PROCESS_CHAPTER: (_async_process_chapter, PROCESS_CHAPTER_SCHEMA),
    SERVICE_CANCEL_CHAPTER: (_chapter_action(CreativeClient.async_cancel_chapter), CHAPTER_SCHEMA),
    SERVICE_RETRY_CHAPTER: (_chapter_action(CreativeClient.async_retry_chapter), CHAPTER_SCHEMA),
}
