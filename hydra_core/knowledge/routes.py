"""Routes for the knowledge base: status, search, topics, findings, memories, feeds, mail."""

from __future__ import annotations

from aiohttp import web

from ..models import CallerActor
from ..wire import dump, read_body
from ..worker.errors import ApiError
from ..worker.requests import check_query, query_limit, query_number
from .models import (
    MAX_QUERY,
    FeedEntryRequest,
    FeedRequest,
    MailRequest,
    MemoryRequest,
    TopicsRequest,
)
from .part import KnowledgePart
from .service import MAX_SEARCH

routes = web.RouteTableDef()


def _query(request: web.Request, *, required: bool) -> str | None:
    query = request.query.get("q")
    if query is not None and len(query) > MAX_QUERY:
        raise ApiError(400, "invalid_query", f"q is at most {MAX_QUERY} characters")
    if required and not (query or "").strip():
        raise ApiError(400, "invalid_query", "q is required: what to search for")
    return query


def _since(request: web.Request) -> float:
    return query_number(request, "since", low=0, high=2**40) or 0.0


@routes.get("/knowledge")
async def handle_status(request: web.Request) -> web.Response:
    """Whether the store and the model run, counts, today's findings, a size warning."""
    check_query(request, {})
    service = KnowledgePart.service_of(request)
    return web.json_response(dump(await service.async_status()))


@routes.get("/knowledge/search")
async def handle_search(request: web.Request) -> web.Response:
    """``q``: the chunks that answer it best, at most ``limit``."""
    check_query(request, {"q": "what to search for", "limit": f"1 to {MAX_SEARCH} (default 5)"})
    service = KnowledgePart.service_of(request)
    query = _query(request, required=True)
    assert query is not None
    result = await service.async_search(query, limit=query_limit(request, MAX_SEARCH, default=5))
    return web.json_response(dump(result))


@routes.get("/knowledge/topics")
async def handle_topics(request: web.Request) -> web.Response:
    """The topics of interest."""
    check_query(request, {})
    service = KnowledgePart.service_of(request)
    return web.json_response({"topics": list(await service.async_topics())})


@routes.put("/knowledge/topics")
async def handle_set_topics(request: web.Request) -> web.Response:
    """Set the topics of interest."""
    check_query(request, {})
    service = KnowledgePart.service_of(request)
    body = await read_body(request, TopicsRequest)
    return web.json_response({"topics": list(await service.async_set_topics(body.topics))})


@routes.get("/findings")
async def handle_findings(request: web.Request) -> web.Response:
    """Findings since ``since``, newest first."""
    check_query(request, {"since": "unix time", "limit": "1 to 200 (default 20)"})
    service = KnowledgePart.service_of(request)
    findings = await service.store.async_findings(
        since=_since(request), limit=query_limit(request, 200, default=20)
    )
    return web.json_response({"findings": [dump(finding) for finding in findings]})


@routes.get("/findings/{finding_id}")
async def handle_finding(request: web.Request) -> web.Response:
    """One finding."""
    check_query(request, {})
    raw = request.match_info["finding_id"]
    finding = None
    if raw.isdecimal() and len(raw) < 18:
        finding = await KnowledgePart.service_of(request).store.async_finding(int(raw))
    if finding is None:
        raise ApiError(404, "finding_not_found", f"No finding {raw!r}")
    return web.json_response(dump(finding))


@routes.post("/memories")
async def handle_remember(request: web.Request) -> web.Response:
    """Remember a fact or a preference."""
    check_query(request, {})
    service = KnowledgePart.service_of(request)
    body = await read_body(request, MemoryRequest)
    memory = await service.async_remember(
        body.text, kind=body.kind, actor=CallerActor.resolve(body.actor)
    )
    return web.json_response(dump(memory), status=201)


@routes.get("/memories")
async def handle_recall(request: web.Request) -> web.Response:
    """Memories closest to ``q``, or the newest."""
    check_query(request, {"q": "what to recall", "limit": "1 to 100 (default 10)"})
    service = KnowledgePart.service_of(request)
    memories = await service.async_recall(
        _query(request, required=False), limit=query_limit(request, 100, default=10)
    )
    return web.json_response({"memories": [dump(memory) for memory in memories]})


@routes.delete("/memories/{memory_id}")
async def handle_forget(request: web.Request) -> web.Response:
    """Forget a memory for good."""
    check_query(request, {})
    await KnowledgePart.service_of(request).async_forget(request.match_info["memory_id"])
    return web.Response(status=204)


@routes.get("/feeds")
async def handle_feeds(request: web.Request) -> web.Response:
    """The feeds polled."""
    check_query(request, {})
    feeds = await KnowledgePart.service_of(request).async_feeds()
    return web.json_response({"feeds": [dump(feed) for feed in feeds]})


@routes.post("/feeds")
async def handle_add_feed(request: web.Request) -> web.Response:
    """Poll a feed."""
    check_query(request, {})
    service = KnowledgePart.service_of(request)
    body = await read_body(request, FeedRequest)
    feed = await service.async_add_feed(body.url, body.title, body.max_entries)
    return web.json_response(dump(feed), status=201)


@routes.delete("/feeds/{feed_id}")
async def handle_remove_feed(request: web.Request) -> web.Response:
    """Stop polling a feed."""
    check_query(request, {})
    raw = request.match_info["feed_id"]
    if not raw.isdecimal() or len(raw) > 18:
        raise ApiError(404, "feed_not_found", f"No feed {raw!r}")
    await KnowledgePart.service_of(request).async_remove_feed(int(raw))
    return web.Response(status=204)


@routes.post("/feeds/entries")
async def handle_feed_entry(request: web.Request) -> web.Response:
    """An entry Home Assistant's feedreader saw: kept and embedded like a polled one."""
    check_query(request, {})
    service = KnowledgePart.service_of(request)
    body = await read_body(request, FeedEntryRequest)
    added = await service.async_add_entry(
        feed=body.feed,
        entry_id=body.link,
        title=body.title,
        link=body.link,
        summary=body.summary,
        published=body.published,
    )
    if added:
        await service.publish_status()
    return web.json_response({"added": added}, status=202)


@routes.get("/feeds/digest")
async def handle_digest(request: web.Request) -> web.Response:
    """Entries since ``since``, ranked by the topics of interest."""
    check_query(request, {"since": "unix time"})
    service = KnowledgePart.service_of(request)
    return web.json_response(dump(await service.async_digest(_since(request))))


@routes.post("/mail")
async def handle_mail(request: web.Request) -> web.Response:
    """A mail seen by Home Assistant's imap integration: flagged or not."""
    check_query(request, {})
    service = KnowledgePart.service_of(request)
    body = await read_body(request, MailRequest)
    flag = await service.async_mail(
        sender=body.sender, subject=body.subject, text=body.text, date=body.date
    )
    return web.json_response({"flag": None if flag is None else dump(flag)})


@routes.get("/mail")
async def handle_flagged(request: web.Request) -> web.Response:
    """Mail flagged since ``since``."""
    check_query(request, {"since": "unix time"})
    service = KnowledgePart.service_of(request)
    return web.json_response(
        {"mail": [dump(flag) for flag in await service.async_flagged(_since(request))]}
    )
