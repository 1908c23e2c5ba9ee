"""API errors: every failure leaves the worker as JSON ``{code, message}``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import logging
from typing import Any

from aiohttp import web

from ..errors import Refusal

_LOGGER = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Refusal):
    """A refusal the API layer itself decides (a bad query, a missing part, a bad token)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message, code=code, status=status)


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> web.Response:
    """The JSON body every error uses."""
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return web.json_response(body, status=status)


# aiohttp raises these itself (no such route, wrong method, body too large).
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every exception into a JSON error; log the unexpected ones."""
    try:
        return await handler(request)
    except Refusal as err:
        return error_response(err.status, err.code, err.message, err.details)
    except web.HTTPException as err:
        if err.status < 400:
            raise
        code = _HTTP_CODES.get(err.status, "http_error")
        message = err.reason
        if err.status in (404, 405):
            message = f"{err.reason}: {request.method} {request.path}"
        response = error_response(err.status, code, message)
        if "Allow" in err.headers:
            response.headers["Allow"] = err.headers["Allow"]
        return response
    except Exception:
        _LOGGER.exception("Unexpected error handling %s %s", request.method, request.path)
        return error_response(500, "internal_error", "The worker hit an unexpected error")
