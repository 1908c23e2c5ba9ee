"""The knowledge base's tools for conversation agents (the "Hydra" LLM API, llm_api.py):
search it, queue research, remember, recall, forget, and the feed digest. Each answers a
JSON object; a mistake or a worker that fails raises what the conversation turns into an
error result for the model.

They act as the person talking (the LLM context's user): remembering is theirs, and queueing
research obeys the same rules as the action and Assist.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import timedelta
from typing import Any, Final, override

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import config_validation as cv, llm
from homeassistant.util import dt as dt_util
import probatio

from hydra_core.knowledge.models import MAX_MEMORY, MAX_QUERY, MAX_TOPIC, MEMORY_KINDS

from ...const import DOMAIN
from ..tasks.coordinator import HydraTaskCoordinator
from .actions import hit_data, memory_data
from .coordinator import HydraKnowledgeCoordinator
from .requests import (
    NO_KNOWLEDGE,
    async_forget,
    async_knowledge_request,
    async_queue_research,
    async_remember,
    knowledge_worker,
)

# Search hits and memories a tool answers at most.
MAX_TOOL_RESULTS: Final = 10
MAX_URLS: Final = 10
MAX_DIGEST_HOURS: Final = 24 * 7

# Texts are stripped by the tools, not by the schemas: models read the schemas.
_QUERY = probatio.All(cv.string, probatio.Length(min=1, max=MAX_QUERY))
_LIMIT = probatio.All(probatio.Coerce(int), probatio.Range(min=1, max=MAX_TOOL_RESULTS))


class _KnowledgeTool(llm.Tool, ABC):
    """A tool on the knowledge base of the first loaded worker that has one."""

    integration = DOMAIN

    @override
    async def async_call(
        self, hass: HomeAssistant, tool_input: llm.ToolInput, llm_context: llm.LLMContext
    ) -> llm.ToolResult:
        args = {
            key: value.strip() if isinstance(value, str) else value
            for key, value in self.parameters(tool_input.tool_args).items()
        }
        if any(value == "" for value in args.values()):
            raise HomeAssistantError("Give the tool some text: an argument is blank")
        if (knowledge := knowledge_worker(hass)) is None:
            raise HomeAssistantError(NO_KNOWLEDGE)
        return llm.ToolResult(data=await self._async_run(knowledge, args, llm_context))

    @abstractmethod
    async def _async_run(
        self,
        knowledge: HydraKnowledgeCoordinator,
        args: dict[str, Any],
        llm_context: llm.LLMContext,
    ) -> dict[str, Any]:
        """Do it; the JSON object the model reads."""


class SearchKnowledgeTool(_KnowledgeTool):
    """The passages of the knowledge base that answer a question best."""

    name = "search_knowledge"
    title = "Search the Hydra knowledge base"
    description = (
        "Searches the home's knowledge base (research findings, web pages, feed entries) for "
        "passages that answer a question, best first, each with its source title and URL. "
        "Use it before answering questions about topics the household follows or researched."
    )
    parameters = probatio.Schema(
        {
            probatio.Required("query", description="What to look for, in words"): _QUERY,
            probatio.Optional("limit", default=5, description="How many passages"): _LIMIT,
        }
    )
    annotations = llm.ToolAnnotations(read_only=True, destructive=False, open_world=False)

    @override
    async def _async_run(
        self,
        knowledge: HydraKnowledgeCoordinator,
        args: dict[str, Any],
        llm_context: llm.LLMContext,
    ) -> dict[str, Any]:
        result = await async_knowledge_request(
            knowledge, knowledge.api.async_search(args["query"], limit=args["limit"])
        )
        return {"query": result.query, "results": [hit_data(hit) for hit in result.hits]}


class QueueResearchTool(_KnowledgeTool):
    """Queue the worker's research task on a topic."""

    name = "queue_research"
    title = "Queue research"
    description = (
        "Queues a research task on the Hydra worker: it reads the given pages, the feeds it "
        "follows and what it already knows about the topic, and writes a summary with "
        "sources into the knowledge base. It runs in the background (minutes to hours); the "
        "answer is the task's id."
    )
    parameters = probatio.Schema(
        {
            probatio.Required("topic", description="The topic to research"): probatio.All(
                cv.string, probatio.Length(min=1, max=MAX_TOPIC)
            ),
            probatio.Optional(
                "urls", description="Web pages (http or https addresses) to read for it"
            ): probatio.All([cv.string], probatio.Length(max=MAX_URLS)),
        }
    )
    annotations = llm.ToolAnnotations(destructive=False)

    @override
    async def _async_run(
        self,
        knowledge: HydraKnowledgeCoordinator,
        args: dict[str, Any],
        llm_context: llm.LLMContext,
    ) -> dict[str, Any]:
        tasks = knowledge.config_entry.runtime_data.part(HydraTaskCoordinator)
        if tasks is None:
            raise HomeAssistantError("The Hydra worker with the knowledge base runs no task queue")
        task = await async_queue_research(
            tasks, args["topic"], llm_context.context, urls=args.get("urls", ())
        )
        return {"task_id": task.id, "state": task.state, "topic": args["topic"]}


