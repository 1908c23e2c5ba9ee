"""The knowledge part's wire models: search hits, findings, memories, feeds, flagged mail, and
the requests that change them.

Frozen dataclasses serialized by ``hydra_core.wire``; the requests are strict (no unknown
field) and bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from ..models import Actor, CallerActor
from ..wire import request_model

# The task kind that researches a topic.
RESEARCH_KIND = "research"

# The types of messages on /api/v1/events this part sends.
EVENT_KNOWLEDGE = "knowledge"  # KnowledgeStatus: counts, the embedding model's state
EVENT_FINDING = "finding"  # Finding: a research task finished with its summary
EVENT_MAIL = "mail"  # MailFlag: a mail was flagged important (or urgent)

MAX_QUERY = 1000
MAX_MEMORY = 2000
MAX_TOPIC = 300
MEMORY_KINDS = ("fact", "preference")

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """Where a piece of knowledge came from: a web page, a feed entry, or the knowledge base."""

    url: str | None = None
    title: str | None = None
    kind: Literal["web", "feed", "knowledge", "mail", "memory"] = "web"
    published: float | None = None
    fetched: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchHit:
    """One chunk of a document that answers a query, with its similarity (cosine, -1 to 1)."""

    id: str
    text: str
    score: float
    source: Source
    topic: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchResult:
    """What ``GET /knowledge/search`` answers: the best chunks for the query, best first."""

    query: str
    hits: tuple[SearchHit, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """What a research task found: a summary with the sources it cites (``[1]`` in the summary
    is ``sources[0]``), how it was summarised (``llm`` or ``extractive``), and what went wrong
    with sources that could not be used."""

    id: int
    topic: str
    summary: str
    sources: tuple[Source, ...] = ()
    method: Literal["llm", "extractive", "none"] = "extractive"
    problems: tuple[str, ...] = ()
    task_id: int | None = None
    created_at: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Memory:
    """A fact or a preference Hydra was asked to remember, who said it and when."""

    id: str
    text: str
    kind: Literal["fact", "preference"] = "fact"
    said_by: Actor | None = None
    created_at: float = 0.0
    # How well it answers the query it was found for (recall only).
    score: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Feed:
    """An RSS or Atom feed the worker polls, and how its last poll went."""

    id: int
    url: str
    title: str | None = None
    max_entries: int = 50
    entries: int = 0
    last_checked: float | None = None
    last_new: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestItem:
    """One feed entry of the digest, ranked by how close it is to the topics of interest."""

    title: str
    url: str | None
    feed: str | None
    published: float | None
    score: float
    summary: str | None = None
    topic: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Digest:
    """What ``GET /feeds/digest`` answers: new entries since a time, most interesting first."""

    since: float
    topics: tuple[str, ...] = ()
    items: tuple[DigestItem, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MailFlag:
    """A mail Hydra flagged as important: who sent it, its subject, why, and whether urgent."""

    id: int
    sender: str
    subject: str
    reason: str
    urgent: bool = False
    received: float | None = None
    flagged_at: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class KnowledgeStatus:
    """What ``GET /knowledge`` answers: whether the store and the embedding model can run (and
    why not), the store's backend and counts, what arrived today, and a warning when local
    mode holds more than it is good for."""

    available: bool
    reason: str | None = None
    backend: Literal["local", "server"] = "local"
    model: str = ""
    model_state: str = "not_loaded"
    documents: int = 0
    chunks: int = 0
    memories: int = 0
    feeds: int = 0
    findings_today: int = 0
    last_ingestion: float | None = None
    warning: str | None = None
    summariser: Literal["llm", "extractive"] = "extractive"


# Requests


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryRequest:
    """``POST /memories``: remember a fact or a preference."""

    text: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MEMORY)
    ]
    kind: Literal["fact", "preference"] = "fact"
    actor: CallerActor | None = None


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class FeedRequest:
    """``POST /feeds``: poll a feed (http or https)."""

    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    max_entries: Annotated[int, Field(ge=1, le=500)] = 50


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class MailRequest:
    """``POST /mail``: a mail Home Assistant's imap integration saw (its ``imap_content``
    event): the worker flags it or not, by the rules and the LLM when one is configured."""

    sender: Annotated[str, StringConstraints(max_length=500)]
    subject: Annotated[str, StringConstraints(max_length=2000)] = ""
    text: Annotated[str, StringConstraints(max_length=100_000)] = ""
    date: float | None = None


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class TopicsRequest:
    """``PUT /knowledge/topics``: the topics of interest that rank the feed digest."""

    topics: tuple[
        Annotated[
            str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TOPIC)
        ],
        ...,
    ] = field(default_factory=tuple)


@request_model
@dataclass(frozen=True, slots=True, kw_only=True)
class FeedEntryRequest:
    """``POST /feeds/entries``: an entry Home Assistant's feedreader integration saw."""

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
    feed: Annotated[str, StringConstraints(max_length=500)] | None = None
    link: Annotated[str, StringConstraints(max_length=2000)] | None = None
    summary: Annotated[str, StringConstraints(max_length=20_000)] | None = None
    published: float | None = None
