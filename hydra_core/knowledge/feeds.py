"""Poll an RSS or Atom feed for what is new since the last poll.

The feed comes through ``fetch`` (the same address checks and limits as any page), asked
conditionally with the ETag and Last-Modified of the last poll, so an unchanged feed costs a 304
and no parsing. feedparser reads RSS 0.9x, 1.0 and 2.0 and Atom, malformed ones included, in a
thread (it is CPU work); a body in which it finds no feed at all (an HTML page, an error page)
is ``FeedInvalid``. An entry is new when its id (the feed's guid or id, else its link) is not
among the ids earlier polls saw, which the state keeps (the newest ``SEEN_LIMIT``): the caller
persists one small ``FeedState`` per feed and nothing else.
"""

from __future__ import annotations

import asyncio
import calendar
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
import io
import re
from typing import Any

import aiohttp

from ..errors import Refusal
from .extract import content_hash
from .fetch import FEED_TYPES, Fetched, IPNetwork, Resolver, fetch, safe_url

#: The entry ids a state remembers; an entry that left the feed longer ago may come back new.
SEEN_LIMIT = 1000
#: An entry's summary is cut to this many characters.
MAX_SUMMARY = 2000
# Servers often label a feed as HTML or plain text: the body decides (feedparser), not the label.
_BODY_TYPES = (*FEED_TYPES, "text/html", "application/xhtml+xml", "text/plain")
_SPACES = re.compile(r"\s+")
_BLOCKS = (
    *("p", "div", "br", "hr", "li", "dt", "dd", "blockquote", "pre", "figcaption"),
    *("h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th"),
)


class FeedInvalid(Refusal, code="feed_invalid", status=502):
    """The URL answered with something that is not an RSS or Atom feed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedState:
    """What a feed's next poll needs from its last: the validators to ask conditionally with,
    the ids of the entries seen (newest first), the feed's title and when it was checked."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    title: str | None = None
    seen: tuple[str, ...] = ()
    last_checked: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedEntry:
    """One entry of a feed: its id, link, title, summary as plain text, and when it was
    published (or else updated; UTC seconds) if the feed says."""

    id: str
    link: str | None
    title: str | None
    summary: str
    published: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedPoll:
    """What a poll found: the entries not seen before (newest first) and the state to keep for
    the next poll. ``not_modified``: the server said the feed has not changed."""

    state: FeedState
    entries: tuple[FeedEntry, ...] = ()
    not_modified: bool = False


async def poll(
    session: aiohttp.ClientSession,
    state: FeedState,
    *,
    max_entries: int = 50,
    max_bytes: int = 5_000_000,
    timeout_s: float = 20.0,
    allow_private: bool = False,
    allow_networks: Collection[IPNetwork] = (),
    resolver: Resolver | None = None,
) -> FeedPoll:
    """Fetch the feed at ``state.url`` and return its new entries among its newest
    ``max_entries``, with the state to keep.

    Raises ``FeedInvalid`` when the body is not a feed, and ``fetch``'s ``FetchFailed``
    (and its kinds) when it cannot be fetched.
    """
    fetched = await fetch(
        session,
        state.url,
        max_bytes=max_bytes,
        timeout_s=timeout_s,
        allow_private=allow_private,
        allow_networks=allow_networks,
        accept=_BODY_TYPES,
        etag=state.etag,
        last_modified=state.last_modified,
        resolver=resolver,
    )
    if fetched.not_modified:
        return FeedPoll(
            state=replace(
                state,
                etag=fetched.etag,
                last_modified=fetched.last_modified,
                last_checked=fetched.fetched_at,
            ),
            not_modified=True,
        )
    title, entries = await asyncio.to_thread(_parse, fetched)
    newest = sorted(entries, key=lambda entry: entry.published or 0.0, reverse=True)
    newest = newest[:max_entries]
    seen = set(state.seen)
    fresh = tuple(entry for entry in newest if entry.id not in seen)
    current = [entry.id for entry in newest]
    return FeedPoll(
        state=replace(
            state,
            etag=fetched.etag,
            last_modified=fetched.last_modified,
            title=title or state.title,
            seen=tuple(dict.fromkeys([*current, *state.seen]))[:SEEN_LIMIT],
            last_checked=fetched.fetched_at,
        ),
        entries=fresh,
    )


def _parse(fetched: Fetched) -> tuple[str | None, list[FeedEntry]]:
    """The feed's title and entries (in the feed's order, each id once)."""
    import feedparser  # noqa: PLC0415 (loaded by the part that polls, not by its importers)

    content_type = fetched.content_type or "application/xml"
    if fetched.charset:
        content_type += f"; charset={fetched.charset}"
    # A stream, never a string: given a string, feedparser would open it as a URL or a file.
    parsed = feedparser.parse(
        io.BytesIO(fetched.body),
        response_headers={"content-location": fetched.url, "content-type": content_type},
    )
    if not parsed.get("version"):
        problem = parsed.get("bozo_exception")
        why = f" ({_SPACES.sub(' ', str(problem)).strip()})" if problem else ""
        raise FeedInvalid(
            f"{safe_url(fetched.url)} is not an RSS or Atom feed "
            f"({fetched.content_type or 'no type'}){why}"
        )
    entries: dict[str, FeedEntry] = {}
    for item in parsed.get("entries", []):
        entry = _entry(item)
        entries.setdefault(entry.id, entry)
    feed_title = _text_of(parsed.get("feed", {}), "title")
    return feed_title or None, list(entries.values())


def _entry(item: Mapping[str, Any]) -> FeedEntry:
    title = _text_of(item, "title") or None
    summary = _text_of(item, "summary")
    if item.get("content") and (not summary or "summary_detail" not in item):
        # An Atom entry with content and no summary: feedparser copies the content (HTML) as
        # the summary without saying its type.
        content = item["content"][0]
        summary = _text(str(content.get("value", "")), content.get("type"))
    link = item.get("link") or None
    published = next(
        (
            float(calendar.timegm(item[key]))
            for key in ("published_parsed", "updated_parsed", "created_parsed")
            if item.get(key)
        ),
        None,
    )
    entry_id = item.get("id") or link or content_hash(f"{title}\n{summary}\n{published}")
    return FeedEntry(
        id=str(entry_id),
        link=str(link) if link else None,
        title=title,
        summary=_shorten(summary, MAX_SUMMARY),
        published=published,
    )


def _text_of(item: Mapping[str, Any], key: str) -> str:
    """``item[key]`` as plain text, whether the feed gave it as text or as HTML."""
    detail = item.get(f"{key}_detail") or {}
    return _text(str(item.get(key) or ""), detail.get("type"))


def _text(value: str, media_type: str | None) -> str:
    if media_type in ("text/html", "application/xhtml+xml"):
        return _html_text(value)
    return _SPACES.sub(" ", value).strip()


def _html_text(html: str) -> str:
    if not html.strip():
        return ""
    import lxml.html  # noqa: PLC0415 (feedparser has sanitised it; only its text is wanted)

    try:
        fragment = lxml.html.fragment_fromstring(html, create_parent="div")
    except ValueError:  # nothing lxml can parse (markup only)
        return ""
    # Blocks end with a space, so paragraphs do not run together; inline tags add none.
    for block in fragment.iter(*_BLOCKS):
        block.tail = f" {block.tail or ''}"
    return _SPACES.sub(" ", fragment.text_content()).strip()


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return f"{cut}…"