class RememberTool(_KnowledgeTool):
    """Remember a fact or a preference the user told."""

    name = "remember"
    title = "Remember"
    description = (
        "Remembers a fact or a preference the user asked you to keep, across conversations, "
        "in their own words (first person stays first person: 'I prefer oat milk'). Answers "
        "the memory's id."
    )
    parameters = probatio.Schema(
        {
            probatio.Required("text", description="What to remember"): probatio.All(
                cv.string, probatio.Length(min=1, max=MAX_MEMORY)
            ),
            probatio.Optional(
                "kind", description="fact, or preference for likes and wishes"
            ): probatio.In(MEMORY_KINDS),
        }
    )
    annotations = llm.ToolAnnotations(destructive=False, open_world=False)

    @override
    async def _async_run(
        self,
        knowledge: HydraKnowledgeCoordinator,
        args: dict[str, Any],
        llm_context: llm.LLMContext,
    ) -> dict[str, Any]:
        memory = await async_remember(
            knowledge, args["text"], llm_context.context, args.get("kind")
        )
        return memory_data(memory)


class RecallTool(_KnowledgeTool):
    """The memories closest to a topic, or the newest."""

    name = "recall"
    title = "Recall"
    description = (
        "Lists the facts and preferences the household asked Hydra to remember: those "
        "closest to a query, or the newest without one, each with its id, who said it and "
        "when. Use it when the user refers to something they told you before."
    )
    parameters = probatio.Schema(
        {
            probatio.Optional("query", description="What the memories are about"): _QUERY,
            probatio.Optional("limit", default=5, description="How many memories"): _LIMIT,
        }
    )
    annotations = llm.ToolAnnotations(read_only=True, destructive=False, open_world=False)

    @override
    async def _async_run(
        self,
        knowledge: HydraKnowledgeCoordinator,
        args: dict[str, Any],
        llm_context: llm.LLMContext,
    ) -> dict[str, Any]:
        memories = await async_knowledge_request(
            knowledge, knowledge.api.async_recall(args.get("query"), limit=args["limit"])
        )
        return {"memories": [memory_data(memory) for memory in memories]}


class ForgetTool(_KnowledgeTool):
    """Forget a memory for good."""

    name = "forget"
    title = "Forget"
    description = (
        "Deletes a memory for good, by the id recall gave. Use it only when the user asks "
        "you to forget something; recall first to find which memory they mean."
    )
    parameters = probatio.Schema(
        {
            probatio.Required("memory_id", description="The id of the memory"): probatio.All(
                cv.string, probatio.Length(min=1, max=200)
            )
        }
    )
    annotations = llm.ToolAnnotations(destructive=True, idempotent=True, open_world=False)

    @override
    async def _async_run(
        self,
        knowledge: HydraKnowledgeCoordinator,
        args: dict[str, Any],
        llm_context: llm.LLMContext,
    ) -> dict[str, Any]:
        await async_forget(knowledge, args["memory_id"])
        return {"memory_id": args["memory_id"], "forgotten": True}


class FeedDigestTool(_KnowledgeTool):
    """The newest feed entries, most interesting first."""

    name = "feed_digest"
    title = "Feed digest"
    description = (
        "Lists the entries of the RSS and Atom feeds Hydra follows that arrived in the last "
        "hours, ranked by the household's topics of interest, each with title, feed, link "
        "and summary."
    )
    parameters = probatio.Schema(
        {
            probatio.Optional("hours", default=24, description="How far back"): probatio.All(
                probatio.Coerce(float), probatio.Range(min=1, max=MAX_DIGEST_HOURS)
            )
        }
    )
    annotations = llm.ToolAnnotations(read_only=True, destructive=False, open_world=False)

    @override
    async def _async_run(
        self,
        knowledge: HydraKnowledgeCoordinator,
        args: dict[str, Any],
        llm_context: llm.LLMContext,
    ) -> dict[str, Any]:
        since = dt_util.utcnow() - timedelta(hours=args["hours"])
        digest = await async_knowledge_request(
            knowledge, knowledge.api.async_digest(since.timestamp())
        )
        return {
            "since": since.isoformat(),
            "topics": list(digest.topics),
            "entries": [
                {
                    "title": item.title,
                    "feed": item.feed,
                    "url": item.url,
                    "summary": item.summary,
                    "published": None
                    if item.published is None
                    else dt_util.utc_from_timestamp(item.published).isoformat(),
                    "topic": item.topic,
                }
                for item in digest.items
            ],
        }


KNOWLEDGE_TOOLS: Final[tuple[llm.Tool, ...]] = (
    SearchKnowledgeTool(),
    QueueResearchTool(),
    RememberTool(),
    RecallTool(),
    ForgetTool(),
    FeedDigestTool(),
)
