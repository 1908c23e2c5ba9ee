"""Routes for the voice services: their status and the settings Home Assistant may change."""

from __future__ import annotations

from aiohttp import web

from ..wire import dump, read_body
from ..worker.errors import ApiError
from ..worker.requests import check_query
from .models import VoiceChanges
from .part import VoicePart
from .service import VoiceSettingsError

routes = web.RouteTableDef()


@routes.get("/voice")
async def handle_status(request: web.Request) -> web.Response:
    """The Wyoming port, each service (offered or why not) and the settings."""
    check_query(request, {})
    return web.json_response(dump(VoicePart.service_of(request).status()))


@routes.put("/voice")
async def handle_update(request: web.Request) -> web.Response:
    """Change any of ``wake_threshold``, ``wake_trigger_level``, ``stt_model``, ``tts_voice``,
    ``tts_speed``; all are checked before any is applied."""
    check_query(request, {})
    voice = VoicePart.service_of(request)
    try:
        status = voice.update(await read_body(request, VoiceChanges, code="invalid_setting"))
    except VoiceSettingsError as err:
        raise ApiError(400, "invalid_setting", str(err)) from err
    return web.json_response(dump(status))
