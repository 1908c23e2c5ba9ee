"""The knowledge part's options."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import option


@dataclass(frozen=True, slots=True, kw_only=True)
class KnowledgeOptions:
    """The knowledge base, research, feeds and mail awareness."""

    knowledge: bool = option(
        True, help="keep a knowledge base: research, feeds, mail awareness and memories"
    )
    qdrant_url: str = option(
        "",
        help="a Qdrant server (http://host:6333) instead of Qdrant in local mode in DATA_DIR/"
        "knowledge; local mode is good to about 20,000 chunks",
    )
    qdrant_api_key: str = option("", help="the Qdrant server's API key", secret=True)
    llm_url: str = option(
        "",
        help="an OpenAI-compatible chat endpoint for summaries (Ollama: http://host:11434/v1,"
        " llama.cpp, vLLM, LocalAI); empty: extractive summaries",
        addon=True,
    )
    llm_model: str = option("", help="the model the chat endpoint runs summaries with", addon=True)
    llm_api_key: str = option("", help="the chat endpoint's API key, if it needs one", secret=True)
    research_allow_private: bool = option(
        False,
        help="let research fetch addresses on loopback and private networks (your own wiki);"
        " off, they are refused",
    )
    research_timeout: float = option(
        20.0, help="seconds a research task waits for one web page", low=1, high=300
    )
    research_max_bytes: int = option(
        5_000_000,
        help="bytes of one web page a research task reads at most",
        low=10_000,
        high=100_000_000,
    )
    research_max_sources: int = option(
        8, help="web pages and feed entries a research task reads at most", low=1, high=50
    )
    feed_interval: float = option(
        1800.0, help="seconds between polls of each feed", low=60, high=86400
    )
    feeds: tuple[str, ...] = option(
        (), help="comma-separated RSS or Atom feeds to poll", addon=True
    )
    mail_senders: tuple[str, ...] = option(
        (),
        help="comma-separated senders (addresses or domains, * wildcards) whose mail is important",
    )
    mail_keywords: tuple[str, ...] = option(
        (), help="comma-separated words that make a mail important (subject or text)"
    )
    mail_urgent_keywords: tuple[str, ...] = option(
        ("urgent", "asap", "immediately", "outage", "down"),
        help="comma-separated words that make an important mail urgent: a phone notification",
    )
    search_min_score: float = option(
        0.8,
        help="how close (cosine, 0-1) a chunk or memory must be to a question to count as an"
        " answer; multilingual-e5-small rates unrelated text about 0.75-0.8",
        low=0,
        high=1,
    )
    embedding_idle_unload: float = option(
        600.0,
        help="seconds the embedding model may sit unused before it is unloaded; 0 keeps it",
        low=0,
        high=86400,
    )
