"""Routes for chapters: in, their progress, cancel, retry, and the overnight start."""

from __future__ import annotations

from aiohttp import web

from ..models import CallerActor
from ..wire import dump, read_body
from ..worker.errors import ApiError
from ..worker.requests import check_query, query_choice, query_limit
from .models import CHAPTER_STATES, MAX_CHAPTER_CHARS, ChapterRequest
from .part import CreativePart
from .store import MAX_LIST

routes = web.RouteTableDef()

# A chapter's text at its longest, as JSON (escapes can double it), with room for the rest.
_MAX_BODY = 2 * MAX_CHAPTER_CHARS + 64 * 1024


def _chapter_id(request: web.Request) -> int:
    raw = request.match_info["chapter_id"]
    if not raw.isdecimal() or len(raw) > 18:
        raise ApiError(400, "invalid_chapter_id", f"A chapter id is a whole number, not {raw!r}")
    return int(raw)


@routes.post("/chapters")
async def handle_create(request: web.Request) -> web.Response:
    """Take a chapter: ``{text, project, name, start, regenerate, actor}``."""
    check_query(request, {})
    service = CreativePart.service_of(request)
    body = await read_body(request, ChapterRequest, max_size=_MAX_BODY)
    chapter = await service.async_submit(
        body.text,
        project=body.project,
        name=body.name,
        start=body.start,
        regenerate=body.regenerate,
        actor=CallerActor.resolve(body.actor),
    )
    return web.json_response(dump(chapter), status=201)


@routes.get("/chapters")
async def handle_list(request: web.Request) -> web.Response:
    """Chapters, newest first; filter ``state``, at most ``limit``."""
    check_query(
        request,
        {"state": f"one of {', '.join(CHAPTER_STATES)}", "limit": f"1 to {MAX_LIST} (default 50)"},
    )
    chapters = await CreativePart.service_of(request).async_chapters(
        state=query_choice(request, "state", CHAPTER_STATES),
        limit=query_limit(request, MAX_LIST, default=50),
    )
    return web.json_response({"chapters": [dump(chapter) for chapter in chapters]})


@routes.post("/chapters/start")
async def handle_start(request: web.Request) -> web.Response:
    """Queue the chapters kept for the overnight pipeline."""
    check_query(request, {})
    chapters = await CreativePart.service_of(request).async_start_waiting()
    return web.json_response({"chapters": [dump(chapter) for chapter in chapters]})


@routes.get("/chapters/{chapter_id}")
async def handle_get(request: web.Request) -> web.Response:
    """One chapter."""
    check_query(request, {})
    service = CreativePart.service_of(request)
    return web.json_response(dump(await service.async_chapter(_chapter_id(request))))


@routes.post("/chapters/{chapter_id}/cancel")
async def handle_cancel(request: web.Request) -> web.Response:
    """Stop a chapter and its assets' tasks."""
    check_query(request, {})
    service = CreativePart.service_of(request)
    return web.json_response(dump(await service.async_cancel(_chapter_id(request))))


@routes.post("/chapters/{chapter_id}/retry")
async def handle_retry(request: web.Request) -> web.Response:
    """Run a failed or cancelled chapter again; what was made stays made."""
    check_query(request, {})
    service = CreativePart.service_of(request)
    return web.json_response(dump(await service.async_retry(_chapter_id(request))))
