"""Summaries of what research found: by a language model when one is configured, else
extractive (the most central sentences, by embedding), so research works with no LLM at all.

Either way the summary cites its sources as ``[n]``, ``n`` counting from 1 in the finding's
sources.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
import re

import numpy as np

from .llm import ChatClient

# Sentences: ends of sentences followed by a space and a capital, a digit or a quote.
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'A-Z0-9])")
MAX_SENTENCES = 4
MIN_SENTENCE_CHARS = 40
MAX_SENTENCE_CHARS = 400

Embed = Callable[[Sequence[str]], Awaitable[np.ndarray]]


@dataclass(frozen=True, slots=True)
class Passage:
    """A piece of a source the summary may use: its text and its source's number (1-based)."""

    text: str
    source: int


def sentences(text: str) -> list[str]:
    """A text's sentences, whitespace folded; very short or very long ones left out."""
    folded = re.sub(r"\s+", " ", text).strip()
    return [
        part.strip()
        for part in _SENTENCE.split(folded)
        if MIN_SENTENCE_CHARS <= len(part.strip()) <= MAX_SENTENCE_CHARS
    ]


async def extractive(
    topic: str, passages: Sequence[Passage], embed: Embed, *, count: int = MAX_SENTENCES
) -> str:
    """The ``count`` sentences closest to the topic and to the passages' centre, in the order
    of their sources, each followed by its source's ``[n]``."""
    candidates = [
        (sentence, passage.source) for passage in passages for sentence in sentences(passage.text)
    ]
    candidates = list(dict.fromkeys(candidates))
    if not candidates:
        return ""
    vectors = await embed([topic, *(sentence for sentence, _ in candidates)])
    query, rows = vectors[0], vectors[1:]
    centre = rows.mean(axis=0)
    centre /= np.linalg.norm(centre) or 1.0
    scores = 0.6 * (rows @ query) + 0.4 * (rows @ centre)
    chosen: list[int] = []
    for index in np.argsort(-scores):
        # Not a near copy of a sentence already chosen.
        if all(float(rows[index] @ rows[other]) < 0.92 for other in chosen):
            chosen.append(int(index))
        if len(chosen) == count:
            break
    chosen.sort(key=lambda index: (candidates[index][1], index))
    return " ".join(f"{candidates[index][0]} [{candidates[index][1]}]" for index in chosen)


async def by_llm(
    topic: str, passages: Sequence[Passage], titles: Sequence[str], chat: ChatClient
) -> str:
    """A summary written by the language model from the passages, citing ``[n]``."""
    sources = "\n".join(f"[{number}] {title}" for number, title in enumerate(titles, start=1))
    material = "\n\n".join(f"[{passage.source}] {passage.text}" for passage in passages)
    return await chat.chat(
        [
            {
                "role": "system",
                "content": "You are a research assistant. Summarise what the sources say about"
                " the topic in 3 to 6 sentences a busy person can act on. Use only the"
                " sources. After each claim cite its source as [n]. No preamble.",
            },
            {
                "role": "user",
                "content": f"Topic: {topic}\n\nSources:\n{sources}\n\nExcerpts:\n{material}",
            },
        ]
    )
