"""Bearer-token authentication for every route except the health check."""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Middleware

from .errors import ApiError, Handler

PUBLIC_PATHS = frozenset({"/api/v1/health"})


def token_middleware(token: str) -> Middleware:
    """Require ``Authorization: Bearer <token>``, compared in constant time."""
    expected = token.encode()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS:
            return await handler(request)
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise ApiError(
                401, "unauthorized", "Send the worker's token as 'Authorization: Bearer <token>'"
            )
        if not hmac.compare_digest(given.strip().encode(), expected):
            raise ApiError(401, "invalid_token", "The token is not valid for this worker")
        return await handler(request)

    return middleware
