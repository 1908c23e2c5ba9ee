"""Routes for image quality: scoring, the character registry, the review queue, learning.

Images travel base64-encoded in JSON (``"data"``); those routes take bodies up to
``MAX_IMAGE_BODY`` bytes. Every route answers 404 ``quality_disabled`` when the worker was
started without quality; scoring and submitting answer 503 ``quality_unavailable`` (with the
reason) when the model cannot run, after the input was checked.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
import functools

from aiohttp import web

from ..models import CallerActor
from ..wire import dump, read_body
from ..worker.errors import ApiError
from ..worker.requests import check_query, query_choice, query_limit
from .models import (
    ASSET_STATES,
    AssetRequest,
    CharacterChanges,
    ReferenceRequest,
    ReviewRequest,
    ScoreRequest,
)
from .part import QualityPart
from .review import MAX_LIST
from .service import ImageInput

routes = web.RouteTableDef()
# 64 MiB of JSON: about 48 MiB of image once base64 is decoded.
MAX_IMAGE_BODY = 64 * 1024 * 1024
# Requests carrying images handled at once: each may hold MAX_IMAGE_BODY of JSON and its
# decoded images in memory, so more wait their turn at the client instead.
MAX_IMAGE_REQUESTS = 4

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _carries_images(handler: Handler) -> Handler:
    """Refuse the request (503 ``too_many_uploads``) while MAX_IMAGE_REQUESTS are handled."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        part = QualityPart.of(request)
        if part.image_requests >= MAX_IMAGE_REQUESTS:
            raise ApiError(
                503,
                "too_many_uploads",
                f"The worker is already taking {MAX_IMAGE_REQUESTS} requests with images;"
                " send this one again in a moment",
            )
        part.image_requests += 1
        try:
            return await handler(request)
        finally:
            part.image_requests -= 1

    return wrapper


def _text(value: str | None) -> str | None:
    """An optional text field; blank counts as absent."""
    return None if value is None else value.strip() or None


def _image(raw: str, where: str) -> bytes:
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "invalid_body", f"{where} is not valid base64") from None


def _asset_id(request: web.Request) -> int:
    raw = request.match_info["asset_id"]
    if not raw.isdecimal():
        raise ApiError(400, "invalid_asset_id", f"An asset id is a whole number, not {raw!r}")
    if int(raw) >= 2**63:  # beyond SQLite's integers: no such asset can exist
        raise ApiError(404, "asset_not_found", f"No asset {raw}")
    return int(raw)


# Status and learning


@routes.get("/quality")
async def handle_status(request: web.Request) -> web.Response:
    """Whether scoring can run (and why not), the model, the pending count, the learning."""
    check_query(request, {})
    status = await QualityPart.service_of(request).async_status()
    return web.json_response(dump(status))


@routes.get("/quality/learning")
async def handle_learning(request: web.Request) -> web.Response:
    """What the decisions taught, per character: threshold, counts, reasons, prompt terms."""
    check_query(request, {})
    learning = QualityPart.service_of(request).learning()
    return web.json_response({"learning": [dump(item) for item in learning]})


@routes.post("/quality/score")
@_carries_images
async def handle_score(request: web.Request) -> web.Response:
    """``{images: [{data, name?}], prompt?, character?, style_prompt?}``: the images ranked,
    best first; nothing is kept."""
    check_query(request, {})
    quality = QualityPart.service_of(request)
    body = await read_body(request, ScoreRequest, max_size=MAX_IMAGE_BODY)
    images = [
        ImageInput(_image(item.data, f"images[{number}].data"), _text(item.name))
        for number, item in enumerate(body.images)
    ]
    scores = await quality.async_score(
        images,
        prompt=_text(body.prompt),
        character=_text(body.character),
        style_prompt=_text(body.style_prompt),
    )
    return web.json_response({"scores": [dump(score) for score in scores]})


# Characters


@routes.get("/characters")
async def handle_characters(request: web.Request) -> web.Response:
    """Every character of the registry."""
    check_query(request, {})
    characters = QualityPart.service_of(request).characters.list()
    return web.json_response({"characters": [dump(item) for item in characters]})


@routes.post("/characters")
async def handle_create_character(request: web.Request) -> web.Response:
    """``{name, style_notes?, voice?}``: a new character, its id made from its name."""
    check_query(request, {})
    quality = QualityPart.service_of(request)
    character = await quality.async_create_character(await read_body(request, CharacterChanges))
    return web.json_response(dump(character), status=201)


