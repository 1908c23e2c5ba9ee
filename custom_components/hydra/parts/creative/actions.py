"""The ``hydra.process_chapter`` action: a Fountain chapter, typed in or read from Home
Assistant's media folder, goes to the worker's creative pipeline; it answers with the chapter.

Only an administrator may send one (it reads files and keeps the GPUs busy for hours);
automations act as the administrator who set them up. The worker judges the chapter, and its
refusals (each problem with its line) are translated.
"""

from __future__ import annotations

from typing import Final

from homeassistant.core import ServiceCall, ServiceResponse
from homeassistant.helpers import config_validation as cv
import probatio

from hydra_core.creative.models import MAX_CHAPTER_CHARS, START_CHOICES

from ...actions import ENTRY_SCHEMA, Action, action_part
from ...entity import async_actor
from ...helpers import async_worker_request
from .coordinator import HydraCreativeCoordinator
from .media import async_read_chapter_file
from .requests import FAILED_KEY

SERVICE_PROCESS_CHAPTER: Final = "process_chapter"
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


async def _async_process_chapter(call: ServiceCall) -> ServiceResponse:
    creative = action_part(call, HydraCreativeCoordinator)
    actor = await async_actor(call.hass, call.context, admin="chapters")
    text = call.data.get(ATTR_TEXT)
    if text is None:
        text = await async_read_chapter_file(call.hass, call.data[ATTR_FILE])
    chapter = await async_worker_request(
        creative,
        creative.api.async_process_chapter(
            text,
            actor=actor,
            project=call.data.get(ATTR_PROJECT),
            name=call.data.get(ATTR_NAME),
            start=call.data[ATTR_START],
            regenerate=call.data[ATTR_REGENERATE],
        ),
        failed_key=FAILED_KEY,
    )
    creative.async_apply_chapter(chapter)
    if not creative.pushed:
        await creative.async_request_refresh()
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


CHAPTER_ACTIONS: Final[dict[str, Action]] = {
    SERVICE_PROCESS_CHAPTER: (_async_process_chapter, PROCESS_CHAPTER_SCHEMA),
}
