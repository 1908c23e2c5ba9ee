"""Polling real RSS 2.0 and Atom files served from 127.0.0.1, with ETag and Last-Modified.

``feeds/`` holds the feeds as a WordPress site and a static blog generator write them (RSS with
``content:encoded`` and CDATA HTML; Atom with ``xml:base``, relative links and HTML, XHTML and
text constructs); the site answers conditional requests as a real server does.
"""

from __future__ import annotations

from datetime import UTC, datetime
import json
from pathlib import Path
import re

import aiohttp
import pytest

from hydra_core import wire
from hydra_core.knowledge.feeds import FeedInvalid, FeedState, poll
from hydra_core.knowledge.fetch import AddressRefused, BadContentType

from .site import Site

pytestmark = pytest.mark.usefixtures("loopback_sockets")

FEEDS = Path(__file__).parent / "feeds"
PAGES = Path(__file__).parent / "pages"
RSS = (FEEDS / "harbour-news.rss").read_text()
ATOM = (FEEDS / "tide-notes.atom").read_text()
RSS_TYPE = "application/rss+xml; charset=UTF-8"

NEW_ITEM = """<item>
      <title>Ferry timetable changes from Monday</title>
      <link>https://harbour.example/2026/07/07/ferry-timetable/</link>
      <pubDate>Tue, 07 Jul 2026 06:00:00 +0000</pubDate>
      <guid isPermaLink="false">https://harbour.example/?p=1212</guid>
      <description><![CDATA[<p>The first ferry now leaves at <em>07:10</em>.</p>]]></description>
    </item>
    <item>"""


def at(value: str) -> float:
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()


def with_new_item(feed: str) -> str:
    return feed.replace("<item>", NEW_ITEM, 1)


async def test_an_rss_feed_gives_its_entries_as_plain_text(
    site: Site, session: aiohttp.ClientSession
) -> None:
    url = site.add("/feed/", RSS, content_type=RSS_TYPE, etag='W/"a1"')

    result = await poll(session, FeedState(url=url), allow_private=True)

    assert not result.not_modified
    assert [entry.title for entry in result.entries] == [
        "Sea wall repairs approved before summer",
        "Spring tides this weekend: mind the slipway",
        "The café by the harbour reopens",
        "Lifeboat crew called out twice in one night",
    ]
    first, second = result.entries[:2]
    assert first.id == "https://harbour.example/?p=1207"
    assert first.link == "https://harbour.example/2026/07/06/sea-wall-repairs/"
    assert first.summary == (
        "The council voted on Thursday to repair the east sea wall before the summer season. "
        "Work starts in August."
    )
    assert first.published == at("2026-07-06T09:30:00")
    assert second.summary == (
        "High water reaches 5.8 m on Saturday at 06:12; the lower slipway floods an hour "
        "either side."
    )
    state = result.state
    assert state.url == url
    assert state.title == "Harbour News"
    assert state.etag == 'W/"a1"'
    assert state.seen == tuple(entry.id for entry in result.entries)
    assert state.last_checked is not None


async def test_an_atom_feed_gives_its_entries_as_plain_text(
    site: Site, session: aiohttp.ClientSession
) -> None:
    url = site.add("/feed.atom", ATOM, content_type="application/atom+xml")

    result = await poll(session, FeedState(url=url), allow_private=True)

    assert result.state.title == "Tide Notes"
    surge, neaps, late = result.entries
    assert surge.id == "tag:tides.example,2026:note-surge"
    assert surge.title == "Gauge reads 12 cm above prediction"
    assert surge.link == "https://tides.example/notes/2026/07/surge"
    assert surge.summary == (
        "A small storm surge: the evening high water came in 12 cm above the predicted level. "
        "Wind from the south-west."
    )
    assert surge.published == at("2026-07-05T18:00:00")
    assert neaps.summary == "The range fell to 2.1 m; the gauge was cleaned on Tuesday."
    assert late.published == at("2026-06-24T12:00:00")  # only updated: that date
    assert late.summary.startswith("High water at the inner harbour lags the open sea")


async def test_an_unchanged_feed_costs_a_304_and_gives_nothing_new(
    site: Site, session: aiohttp.ClientSession
) -> None:
    url = site.add("/feed/", RSS, content_type=RSS_TYPE, etag='"a1"')
    first = await poll(session, FeedState(url=url), allow_private=True)

    again = await poll(session, first.state, allow_private=True)

    assert again.not_modified
    assert again.entries == ()
    assert site.requests[-1].headers["If-None-Match"] == '"a1"'
    assert again.state.etag == '"a1"'
    assert again.state.seen == first.state.seen
    assert again.state.last_checked is not None
    assert first.state.last_checked is not None
    assert again.state.last_checked >= first.state.last_checked

    # A server that only dates its feed is asked with If-Modified-Since.
    dated = site.add(
        "/dated.atom",
        ATOM,
        content_type="application/atom+xml",
        last_modified="Sun, 05 Jul 2026 18:20:00 GMT",
    )
    first = await poll(session, FeedState(url=dated), allow_private=True)
    again = await poll(session, first.state, allow_private=True)
    assert again.not_modified
    assert site.requests[-1].headers["If-Modified-Since"] == "Sun, 05 Jul 2026 18:20:00 GMT"