@routes.get("/characters/{character_id}")
async def handle_character(request: web.Request) -> web.Response:
    """One character."""
    check_query(request, {})
    character = QualityPart.service_of(request).characters.get(request.match_info["character_id"])
    return web.json_response(dump(character))


@routes.put("/characters/{character_id}")
async def handle_update_character(request: web.Request) -> web.Response:
    """Change any of ``name``, ``style_notes``, ``voice``."""
    check_query(request, {})
    quality = QualityPart.service_of(request)
    character = await quality.async_update_character(
        request.match_info["character_id"], await read_body(request, CharacterChanges)
    )
    return web.json_response(dump(character))


@routes.delete("/characters/{character_id}")
async def handle_delete_character(request: web.Request) -> web.Response:
    """Forget a character and its reference images; its assets stay."""
    check_query(request, {})
    await QualityPart.service_of(request).async_delete_character(request.match_info["character_id"])
    return web.Response(status=204)


@routes.post("/characters/{character_id}/references")
@_carries_images
async def handle_add_reference(request: web.Request) -> web.Response:
    """``{data}``: keep a PNG, JPEG or WebP image as one of the character's references."""
    check_query(request, {})
    quality = QualityPart.service_of(request)
    body = await read_body(request, ReferenceRequest, max_size=MAX_IMAGE_BODY)
    character = await quality.async_add_reference(
        request.match_info["character_id"], _image(body.data, "data")
    )
    return web.json_response(dump(character), status=201)


@routes.delete("/characters/{character_id}/references/{name}")
async def handle_remove_reference(request: web.Request) -> web.Response:
    """Stop using one reference image (by the name the character lists)."""
    check_query(request, {})
    character = await QualityPart.service_of(request).async_remove_reference(
        request.match_info["character_id"], request.match_info["name"]
    )
    return web.json_response(dump(character))


# Assets and review


@routes.post("/assets")
@_carries_images
async def handle_submit(request: web.Request) -> web.Response:
    """``{data, prompt?, character?, name?}``: score and keep an image; auto-accepted at or
    above its character's threshold, else pending review."""
    check_query(request, {})
    quality = QualityPart.service_of(request)
    body = await read_body(request, AssetRequest, max_size=MAX_IMAGE_BODY)
    asset = await quality.async_submit(
        ImageInput(_image(body.data, "data"), _text(body.name)),
        prompt=_text(body.prompt),
        character=_text(body.character),
    )
    return web.json_response(dump(asset), status=201)


@routes.get("/assets")
async def handle_assets(request: web.Request) -> web.Response:
    """Assets, filtered by ``state``: pending ones oldest first (the review queue), else newest
    first; at most ``limit``."""
    check_query(
        request,
        {"state": f"one of {', '.join(ASSET_STATES)}", "limit": f"1 to {MAX_LIST} (default 100)"},
    )
    assets = await QualityPart.service_of(request).async_assets(
        state=query_choice(request, "state", ASSET_STATES), limit=query_limit(request, MAX_LIST)
    )
    return web.json_response({"assets": [dump(asset) for asset in assets]})


@routes.get("/assets/{asset_id}")
async def handle_asset(request: web.Request) -> web.Response:
    """One asset."""
    check_query(request, {})
    asset = await QualityPart.service_of(request).async_asset(_asset_id(request))
    return web.json_response(dump(asset))


@routes.get("/assets/{asset_id}/image")
async def handle_asset_image(request: web.Request) -> web.Response:
    """The asset's image, as it was submitted."""
    check_query(request, {})
    data, content_type = await QualityPart.service_of(request).async_asset_image(_asset_id(request))
    return web.Response(body=data, content_type=content_type)


@routes.post("/assets/{asset_id}/review")
async def handle_review(request: web.Request) -> web.Response:
    """``{decision: accept|reject, reason?, actor?}``: a person's decision on an asset that is
    pending or was auto-accepted; 409 ``asset_decided`` once a person decided it."""
    check_query(request, {})
    quality = QualityPart.service_of(request)
    body = await read_body(request, ReviewRequest)
    asset = await quality.async_review(
        _asset_id(request),
        body.decision,
        actor=CallerActor.resolve(body.actor),
        reason=_text(body.reason),
    )
    return web.json_response(dump(asset))
