"""Bearer-token authentication for every route except the health check."""

from __future__ import annotations

from collections.abc import Mapping
import hmac

from aiohttp import web
from aiohttp.typedefs import Middleware

from .errors import ApiError, Handler

PUBLIC_PATHS = frozenset({"/api/v1/health"})


def token_middleware(token: str, route_tokens: Mapping[str, str] | None = None) -> Middleware:
    """Require ``Authorization: Bearer <token>``, compared in constant time; a path in
    ``route_tokens`` also takes the token given for it there."""
    expected = token.encode()
    others = {path: value.encode() for path, value in (route_tokens or {}).items()}

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS:
            return await handler(request)
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise ApiError(
                401, "unauthorized", "Send the worker's token as 'Authorization: Bearer <token>'"
            )
        sent = given.strip().encode()
        other = others.get(request.path)
        # Both compared every time: how long a refusal takes says nothing of which was near.
        valid = hmac.compare_digest(sent, expected)
        valid_here = other is not None and hmac.compare_digest(sent, other)
        if not (valid or valid_here):
            raise ApiError(401, "invalid_token", "The token is not valid for this worker")
        return await handler(request)

    return middleware
