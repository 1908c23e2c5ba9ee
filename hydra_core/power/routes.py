"""Routes for GPU power profiles: what each card runs at, and setting a profile or a limit."""

from __future__ import annotations

import math

from aiohttp import web

from ..wire import dump
from ..worker.errors import ApiError
from ..worker.requests import check_query, read_actor, read_object
from .manager import PowerManager, PowerRequestError
from .part import PowerPart

routes = web.RouteTableDef()
_FIELDS = frozenset({"profile", "limit_w", "gpus", "actor"})


def _power(request: web.Request) -> PowerManager:
    return PowerPart.of(request).manager


@routes.get("/power")
async def handle_status(request: web.Request) -> web.Response:
    """Every GPU's profile, target and enforced limit; ``available`` false (and why) without
    NVML or a GPU."""
    check_query(request, {})
    status = await _power(request).async_status()
    return web.json_response(dump(status))


@routes.put("/power")
async def handle_set(request: web.Request) -> web.Response:
    """``{"profile": "eco"|"balanced"|"full"}`` or ``{"limit_w": watts}``, optionally on
    ``"gpus": [index, ...]`` (default all), on behalf of ``"actor"``."""
    check_query(request, {})
    power = _power(request)
    body = await read_object(request)
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise ApiError(400, "invalid_body", f"Unknown field(s): {', '.join(unknown)}")
    profile = body.get("profile")
    limit_w = body.get("limit_w")
    if profile is not None and not isinstance(profile, str):
        raise ApiError(400, "invalid_body", "profile must be text")
    if limit_w is not None and not _is_number(limit_w):
        raise ApiError(400, "invalid_body", "limit_w must be a number of watts")
    try:
        status = await power.async_set(
            read_actor(body.get("actor")),
            profile=profile,
            limit_w=None if limit_w is None else float(limit_w),
            gpus=_gpus(body.get("gpus")),
        )
    except PowerRequestError as err:
        raise ApiError(err.status, err.code, err.message) from err
    return web.json_response(dump(status))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _gpus(raw: object) -> list[int] | None:
    if raw is None:
        return None
    if (
        not isinstance(raw, list)
        or not raw
        or not all(isinstance(index, int) and not isinstance(index, bool) for index in raw)
        or any(index < 0 for index in raw)
    ):
        raise ApiError(400, "invalid_body", "gpus must be a non-empty list of GPU indexes")
    return raw
