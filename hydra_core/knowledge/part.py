"""The knowledge part: the knowledge base, research, feeds, mail awareness and memories."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

from ..scheduler.handlers import TaskHandler
from ..worker.part import BuildContext, RunningPart
from .embeddings import EmbeddingEngine
from .models import EVENT_FINDING, EVENT_KNOWLEDGE, EVENT_MAIL
from .options import KnowledgeOptions
from .research import ResearchHandler
from .service import KnowledgeService


class KnowledgePart(RunningPart[KnowledgeService]):
    """Built before the task queue, which runs its ``research`` kind."""

    name = "knowledge"
    options = KnowledgeOptions
    event_types = (EVENT_KNOWLEDGE, EVENT_FINDING, EVENT_MAIL)
    disabled_code = "knowledge_disabled"
    disabled_message = "This worker keeps no knowledge base"
    route_modules = (
        "routes",
    )  # ``/knowledge``, ``/findings``, ``/memories``, ``/feeds``, ``/mail``

    @classmethod
    def build(cls, context: BuildContext) -> Self | None:
        """Off when the knowledge option is false."""
        options = context.options(KnowledgeOptions)
        if not options.knowledge:
            return None
        embedder = EmbeddingEngine(context.models_dir, idle_unload_s=options.embedding_idle_unload)
        return cls(
            KnowledgeService(options, data_dir=context.data_dir, embedder=embedder, bus=context.bus)
        )

    def task_handlers(self) -> Sequence[TaskHandler]:
        """research."""
        return (ResearchHandler(self.service),)

    def capabilities(self) -> tuple[str, ...]:
        """Search and research; summaries by a language model when one is configured."""
        return ("search", "research", "llm") if self.service.chat else ("search", "research")
