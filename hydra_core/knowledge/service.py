"""The knowledge service: the store of chunks and memories, search, feeds, mail awareness.

Text becomes chunks (``extract.chunk``), each embedded by the local model and kept once (its
point id is its content's hash). Search embeds the query and asks the vector store; recall
does the same over memories. Feeds are polled on a timer, each new entry embedded as a chunk
and kept for the digest, which ranks entries by their closeness to the topics of interest (set
ones, and what was researched). Mail is flagged by rules (senders, keywords), and by the
language model when one is configured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
import fnmatch
import logging
from pathlib import Path
import re
import time
from typing import TYPE_CHECKING, Any, Literal
import uuid

import aiohttp
import numpy as np

from ..background import cancel
from ..errors import Refusal
from ..events import EventBus
from ..models import Actor
from ..wire import dump, load
from .extract import chunk, content_hash
from .feeds import FeedState, poll
from .llm import ChatClient, LlmError
from .models import (
    EVENT_FINDING,
    EVENT_KNOWLEDGE,
    EVENT_MAIL,
    Digest,
    DigestItem,
    Feed,
    Finding,
    KnowledgeStatus,
    MailFlag,
    Memory,
    SearchHit,
    SearchResult,
    Source,
)
from .options import KnowledgeOptions
from .store import DB_FILE, KnowledgeStore
from .vectors import CHUNKS, LOCAL_MODE_LIMIT, MEMORIES, VectorStore, chunk_id

if TYPE_CHECKING:
    from .embeddings import EmbeddingEngine

_LOGGER = logging.getLogger(__name__)

VECTORS_FOLDER = "knowledge"
MAX_SEARCH = 50
# Topics the digest ranks by: those set, and the latest researched.
RESEARCHED_TOPICS = 10
DIGEST_LIMIT = 20


class MemoryNotFoundError(Refusal, code="memory_not_found", status=404):
    """No memory with that id."""


class FeedNotFoundError(Refusal, code="feed_not_found", status=404):
    """No feed with that id."""


class KnowledgeService:
    """Chunks, memories, feeds and flagged mail, behind ``/api/v1/knowledge`` and friends."""

    def __init__(
        self,
        options: KnowledgeOptions,
        *,
        data_dir: Path,
        embedder: EmbeddingEngine,
        bus: EventBus,
        poll_feeds: bool = True,
    ) -> None:
        self.options = options
        self.embedder = embedder
        self.store = KnowledgeStore(data_dir / DB_FILE)
        self.vectors = VectorStore(
            data_dir / VECTORS_FOLDER, url=options.qdrant_url, api_key=options.qdrant_api_key
        )
        self._bus = bus
        self._poll_feeds = poll_feeds
        self._session: aiohttp.ClientSession | None = None
        self._poller: asyncio.Task[None] | None = None
        self._published: dict[str, Any] | None = None
        self._wake_poller = asyncio.Event()

    # Life cycle

    async def async_start(self) -> None:
        """Open the stores, add the configured feeds, start polling."""
        await self.store.async_open()
        await self.vectors.async_open()
        for url in self.options.feeds:
            await self.store.async_add_feed(url, None, 50)
        if self._poll_feeds:
            self._poller = asyncio.create_task(self._poll_forever(), name="hydra feeds")

    async def async_stop(self) -> None:
        """Stop polling; close the session, the model and the stores."""
        await cancel(self._poller)
        if self._session is not None:
            await self._session.close()
        await self.embedder.close()
        await self.vectors.async_close()
        await self.store.async_close()

    @property
    def session(self) -> aiohttp.ClientSession:
        """The HTTP session for fetching and the language model."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    @property
    def chat(self) -> ChatClient | None:
        """The language model for summaries, when one is configured."""
        if not (self.options.llm_url and self.options.llm_model):
            return None
        return ChatClient(
            self.session,
            self.options.llm_url,
            self.options.llm_model,
            api_key=self.options.llm_api_key,
        )

    # Status

    async def async_status(self) -> KnowledgeStatus:
        """What the knowledge base holds and whether it can grow."""
        chunks = await self.vectors.async_count(CHUNKS)
        midnight = time.mktime((*time.localtime()[:3], 0, 0, 0, 0, 0, -1))
        warning = None
        if self.vectors.backend == "local" and chunks > LOCAL_MODE_LIMIT:
            warning = (
                f"The knowledge base holds {chunks} chunks in local mode, which searches them"
                " one by one: above about 20,000 a search slows down; set qdrant_url to a"
                " Qdrant server"
            )
        return KnowledgeStatus(
            available=self.embedder.available,
            reason=self.embedder.reason,
            backend="server" if self.vectors.backend == "server" else "local",
            model=self.embedder.model,
            model_state=str(self.embedder.state),
            documents=await self.store.async_documents(),
            chunks=chunks,
            memories=await self.vectors.async_count(MEMORIES),
            feeds=len(await self.store.async_feeds()),
            findings_today=await self.store.async_count_findings(midnight),
            last_ingestion=await self._last_ingestion(),
            warning=warning,
            summariser="llm" if self.chat is not None else "extractive",
        )

    async def _last_ingestion(self) -> float | None:
        value = await self.store.async_setting("last_ingestion", None)
        return None if value is None else float(value)

    def publish_finding(self, finding: Finding) -> None:
        """Tell the event stream a research task found something."""
        self._bus.publish(EVENT_FINDING, dump(finding))

    async def publish_status(self) -> None:
        """Tell the event stream when the status changed."""
        status = dump(await self.async_status())
        if status != self._published:
            self._published = status
            self._bus.publish(EVENT_KNOWLEDGE, status)

    # Chunks

    async def async_ingest(
        self, text: str, source: Source, *, topic: str | None = None
    ) -> tuple[int, int]:
        """Chunk, embed and keep a text; answers (chunks, of which new)."""
        pieces = chunk(text)
        if not pieces:
            return 0, 0
        vectors = await self.embedder.embed(pieces, kind="passage")
        hashes = [content_hash(piece) for piece in pieces]
        payloads = [
            {
                "text": piece,
                "hash": piece_hash,
                "source": dump(source),
                "url": source.url,
                "kind": source.kind,
                "topic": topic,
            }
            for piece, piece_hash in zip(pieces, hashes, strict=True)
        ]
        new = await self.vectors.async_upsert(
            CHUNKS, [chunk_id(piece_hash) for piece_hash in hashes], vectors, payloads
        )
        await self.store.async_set_setting("last_ingestion", time.time())
        return len(pieces), new

    async def async_search(self, query: str, *, limit: int = 5) -> SearchResult:
        """The chunks closest to ``query``, best first."""
        query = query.strip()
        if not query:
            raise Refusal("Ask something: the query is empty", code="invalid_query")
        [vector] = await self.embedder.embed([query], kind="query")
        points = await self.vectors.async_search(CHUNKS, vector, min(limit, MAX_SEARCH))
        points = [point for point in points if point.score >= self.options.search_min_score]
        return SearchResult(
            query=query,
            hits=tuple(
                SearchHit(
                    id=point.id,
                    text=str(point.payload.get("text", "")),
                    score=round(point.score, 4),
                    source=_source(point.payload.get("source")),
                    topic=point.payload.get("topic"),
                )
                for point in points
            ),
        )

    # Memories

    async def async_remember(
        self, text: str, *, kind: Literal["fact", "preference"], actor: Actor
    ) -> Memory:
        """Keep a fact or a preference, who said it and when."""
        [vector] = await self.embedder.embed([text], kind="passage")
        memory = Memory(
            id=str(uuid.uuid4()), text=text, kind=kind, said_by=actor, created_at=time.time()
        )
        payload = dump(memory)
        await self.vectors.async_upsert(MEMORIES, [memory.id], vector[None, :], [payload])
        await self.publish_status()
        return memory

    async def async_recall(self, query: str | None, *, limit: int = 10) -> list[Memory]:
        """The memories closest to ``query``, or the newest ones."""
        if query and query.strip():
            [vector] = await self.embedder.embed([query.strip()], kind="query")
            points = await self.vectors.async_search(MEMORIES, vector, limit)
            return [
                _memory(point.payload, score=round(point.score, 4))
                for point in points
                if point.score >= self.options.search_min_score
            ]
        points = await self.vectors.async_scroll(MEMORIES, 10_000)
        memories = sorted(
            (_memory(point.payload) for point in points), key=lambda item: -item.created_at
        )
        return memories[:limit]

    async def async_forget(self, memory_id: str) -> None:
        """Forget a memory for good (MemoryNotFoundError)."""
        try:
            uuid.UUID(memory_id)
        except ValueError:
            raise MemoryNotFoundError(f"No memory {memory_id!r}") from None
        if await self.vectors.async_get(MEMORIES, memory_id) is None:
            raise MemoryNotFoundError(f"No memory {memory_id!r}")
        await self.vectors.async_delete(MEMORIES, [memory_id])
        await self.publish_status()

    # Feeds

    async def async_feeds(self) -> list[Feed]:
        """The feeds polled."""
        return await self.store.async_feeds()

    async def async_add_feed(self, url: str, title: str | None, max_entries: int) -> Feed:
        """Poll a feed from now on (its first poll comes at once)."""
        if not url.startswith(("http://", "https://")):
            raise Refusal("A feed's address starts with http:// or https://", code="invalid_feed")
        feed = await self.store.async_add_feed(url, title, max_entries)
        self._wake_poller.set()
        return feed

    async def async_remove_feed(self, feed_id: int) -> None:
        """Stop polling a feed (what it brought stays)."""
        if not await self.store.async_remove_feed(feed_id):
            raise FeedNotFoundError(f"No feed {feed_id}")

    async def _poll_forever(self) -> None:
        while True:
            try:
                await self.async_poll_feeds()
            except Exception:
                _LOGGER.exception("Polling the feeds failed")
            self._wake_poller.clear()
            try:
                async with asyncio.timeout(self.options.feed_interval):
                    await self._wake_poller.wait()
            except TimeoutError:
                pass

    async def async_poll_feeds(self) -> int:
        """Poll every feed whose time has come; answers how many new entries arrived."""
        new = 0
        now = time.time()
        for feed in await self.store.async_feeds():
            if (
                feed.last_checked is not None
                and now - feed.last_checked < self.options.feed_interval
            ):
                continue
            new += await self._poll(feed)
        if new:
            await self.publish_status()
        return new

    async def _poll(self, feed: Feed) -> int:
        kept = await self.store.async_feed_state(feed.id)
        state = _feed_state(kept, feed.url)
        try:
            result = await poll(
                self.session,
                state,
                max_entries=feed.max_entries,
                allow_private=self.options.research_allow_private,
            )
        except Refusal as err:
            _LOGGER.warning("Feed %d: %s", feed.id, err.message)
            await self.store.async_polled(feed.id, state=kept, new=0, error=err.message, title=None)
            return 0
        added = 0
        for entry in result.entries:
            if await self.async_add_entry(
                feed=result.state.title or feed.title or feed.url,
                entry_id=entry.id,
                title=entry.title or entry.link or "untitled",
                link=entry.link,
                summary=entry.summary,
                published=entry.published,
            ):
                added += 1
        await self.store.async_polled(
            feed.id, state=dump(result.state), new=added, error=None, title=result.state.title
        )
        return added

    async def async_add_entry(
        self,
        *,
        feed: str | None,
        entry_id: str | None,
        title: str,
        link: str | None,
        summary: str | None,
        published: float | None,
    ) -> bool:
        """Keep a feed entry and embed it (a polled one, or one Home Assistant's feedreader
        saw); False when it was kept before."""
        key = entry_id or link or content_hash(f"{feed}\0{title}")
        if not await self.store.async_add_entry(
            feed=feed, entry_id=key, title=title, link=link, summary=summary, published=published
        ):
            return False
        text = f"{title}. {summary or ''}".strip()
        await self.async_ingest(
            text,
            Source(url=link, title=title, kind="feed", published=published, fetched=time.time()),
        )
        return True

    async def async_topics(self) -> tuple[str, ...]:
        """The topics of interest that were set."""
        return tuple(await self.store.async_setting("topics", []))

    async def async_set_topics(self, topics: Sequence[str]) -> tuple[str, ...]:
        """Set the topics of interest."""
        clean = tuple(dict.fromkeys(topic.strip() for topic in topics if topic.strip()))
        await self.store.async_set_setting("topics", list(clean))
        return clean

    async def async_digest(self, since: float) -> Digest:
        """Feed entries kept since ``since``, ranked by the topics of interest."""
        researched = [
            finding.topic
            for finding in await self.store.async_findings(since=None, limit=RESEARCHED_TOPICS)
        ]
        topics = tuple(dict.fromkeys([*await self.async_topics(), *researched]))
        entries = await self.store.async_entries(since, 500)
        if not entries:
            return Digest(since=since, topics=topics)
        texts = [f"{title}. {summary or ''}" for _, title, _, summary, _ in entries]
        scores = np.zeros(len(entries))
        best_topic: list[str | None] = [None] * len(entries)
        if topics:
            vectors = await self.embedder.embed(texts, kind="passage")
            topic_vectors = await self.embedder.embed(list(topics), kind="query")
            similarity = vectors @ topic_vectors.T
            scores = similarity.max(axis=1)
            best_topic = [topics[int(index)] for index in similarity.argmax(axis=1)]
        order = np.argsort(-scores, kind="stable")[:DIGEST_LIMIT]
        return Digest(
            since=since,
            topics=topics,
            items=tuple(
                DigestItem(
                    title=entries[index][1],
                    url=entries[index][2],
                    feed=entries[index][0],
                    published=entries[index][4],
                    score=round(float(scores[index]), 4),
                    summary=(entries[index][3] or "")[:500] or None,
                    topic=best_topic[index],
                )
                for index in order
            ),
        )

    # Mail

    async def async_mail(
        self, *, sender: str, subject: str, text: str, date: float | None
    ) -> MailFlag | None:
        """Flag a mail when the rules (or the language model) say it matters."""
        reason, urgent = _rules(self.options, sender, subject, text)
        chat = self.chat
        if reason is None and chat is not None:
            reason, urgent = await _ask_llm(chat, sender, subject, text)
        if reason is None:
            return None
        flag = await self.store.async_flag_mail(
            sender=sender, subject=subject, reason=reason, urgent=urgent, received=date
        )
        self._bus.publish(EVENT_MAIL, dump(flag))
        return flag

    async def async_flagged(self, since: float) -> list[MailFlag]:
        """Mail flagged since ``since``."""
        return await self.store.async_mail(since)


