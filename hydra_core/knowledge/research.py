"""The ``research`` task: a topic (and optional URLs, feeds, depth) becomes a finding.

1. **Gather** sources: the URLs given, the entries of the feeds given (and of the feeds polled)
   that are close to the topic, and what the knowledge base already holds on it.
2. **Fetch** each web source with limits (size, time, content type, redirects; loopback and
   private addresses refused unless the option allows them) and **extract** its main text.
3. **Keep** it: chunked, embedded, stored once (a chunk's id is its content's hash).
4. **Summarise** the passages closest to the topic: by the language model when one is
   configured, else the most central sentences; either way citing ``[n]`` sources. A language
   model that fails falls back to the extractive summary, and says so in the finding.

Every source read is recorded before the next one, so research interrupted by a restart goes on
with what is left. A source that cannot be read is a problem the finding lists, not a failure:
the other sources are still used.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ..errors import Refusal
from ..scheduler.handlers import PayloadError, TaskContext, TaskHandler, require_keys
from ..wire import dump
from .extract import extract
from .feeds import FeedState, poll
from .fetch import fetch
from .llm import LlmError
from .models import MAX_TOPIC, RESEARCH_KIND, Finding, Source
from .service import KnowledgeService
from .summary import Passage, by_llm, extractive

_LOGGER = logging.getLogger(__name__)

MAX_URLS = 20
MAX_DEPTH = 3
# Passages the summary is made from.
PASSAGES = 8


class ResearchHandler(TaskHandler):
    """``research``: ``{topic, urls?, feeds?, depth?}`` → a finding with cited sources."""

    kind = RESEARCH_KIND
    max_attempts = 3

    def __init__(self, service: KnowledgeService) -> None:
        self.service = service
        # The summaries' language model, where the VRAM arbiter knows it (a local Ollama's).
        options = service.options
        self.models = (options.llm_model,) if options.llm_url and options.llm_model else ()

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A topic of up to 300 characters; at most 20 http(s) URLs and feeds; depth 1-3."""
        require_keys(payload, {"topic": str, "urls": list, "feeds": list, "depth": int})
        topic = payload.get("topic", "").strip() if isinstance(payload.get("topic"), str) else ""
        if not topic:
            raise PayloadError("topic is required: what to research")
        if len(topic) > MAX_TOPIC:
            raise PayloadError(f"topic is at most {MAX_TOPIC} characters")
        clean: dict[str, Any] = {"topic": topic}
        for key in ("urls", "feeds"):
            values = payload.get(key, [])
            if len(values) > MAX_URLS:
                raise PayloadError(f"{key} holds at most {MAX_URLS} addresses")
            for value in values:
                if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https"):
                    raise PayloadError(f"{key} must be http:// or https:// addresses")
            if values:
                clean[key] = list(dict.fromkeys(values))
        depth = payload.get("depth", 1)
        if not 1 <= depth <= MAX_DEPTH:
            raise PayloadError(f"depth is 1 to {MAX_DEPTH}")
        clean["depth"] = depth
        return clean

    async def run(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        """Gather, read, keep, summarise."""
        service = self.service
        topic = payload["topic"]
        done = await service.store.async_finding_of_task(context.task_id)
        if done is not None:  # finished before a restart, between the finding and the result
            return _result(done)
        limit = service.options.research_max_sources * payload.get("depth", 1)
        problems: list[str] = []
        await context.report_progress(5, "gathering sources")
        urls = list(payload.get("urls", []))
        urls += await self._feed_sources(topic, payload.get("feeds", []), problems)
        urls = list(dict.fromkeys(urls))[:limit]
        read = await service.store.async_research_read(context.task_id)
        for number, url in enumerate(urls, start=1):
            context.check_cancelled()
            if url not in read:
                await self._read(context.task_id, url, topic)
            await context.report_progress(
                5 + 75 * number / max(len(urls), 1), f"read {number} of {len(urls)} sources"
            )
        read = await service.store.async_research_read(context.task_id)
        problems += [f"{url}: {row[3]}" for url, row in read.items() if row[3]]
        await context.report_progress(85, "summarising")
        finding = await self._summarise(context.task_id, topic, problems)
        service.publish_finding(finding)
        await service.publish_status()
        return _result(finding)

    async def _feed_sources(self, topic: str, feeds: list[str], problems: list[str]) -> list[str]:
        """The links of feed entries close to the topic, from the feeds given (polled now)."""
        service = self.service
        for url in feeds:
            try:
                result = await poll(
                    service.session,
                    FeedState(url=url),
                    max_entries=50,
                    allow_private=service.options.research_allow_private,
                    timeout_s=service.options.research_timeout,
                )
            except Refusal as err:
                problems.append(f"{url}: {err.message}")
                continue
            for entry in result.entries:
                await service.async_add_entry(
                    feed=result.state.title or url,
                    entry_id=entry.id,
                    title=entry.title or entry.link or "untitled",
                    link=entry.link,
                    summary=entry.summary,
                    published=entry.published,
                )
        entries = await service.store.async_entries(0.0, 2000)
        linked = [entry for entry in entries if entry[2]]
        if not linked:
            return []
        texts = [f"{title}. {summary or ''}" for _, title, _, summary, _ in linked]
        vectors = await service.embedder.embed(texts, kind="passage")
        [query] = await service.embedder.embed([topic], kind="query")
        scores = vectors @ query
        order = np.argsort(-scores)
        cut = service.options.search_min_score
        return [str(linked[index][2]) for index in order if scores[index] >= cut]

    async def _read(self, task_id: int, url: str, topic: str) -> None:
        """Fetch, extract and keep one source; its error is recorded, not raised."""
        service = self.service
        title = published = None
        chunks = 0
        error: str | None = None
        try:
            page = await fetch(
                service.session,
                url,
                allow_private=service.options.research_allow_private,
                timeout_s=service.options.research_timeout,
                read_timeout_s=min(10.0, service.options.research_timeout),
                max_bytes=service.options.research_max_bytes,
            )
            extracted = await extract(
                page.body, content_type=page.content_type, charset=page.charset, url=page.url
            )
            title, published = extracted.title, extracted.published
            chunks, _ = await service.async_ingest(
                extracted.text,
                Source(
                    url=page.url,
                    title=extracted.title,
                    kind="web",
                    published=extracted.published,
                    fetched=time.time(),
                ),
                topic=topic,
            )
        except Refusal as err:
            error = err.message
        await service.store.async_research_mark(
            task_id,
            url,
            title=title,
            kind="web",
            published=published,
            error=error,
            chunks=chunks,
        )

    async def _summarise(self, task_id: int, topic: str, problems: list[str]) -> Finding:
        service = self.service
        hits = (await service.async_search(topic, limit=PASSAGES)).hits
        sources: list[Source] = []
        numbers: dict[str, int] = {}
        passages: list[Passage] = []
        for hit in hits:
            key = hit.source.url or hit.source.title or hit.id
            if key not in numbers:
                sources.append(hit.source)
                numbers[key] = len(sources)
            passages.append(Passage(hit.text, numbers[key]))
        method = "none"
        summary = f"Nothing was found on {topic}."
        if passages:
            chat = service.chat
            summary = ""
            if chat is not None:
                try:
                    titles = [source.title or source.url or "untitled" for source in sources]
                    summary = await by_llm(topic, passages, titles, chat)
                    method = "llm"
                except LlmError as err:
                    problems.append(f"summary: {err.message}; an extractive summary instead")
            if not summary:

                async def embed(texts: Any) -> np.ndarray:
                    return await service.embedder.embed(list(texts), kind="passage")

                summary = await extractive(topic, passages, embed)
                method = "extractive"
        return await service.store.async_add_finding(
            topic=topic,
            summary=summary,
            sources=sources,
            method=method,
            problems=problems,
            task_id=task_id,
        )


def _result(finding: Finding) -> dict[str, Any]:
    return {
        "finding_id": finding.id,
        "summary": finding.summary,
        "sources": [dump(source) for source in finding.sources],
        "method": finding.method,
        "problems": list(finding.problems),
    }
