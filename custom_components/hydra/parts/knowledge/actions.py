"""The knowledge base's actions: ``hydra.search_knowledge`` answers the chunks that answer a
query best; ``hydra.remember`` keeps a fact or a preference, ``hydra.recall`` lists memories
(closest to a query, or the newest) and ``hydra.forget`` deletes one for good.

Anyone who may use Home Assistant may search, remember, recall and forget, as anyone may add
to and clear the shopping list: forgetting must never be harder than telling, and what one
person may read (recall) they may also remove.
"""

from __future__ import annotations

from typing import Any, Final

from homeassistant.core import ServiceCall, ServiceResponse
from homeassistant.helpers import config_validation as cv
from homeassistant.util import dt as dt_util
import probatio

from hydra_core.knowledge.models import MAX_MEMORY, MAX_QUERY, MEMORY_KINDS, Memory, SearchHit
from hydra_core.wire import dump

from ...actions import ENTRY_SCHEMA, Action, action_part
from .coordinator import HydraKnowledgeCoordinator
from .requests import async_forget, async_knowledge_request, async_remember

SERVICE_SEARCH_KNOWLEDGE: Final = "search_knowledge"
SERVICE_REMEMBER: Final = "remember"
SERVICE_RECALL: Final = "recall"
SERVICE_FORGET: Final = "forget"
ATTR_QUERY: Final = "query"
ATTR_LIMIT: Final = "limit"
ATTR_TEXT: Final = "text"
ATTR_KIND: Final = "kind"
ATTR_MEMORY_ID: Final = "memory_id"
# The worker answers at most this many search hits or memories.
MAX_RESULTS: Final = 50


LIMIT: Final = probatio.All(probatio.Coerce(int), probatio.Range(min=1, max=MAX_RESULTS))
SEARCH_SCHEMA: Final = ENTRY_SCHEMA.extend(
    {
        probatio.Required(ATTR_QUERY): probatio.All(
            cv.string, probatio.Strip, probatio.Length(min=1, max=MAX_QUERY)
        ),
        probatio.Optional(ATTR_LIMIT, default=5): LIMIT,
    }
)
REMEMBER_SCHEMA: Final = ENTRY_SCHEMA.extend(
    {
        probatio.Required(ATTR_TEXT): probatio.All(
            cv.string, probatio.Strip, probatio.Length(min=1, max=MAX_MEMORY)
        ),
        probatio.Optional(ATTR_KIND): probatio.In(MEMORY_KINDS),
    }
)
RECALL_SCHEMA: Final = ENTRY_SCHEMA.extend(
    {
        probatio.Optional(ATTR_QUERY): probatio.All(
            cv.string, probatio.Strip, probatio.Length(max=MAX_QUERY)
        ),
        probatio.Optional(ATTR_LIMIT, default=10): LIMIT,
    }
)
FORGET_SCHEMA: Final = ENTRY_SCHEMA.extend(
    {probatio.Required(ATTR_MEMORY_ID): probatio.All(cv.string, probatio.Length(min=1, max=200))}
)


def _time(timestamp: float | None) -> str | None:
    return None if not timestamp else dt_util.utc_from_timestamp(timestamp).isoformat()


def hit_data(hit: SearchHit) -> dict[str, Any]:
    """A search hit as the action and the LLM tool answer it."""
    return {
        "text": hit.text,
        "score": round(hit.score, 4),
        "title": hit.source.title,
        "url": hit.source.url,
        "source": hit.source.kind,
        "published": _time(hit.source.published),
        "topic": hit.topic,
    }


def memory_data(memory: Memory) -> dict[str, Any]:
    """A memory as the actions and the LLM tools answer it."""
    return {
        "memory_id": memory.id,
        "text": memory.text,
        "kind": memory.kind,
        "said_by": None if memory.said_by is None else dump(memory.said_by),
        "created_at": _time(memory.created_at),
        "score": None if memory.score is None else round(memory.score, 4),
    }


async def _async_search(call: ServiceCall) -> ServiceResponse:
    knowledge = action_part(call, HydraKnowledgeCoordinator)
    result = await async_knowledge_request(
        knowledge, knowledge.api.async_search(call.data[ATTR_QUERY], limit=call.data[ATTR_LIMIT])
    )
    return {"query": result.query, "results": [hit_data(hit) for hit in result.hits]}


async def _async_remember(call: ServiceCall) -> ServiceResponse:
    knowledge = action_part(call, HydraKnowledgeCoordinator)
    memory = await async_remember(
        knowledge, call.data[ATTR_TEXT], call.context, call.data.get(ATTR_KIND)
    )
    return memory_data(memory)


async def _async_recall(call: ServiceCall) -> ServiceResponse:
    knowledge = action_part(call, HydraKnowledgeCoordinator)
    memories = await async_knowledge_request(
        knowledge,
        knowledge.api.async_recall(call.data.get(ATTR_QUERY) or None, limit=call.data[ATTR_LIMIT]),
    )
    return {"memories": [memory_data(memory) for memory in memories]}


async def _async_forget(call: ServiceCall) -> ServiceResponse:
    knowledge = action_part(call, HydraKnowledgeCoordinator)
    await async_forget(knowledge, call.data[ATTR_MEMORY_ID])
    return {"memory_id": call.data[ATTR_MEMORY_ID], "forgotten": True}


KNOWLEDGE_ACTIONS: Final[dict[str, Action]] = {
    SERVICE_SEARCH_KNOWLEDGE: (_async_search, SEARCH_SCHEMA),
    SERVICE_REMEMBER: (_async_remember, REMEMBER_SCHEMA),
    SERVICE_RECALL: (_async_recall, RECALL_SCHEMA),
    SERVICE_FORGET: (_async_forget, FORGET_SCHEMA),
}
