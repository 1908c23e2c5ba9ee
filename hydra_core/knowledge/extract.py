"""The main text of a page (title and publication date too), cut into pieces fit to embed.

trafilatura finds the article in the HTML and leaves out navigation, ads, footers and comments;
where its own extraction finds too little it falls back to its bundled fork of readability-lxml
and to jusText, so a second extractor would add nothing but a dependency. Extraction is CPU
work (15-130 ms for the saved 50-110 kB pages in the tests), so it runs in a thread. Plain text
passes through, tidied. A page with no real text (empty, navigation only, binary) is refused
with ``NoText`` rather than stored as noise.

``chunk`` cuts text at paragraph, then sentence, then word boundaries, each chunk carrying the
end of the one before so a fact that straddles a cut is still found whole in one of them.
``content_hash`` names text by its content, for dedupe across URLs and fetches.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime
import hashlib
import re
import unicodedata

from ..errors import Refusal
from .fetch import safe_url

# Fewer letters than this is no text (a bare navigation menu, an error stub).
MIN_LETTERS = 25
# At most this share of what is visible may be undecodable (U+FFFD) or not letters at all.
_MAX_REPLACED = 0.02
_MIN_LETTER_SHARE = 0.3

_PLAIN_TYPES = frozenset({"text/plain"})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"\s+")
# How much of a plain body is looked at to tell text from binary.
_SNIFF = 8192
# A sentence ends at . ! ? or an ellipsis, maybe followed by a closing quote or bracket.
_SENTENCE_END = re.compile(r"(?<=[.!?\u2026])\s+|(?<=[.!?\u2026][\"'\u201d\u2019)\]])\s+")


class NoText(Refusal, code="extract_no_text", status=422):
    """The document has no main text to keep."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Extracted:
    """The main text of a document (paragraphs on their own lines), its title, and when it was
    published (UTC seconds, midnight of the day the page gives) where known."""

    text: str
    title: str | None = None
    published: float | None = None


async def extract(
    body: bytes | str,
    *,
    content_type: str | None = "text/html",
    charset: str | None = None,
    url: str | None = None,
) -> Extracted:
    """The main text of ``body``, a page of ``content_type`` (HTML unless ``text/plain``).

    ``charset`` is the one the server declared (else it is detected); ``url`` helps resolve the
    page's metadata. Runs in a thread; raises ``NoText`` when there is no real text.
    """
    return await asyncio.to_thread(extract_now, body, content_type, charset, url)


def extract_now(
    body: bytes | str,
    content_type: str | None = "text/html",
    charset: str | None = None,
    url: str | None = None,
) -> Extracted:
    """``extract`` on the calling thread (for code already off the event loop)."""
    if content_type in _PLAIN_TYPES:
        decoded = _decode_plain(body, charset)
        text = _tidy(decoded) if decoded is not None else ""
        if not _has_text(text):
            raise _no_text(url)
        return Extracted(text=text)
    return _extract_html(_decode_html(body, charset), url)


def _extract_html(html: bytes | str, url: str | None) -> Extracted:
    # lxml, htmldate and the rest take 0.3 s to import: only where pages are read.
    import trafilatura  # noqa: PLC0415
    from trafilatura.settings import Document  # noqa: PLC0415

    document = trafilatura.bare_extraction(
        html, url=url, with_metadata=True, include_comments=False, include_tables=True
    )
    text = _tidy(document.text or "") if isinstance(document, Document) else ""
    if not isinstance(document, Document) or not _has_text(text):
        raise _no_text(url)
    title = _SPACES.sub(" ", document.title or "").strip()
    return Extracted(text=text, title=title or None, published=_day(document.date))


def _decode_html(body: bytes | str, charset: str | None) -> bytes | str:
    """Text where the server named a charset Python knows; else the bytes, which trafilatura
    decodes by the page's own ``<meta charset>`` or by detection."""
    if isinstance(body, str) or not charset:
        return body
    try:
        return body.decode(charset, errors="replace")
    except LookupError:
        return body


def _decode_plain(body: bytes | str, charset: str | None) -> str | None:
    """The text, or None if the bytes are binary (a NUL or many control bytes)."""
    if isinstance(body, str):
        return body
    wide = (charset or "").lower().startswith(("utf-16", "utf-32"))
    head = body[:_SNIFF]
    if not wide and (b"\0" in head or len(_CONTROL_BYTES.findall(head)) > len(head) * 0.05):
        return None
    for encoding in (charset, "utf-8"):
        if encoding:
            try:
                return body.decode(encoding)
            except (LookupError, UnicodeDecodeError):
                continue
    # What browsers assume for undeclared text that is not UTF-8 (detection guesses wrong on
    # short texts: a French sentence reads as Central European).
    return body.decode("windows-1252", errors="replace")


