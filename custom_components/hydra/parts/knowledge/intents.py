"""The knowledge base in Assist: "what do we know about …" (the best search hit, shortened,
and its source), "remember that …", "what do you remember about …" and "what's new in my
feeds" (the digest of the last 24 hours). "Queue research on …" is the task queue's intent
(intent.py), which queues the worker's research task.

They answer from the knowledge base of the first loaded worker that has one. What is said
in the first person ("I prefer oat milk") is kept as said, and read back in the second
("you prefer oat milk").
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import timedelta
import re
from typing import Any, Final, override

from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import intent
from homeassistant.util import dt as dt_util
import probatio

from ...const import DOMAIN
from ...wording import NO_WORKER, join
from .coordinator import HydraKnowledgeCoordinator
from .describe import digest_text, hit_answer, to_you
from .requests import NO_KNOWLEDGE, async_knowledge_request, async_remember, knowledge_worker

INTENT_KNOWLEDGE_SEARCH: Final = "HydraKnowledgeSearch"
INTENT_REMEMBER: Final = "HydraRemember"
INTENT_RECALL: Final = "HydraRecall"
INTENT_FEED_DIGEST: Final = "HydraFeedDigest"
# Search hits read for an answer; the best is spoken.
HITS_READ: Final = 3
# Memories spoken in one answer.
MEMORIES_SPOKEN: Final = 3
# "What's new in my feeds" covers this long.
DIGEST_SPAN: Final = timedelta(hours=24)
# What a wildcard may bring along that is no part of the fact: "remember [that] …".
_LEADING_THAT = re.compile(r"^(?:that|about)\s+", re.I)


def _cleaned(value: Any) -> str:
    """A wildcard slot as the text it stands for: no leading "that", no closing stop."""
    return _LEADING_THAT.sub("", str(value).strip()).rstrip(" .!?")


class _KnowledgeIntentHandler(intent.IntentHandler, ABC):
    """An intent answered from the knowledge base; says why not where there is none, and what
    went wrong where the worker fails."""

    @override
    async def async_handle(self, intent_obj: intent.Intent) -> intent.IntentResponse:
        slots = self.async_validate_slots(intent_obj.slots)
        response = intent_obj.create_response()
        hass = intent_obj.hass
        if (knowledge := knowledge_worker(hass)) is None:
            loaded = hass.config_entries.async_loaded_entries(DOMAIN)
            response.async_set_error(
                intent.IntentResponseErrorCode.FAILED_TO_HANDLE,
                NO_KNOWLEDGE if loaded else NO_WORKER,
            )
            return response
        try:
            speech = await self._async_answer(knowledge, intent_obj, slots)
        except HomeAssistantError as err:
            response.async_set_error(
                intent.IntentResponseErrorCode.FAILED_TO_HANDLE,
                f"I could not {self._attempt(slots)}: {err}",
            )
            return response
        response.async_set_speech(speech)
        return response

    @abstractmethod
    async def _async_answer(
        self, knowledge: HydraKnowledgeCoordinator, intent_obj: intent.Intent, slots: Any
    ) -> str:
        """Ask the knowledge base; what to say."""

    @abstractmethod
    def _attempt(self, slots: Any) -> str:
        """What was tried, for "I could not …"."""


class KnowledgeSearchIntent(_KnowledgeIntentHandler):
    """What the knowledge base knows about a topic: its best passage and where it is from."""

    intent_type = INTENT_KNOWLEDGE_SEARCH
    description = (
        "Tells what the Hydra knowledge base knows about a topic: the passage that answers it "
        "best, and its source"
    )

    @property
    @override
    def slot_schema(self) -> dict[str, Callable[[Any], str]]:
        return {"topic": intent.non_empty_string}

    @override
    async def _async_answer(
        self, knowledge: HydraKnowledgeCoordinator, intent_obj: intent.Intent, slots: Any
    ) -> str:
        topic = _cleaned(slots["topic"]["value"])
        result = await async_knowledge_request(
            knowledge, knowledge.api.async_search(topic, limit=HITS_READ)
        )
        if not result.hits:
            return f"I don't know anything about {topic} yet."
        return hit_answer(result.hits[0])

    @override
    def _attempt(self, slots: Any) -> str:
        return f"look up {_cleaned(slots['topic']['value'])}"


class RememberIntent(_KnowledgeIntentHandler):
    """Remember a fact or a preference, said by whoever asked."""

    intent_type = INTENT_REMEMBER
    description = (
        "Remembers a fact or a preference in the Hydra knowledge base, for Assist and "
        "conversation agents to recall later"
    )

    @property
    @override
    def slot_schema(self) -> dict[str, Callable[[Any], str]]:
        return {"fact": intent.non_empty_string}

    @override
    async def _async_answer(
        self, knowledge: HydraKnowledgeCoordinator, intent_obj: intent.Intent, slots: Any
    ) -> str:
        fact = _cleaned(slots["fact"]["value"])
        await async_remember(knowledge, fact, intent_obj.context)
        return f"I'll remember that {to_you(fact)}."

    @override
    def _attempt(self, slots: Any) -> str:
        return "remember that"


class RecallIntent(_KnowledgeIntentHandler):
    """What Hydra was told about a topic (or lately, without one)."""

    intent_type = INTENT_RECALL
    description = (
        "Tells what Hydra remembers about a topic: the facts and preferences it was told "
        "that are closest to it (the newest without a topic)"
    )

    @property
    @override
    def slot_schema(self) -> dict[Any, Callable[[Any], str]]:
        return {probatio.Optional("topic"): intent.non_empty_string}

    @override
    async def _async_answer(
        self, knowledge: HydraKnowledgeCoordinator, intent_obj: intent.Intent, slots: Any
    ) -> str:
        topic = _cleaned(slots["topic"]["value"]) if "topic" in slots else None
        memories = await async_knowledge_request(
            knowledge, knowledge.api.async_recall(topic, limit=MEMORIES_SPOKEN)
        )
        if not memories:
            about = f" about {topic}" if topic else ""
            return f"I don't remember anything{about}."
        return f"I remember {join([f'that {to_you(memory.text)}' for memory in memories])}."

    @override
    def _attempt(self, slots: Any) -> str:
        return "look through what I remember"


class FeedDigestIntent(_KnowledgeIntentHandler):
    """The feed entries of the last day that match the topics of interest best."""

    intent_type = INTENT_FEED_DIGEST
    description = (
        "Tells what is new in the feeds Hydra follows since yesterday, most interesting first"
    )

    @override
    async def _async_answer(
        self, knowledge: HydraKnowledgeCoordinator, intent_obj: intent.Intent, slots: Any
    ) -> str:
        since = (dt_util.utcnow() - DIGEST_SPAN).timestamp()
        digest = await async_knowledge_request(knowledge, knowledge.api.async_digest(since))
        return digest_text(digest.items) or "Nothing new in your feeds since yesterday."

    @override
    def _attempt(self, slots: Any) -> str:
        return "read your feeds"


def knowledge_intents() -> tuple[intent.IntentHandler, ...]:
    """The knowledge base's intents, for intent.py to register."""
    return (KnowledgeSearchIntent(), RememberIntent(), RecallIntent(), FeedDigestIntent())
