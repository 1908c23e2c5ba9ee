"""Routes for the voice services: their status and the settings Home Assistant may change."""

from __future__ import annotations

from aiohttp import web

from ..voice.service import VoiceService, VoiceSettingsError
from .errors import ApiError
from .requests import app_part, check_query, read_object

VOICE_KEY = web.AppKey("voice", VoiceService)


def add_routes(app: web.Application, prefix: str) -> None:
    """Register the routes."""
    app.router.add_get(f"{prefix}/voice", handle_status)
    app.router.add_put(f"{prefix}/voice", handle_update)


def _voice(request: web.Request) -> VoiceService:
    return app_part(request, VOICE_KEY, "voice_disabled", "This worker serves no voice services")


async def handle_status(request: web.Request) -> web.Response:
    """The Wyoming port, each service (offered or why not) and the settings."""
    check_query(request, {})
    return web.json_response(_voice(request).status().as_dict())


async def handle_update(request: web.Request) -> web.Response:
    """Change any of ``wake_threshold``, ``wake_trigger_level``, ``stt_model``, ``tts_voice``,
    ``tts_speed``; all are checked before any is applied."""
    check_query(request, {})
    voice = _voice(request)
    try:
        status = voice.update(await read_object(request))
    except (VoiceSettingsError, TypeError) as err:
        raise ApiError(400, "invalid_setting", str(err)) from err
    return web.json_response(status.as_dict())