def _tidy(text: str) -> str:
    """Paragraphs on their own lines, spaces collapsed, control characters gone."""
    text = _CONTROL.sub("", unicodedata.normalize("NFC", text))
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _has_text(text: str) -> bool:
    visible = sum(not ch.isspace() for ch in text)
    letters = sum(ch.isalpha() for ch in text)
    return (
        letters >= MIN_LETTERS
        and letters >= visible * _MIN_LETTER_SHARE
        and text.count("\ufffd") <= visible * _MAX_REPLACED
    )


def _no_text(url: str | None) -> NoText:
    where = f"{safe_url(url)} " if url else "the document "
    return NoText(f"{where}has no readable main text (empty, only navigation, or not text)")


def _day(value: str | None) -> float | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value[:10])
    except ValueError:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def content_hash(text: str) -> str:
    """A stable name for ``text`` by its content: the same words (whatever their case, Unicode
    form or spacing) give the same sha256 hex digest."""
    normalized = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return hashlib.sha256(normalized.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class _Unit:
    """A sentence (or a piece of one too long to keep whole), and whether a paragraph starts."""

    text: str
    paragraph: bool


def chunk(text: str, *, max_chars: int = 1000, overlap: int = 150) -> list[str]:
    """``text`` in pieces of at most ``max_chars``, each starting with up to ``overlap``
    characters of the end of the piece before (whole sentences where they fit, else its last
    words).

    A piece at least half full ends where a paragraph that would not fit starts; otherwise
    pieces end between sentences, and a sentence longer than a piece is cut between words.
    """
    if max_chars < 1 or not 0 <= overlap < max_chars:
        raise ValueError("chunk needs max_chars >= 1 and 0 <= overlap < max_chars")
    chunks: list[str] = []
    current: list[_Unit] = []

    def cut_before(unit: _Unit) -> list[_Unit]:
        chunks.append(_join(current))
        seed = _tail(current, overlap)
        return seed if _length([*seed, unit]) <= max_chars else []

    for paragraph in _paragraphs(text, max_chars, overlap):
        if _length(current) >= max_chars // 2 and _length([*current, *paragraph]) > max_chars:
            current = cut_before(paragraph[0])
        for unit in paragraph:
            if current and _length([*current, unit]) > max_chars:
                current = cut_before(unit)
            current.append(unit)
    if current:
        chunks.append(_join(current))
    return chunks


def _paragraphs(text: str, max_chars: int, overlap: int) -> list[list[_Unit]]:
    """The paragraphs of ``text`` (its lines), each as its sentences; one longer than a chunk
    in pieces that leave room for the overlap."""
    paragraphs: list[list[_Unit]] = []
    for line in text.splitlines():
        paragraph = _SPACES.sub(" ", line).strip()
        if not paragraph:
            continue
        pieces: list[str] = []
        for sentence in _SENTENCE_END.split(paragraph):
            if len(sentence) <= max_chars:
                pieces.append(sentence)
            else:
                pieces.extend(_pieces(sentence, max_chars - overlap))
        paragraphs.append([_Unit(piece, index == 0) for index, piece in enumerate(pieces)])
    return paragraphs


def _pieces(sentence: str, max_chars: int) -> list[str]:
    """``sentence`` cut between words (inside a word only if it alone is too long)."""
    pieces: list[str] = []
    current = ""
    for whole in sentence.split(" "):
        word = whole
        while len(word) > max_chars:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(word[:max_chars])
            word = word[max_chars:]
        if current and len(current) + 1 + len(word) > max_chars:
            pieces.append(current)
            current = ""
        current = f"{current} {word}" if current else word
    if current:
        pieces.append(current)
    return pieces


def _tail(units: list[_Unit], overlap: int) -> list[_Unit]:
    """The end of a chunk to repeat at the start of the next: the last whole sentences that fit
    in ``overlap`` (never the whole chunk), else the last words of its last sentence."""
    tail: list[_Unit] = []
    for unit in reversed(units[1:]):
        if _length([unit, *tail]) > overlap:
            break
        tail.insert(0, unit)
    if tail or overlap == 0:
        return tail
    words: list[str] = []
    for word in reversed(units[-1].text.split(" ")):
        if len(" ".join([word, *words])) > overlap:
            break
        words.insert(0, word)
    return [_Unit(" ".join(words), paragraph=False)] if words else []


def _length(units: list[_Unit]) -> int:
    return sum(len(unit.text) for unit in units) + max(len(units) - 1, 0)


def _join(units: list[_Unit]) -> str:
    parts: list[str] = []
    for index, unit in enumerate(units):
        if index:
            parts.append("\n" if unit.paragraph else " ")
        parts.append(unit.text)
    return "".join(parts)