async def test_only_an_entry_that_appeared_since_is_new(
    site: Site, session: aiohttp.ClientSession
) -> None:
    url = site.add("/feed/", RSS, content_type=RSS_TYPE, etag='"a1"')
    first = await poll(session, FeedState(url=url), allow_private=True)
    site.add("/feed/", with_new_item(RSS), content_type=RSS_TYPE, etag='"a2"')

    second = await poll(session, first.state, allow_private=True)

    assert [entry.title for entry in second.entries] == ["Ferry timetable changes from Monday"]
    assert second.entries[0].summary == "The first ferry now leaves at 07:10."
    assert second.state.etag == '"a2"'
    assert second.state.seen == ("https://harbour.example/?p=1212", *first.state.seen)


async def test_without_validators_the_seen_ids_still_tell_what_is_new(
    site: Site, session: aiohttp.ClientSession
) -> None:
    url = site.add("/feed/", RSS, content_type=RSS_TYPE)
    first = await poll(session, FeedState(url=url), allow_private=True)

    again = await poll(session, first.state, allow_private=True)

    assert not again.not_modified
    assert "If-None-Match" not in site.requests[-1].headers
    assert again.entries == ()


async def test_max_entries_keeps_the_newest(site: Site, session: aiohttp.ClientSession) -> None:
    # The same feed, oldest entry first (some generators write them so).
    head, *items = re.split(r"(?=<item>)", RSS.split("</channel>")[0])
    oldest_first = head + "".join(reversed([item.rstrip() + "\n" for item in items]))
    url = site.add("/feed/", oldest_first + "</channel></rss>", content_type=RSS_TYPE)

    first = await poll(session, FeedState(url=url), allow_private=True, max_entries=2)

    assert [entry.title for entry in first.entries] == [
        "Sea wall repairs approved before summer",
        "Spring tides this weekend: mind the slipway",
    ]
    assert len(first.state.seen) == 2
    site.add("/feed/", with_new_item(RSS), content_type=RSS_TYPE)
    second = await poll(session, first.state, allow_private=True, max_entries=2)
    assert [entry.title for entry in second.entries] == ["Ferry timetable changes from Monday"]


async def test_entries_without_a_guid_are_known_by_link_or_content(
    site: Site, session: aiohttp.ClientSession
) -> None:
    feed = """<?xml version="1.0"?><rss version="2.0"><channel><title>Notices</title>
      <item><title>Harbour closed</title><link>https://harbour.example/closed</link></item>
      <item><title>Buoy moved</title><description>The red buoy is 50 m east.</description></item>
    </channel></rss>"""
    url = site.add("/notices.xml", feed, content_type="text/xml")

    first = await poll(session, FeedState(url=url), allow_private=True)
    again = await poll(session, first.state, allow_private=True)

    linked, unlinked = first.entries
    assert linked.id == "https://harbour.example/closed"
    assert unlinked.link is None
    assert len(unlinked.id) == 64  # a content hash
    assert linked.published is None
    assert again.entries == ()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ((PAGES / "lemire.me.json.html").read_bytes(), "text/html; charset=UTF-8"),
        (b"", "application/rss+xml"),
        (b"Service temporarily unavailable, try again later.", "text/plain"),
    ],
)
async def test_a_body_that_is_not_a_feed_is_invalid(
    site: Site, session: aiohttp.ClientSession, body: bytes, content_type: str
) -> None:
    url = site.add("/feed/", body, content_type=content_type)

    with pytest.raises(FeedInvalid) as raised:
        await poll(session, FeedState(url=url), allow_private=True)

    assert raised.value.code == "feed_invalid"
    assert raised.value.message.startswith(f"{url} is not an RSS or Atom feed")


async def test_fetch_refusals_reach_the_caller(site: Site, session: aiohttp.ClientSession) -> None:
    url = site.add("/feed.json", b'{"items": []}', content_type="application/json")
    with pytest.raises(BadContentType):
        await poll(session, FeedState(url=url), allow_private=True)
    with pytest.raises(AddressRefused):
        await poll(session, FeedState(url=url))
    assert site.paths() == ["/feed.json"]


async def test_the_state_survives_being_stored_as_json(
    site: Site, session: aiohttp.ClientSession
) -> None:
    url = site.add("/feed/", RSS, content_type=RSS_TYPE, etag='"a1"')
    first = await poll(session, FeedState(url=url), allow_private=True)

    stored = json.dumps(wire.dump(first.state))
    restored = wire.load(FeedState, json.loads(stored))

    assert restored == first.state
    assert (await poll(session, restored, allow_private=True)).not_modified