def _feed_state(kept: dict[str, Any], url: str) -> FeedState:
    try:
        state = load(FeedState, kept) if kept else FeedState(url=url)
    except Exception:  # a state from an older version: start afresh
        state = FeedState(url=url)
    return state if state.url == url else FeedState(url=url)


def _source(raw: Any) -> Source:
    try:
        return load(Source, raw)
    except Exception:  # a payload from an older version: show what there is
        return Source()


def _memory(payload: dict[str, Any], *, score: float | None = None) -> Memory:
    memory = load(Memory, {key: value for key, value in payload.items() if key != "score"})
    return Memory(
        id=memory.id,
        text=memory.text,
        kind=memory.kind,
        said_by=memory.said_by,
        created_at=memory.created_at,
        score=score,
    )


def _matches(sender: str, pattern: str) -> bool:
    sender, pattern = sender.lower(), pattern.lower().strip()
    address = sender.rsplit("<", 1)[-1].rstrip(">").strip()
    if "@" not in pattern and "*" not in pattern:
        return address.endswith("@" + pattern) or address.endswith("." + pattern)
    return fnmatch.fnmatch(address, pattern)


def _rules(
    options: KnowledgeOptions, sender: str, subject: str, text: str
) -> tuple[str | None, bool]:
    words = f"{subject}\n{text}".lower()
    urgent = any(_has_word(words, word) for word in options.mail_urgent_keywords)
    for pattern in options.mail_senders:
        if _matches(sender, pattern):
            return f"from {pattern}", urgent
    for keyword in options.mail_keywords:
        if _has_word(words, keyword):
            return f"mentions {keyword!r}", urgent
    return None, False


def _has_word(text: str, word: str) -> bool:
    return re.search(rf"\b{re.escape(word.lower().strip())}\b", text) is not None


async def _ask_llm(
    chat: ChatClient, sender: str, subject: str, text: str
) -> tuple[str | None, bool]:
    try:
        answer = await chat.chat(
            [
                {
                    "role": "system",
                    "content": "You triage a person's mail. Answer one line: IMPORTANT: <why>, or"
                    " URGENT: <why> when it needs them today, or SKIP.",
                },
                {"role": "user", "content": f"From: {sender}\nSubject: {subject}\n\n{text[:4000]}"},
            ],
            max_tokens=60,
        )
    except LlmError as err:
        _LOGGER.warning("Mail not triaged by the language model: %s", err.message)
        return None, False
    line = answer.strip().splitlines()[0] if answer.strip() else ""
    head, _, why = line.partition(":")
    head = head.strip().upper()
    if head in ("IMPORTANT", "URGENT"):
        return f"the language model: {why.strip() or head.lower()}", head == "URGENT"
    return None, False
