"""The knowledge base in words: what Assist says, the briefing reads and phones show of a
search hit, a finding, a memory, the feed digest and a flagged mail."""

from __future__ import annotations

from collections.abc import Sequence
import re
from typing import Final

from yarl import URL

from hydra_core.knowledge.models import DigestItem, Finding, MailFlag, SearchHit, Source

from ...wording import join

# A spoken answer quotes at most this much of a text.
SPOKEN_CHARS: Final = 240
# Digest entries named one by one; the rest are counted.
DIGEST_NAMED: Final = 3
# The citation marks of a summary ("[1]", "[2, 3]"): shown in writing, not read aloud.
_CITATION = re.compile(r"\s*\[\d+(?:\s*[,\u2013-]\s*\d+)*\]")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
# First person as said to Hydra, second person as Hydra says it back.
_TO_YOU: Final = {
    "i": "you",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
    "i'm": "you're",
    "i've": "you've",
    "i'd": "you'd",
    "i'll": "you'll",
    "am": "are",
}
_FIRST_PERSON = re.compile(r"\b(?:i'm|i've|i'd|i'll|i|me|my|mine|myself)\b(?:\s+am\b)?", re.I)


def uncited(text: str) -> str:
    """The text without its citation marks, in one line."""
    return " ".join(_CITATION.sub("", text).split())


def shorten(text: str, limit: int = SPOKEN_CHARS) -> str:
    """At most ``limit`` characters of the text: whole sentences where they fit, else cut at a
    word with "…"."""
    text = uncited(text)
    if len(text) <= limit:
        return text
    ends = [match.end() for match in _SENTENCE_END.finditer(text, 0, limit + 1)]
    if ends:
        return text[: ends[-1]]
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:")
    return f"{cut}…"


def first_sentence(text: str) -> str:
    """The first sentence of a summary (no citation marks), shortened if it is long."""
    text = uncited(text)
    match = _SENTENCE_END.search(text)
    return shorten(text[: match.end()] if match else text)


def source_name(source: Source) -> str:
    """A source as a listener knows it: its title, else its site, else what kind it is."""
    if source.title and source.title.strip():
        return source.title.strip()
    if source.url and (host := URL(source.url).host):
        return host.removeprefix("www.")
    return {"memory": "something you told me", "mail": "a mail"}.get(source.kind, "my notes")


def feed_name(feed: str | None) -> str | None:
    """A feed as a listener knows it: its title, or the site of its address (an entry from
    Home Assistant's feedreader names its feed by address)."""
    if not feed or not (feed := feed.strip()):
        return None
    if feed.startswith(("http://", "https://")):
        host = URL(feed).host
        return host.removeprefix("www.") if host else None
    return feed


def hit_answer(hit: SearchHit) -> str:
    """The best hit, read aloud: its text, shortened, and where it is from."""
    text = shorten(hit.text).rstrip()
    if text[-1:] not in ".!?…":
        text += "."
    return f"{text} That is from {source_name(hit.source)}."


def to_you(text: str) -> str:
    """What someone told Hydra in the first person, as Hydra says it back to them: "I prefer
    oat milk in my coffee" → "you prefer oat milk in your coffee"."""

    def swap(match: re.Match[str]) -> str:
        words = match.group(0).split()
        return " ".join(_TO_YOU.get(word.lower(), word) for word in words)

    return _FIRST_PERSON.sub(swap, text.strip().rstrip("."))


def finding_line(finding: Finding) -> str:
    """A finished research in one line: its topic and the summary's first sentence."""
    topic = finding.topic.strip()
    topic = f"{topic[:1].upper()}{topic[1:]}"
    if finding.method == "none" or not finding.summary.strip():
        why = f" ({finding.problems[0].rstrip('.')})" if finding.problems else ""
        return f"{topic}: nothing found{why}."
    return f"{topic}: {first_sentence(finding.summary)}"


def digest_text(items: Sequence[DigestItem]) -> str | None:
    """The feed digest in a sentence or two: how many new entries, and the most interesting."""
    if not items:
        return None
    named = [
        f"{item.title.strip()} ({feed})" if (feed := feed_name(item.feed)) else item.title.strip()
        for item in items[:DIGEST_NAMED]
    ]
    entries = "1 new entry" if len(items) == 1 else f"{len(items)} new entries"
    return f"{entries} in your feeds. Most interesting: {join(named)}."


def mail_line(flag: MailFlag) -> str:
    """A flagged mail in a line: who sent it, its subject and why it matters."""
    subject = flag.subject.strip() or "no subject"
    return f"From {flag.sender}: {subject} ({flag.reason.strip().rstrip('.')})."
