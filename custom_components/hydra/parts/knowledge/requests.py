"""What Home Assistant asks of the worker's knowledge base, shared by the actions, Assist and
the LLM tools, so each request and its mistakes read the same whichever way it came: which
worker answers, research queued, memories kept and forgotten, searches and digests."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, Final

from homeassistant.core import Context, HomeAssistant

from hydra_core.knowledge.models import RESEARCH_KIND, Memory
from hydra_core.scheduler.models import Task

from ...const import DOMAIN
from ...entity import async_actor
from ...helpers import async_worker_request
from ..tasks.coordinator import HydraTaskCoordinator
from ..tasks.requests import async_queue_task
from .coordinator import HydraKnowledgeCoordinator

if TYPE_CHECKING:
    from ...data import HydraConfigEntry

# What the user reads when the worker fails a request to its knowledge base.
FAILED_KEY: Final = "knowledge_request_failed"
NO_KNOWLEDGE: Final = "No Hydra worker has a knowledge base."
# Said first in the first person ("I prefer ..."), a memory is a preference.
_PREFERENCE_STARTS: Final = (
    "i prefer",
    "i like",
    "i love",
    "i hate",
    "i dislike",
    "i don't like",
    "i do not like",
    "i'd rather",
    "i would rather",
    "i want",
    "i never",
    "i always",
    "we prefer",
    "we like",
    "we always",
    "we never",
    "my favorite",
    "my favourite",
)


def knowledge_worker(hass: HomeAssistant) -> HydraKnowledgeCoordinator | None:
    """The knowledge base Assist, the LLM tools and Home Assistant's mail and feeds use: that
    of the first loaded worker that has one."""
    entries: list[HydraConfigEntry] = hass.config_entries.async_loaded_entries(DOMAIN)
    for entry in entries:
        if (knowledge := entry.runtime_data.part(HydraKnowledgeCoordinator)) is not None:
            return knowledge
    return None


async def async_knowledge_request[R](
    knowledge: HydraKnowledgeCoordinator, request: Awaitable[R]
) -> R:
    """The worker's answer about its knowledge base, or the error the user reads."""
    return await async_worker_request(knowledge, request, failed_key=FAILED_KEY)


def memory_kind(text: str) -> str:
    """``preference`` for what someone likes or wants ("I prefer tea"), else ``fact``."""
    said = " ".join(text.lower().replace("\u2019", "'").split())
    return "preference" if said.startswith(_PREFERENCE_STARTS) else "fact"


async def async_remember(
    knowledge: HydraKnowledgeCoordinator,
    text: str,
    context: Context | None,
    kind: str | None = None,
) -> Memory:
    """Remember what the user or automation of ``context`` said (anyone may)."""
    actor = await async_actor(knowledge.hass, context)
    return await async_knowledge_request(
        knowledge, knowledge.api.async_remember(text, actor=actor, kind=kind or memory_kind(text))
    )


async def async_forget(knowledge: HydraKnowledgeCoordinator, memory_id: str) -> None:
    """Forget a memory for good. Anyone who may ask Hydra to remember may ask it to forget:
    forgetting must never be harder than telling."""
    await async_knowledge_request(knowledge, knowledge.api.async_forget(memory_id))


async def async_queue_research(
    tasks: HydraTaskCoordinator,
    topic: str,
    context: Context | None,
    *,
    urls: Sequence[str] = (),
    depth: int | None = None,
) -> Task:
    """Queue the worker's research task on a topic (and pages to read for it)."""
    payload: dict[str, Any] = {"topic": topic}
    if urls:
        payload["urls"] = list(urls)
    if depth is not None:
        payload["depth"] = depth
    return await async_queue_task(tasks, RESEARCH_KIND, payload, context)
