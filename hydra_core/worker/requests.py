"""Reading requests strictly: unknown or malformed input is a 400 that says what was wrong."""

from __future__ import annotations

from collections.abc import Mapping
import json
import math
from typing import Any

from aiohttp import web

from ..models import Actor
from ..wire import load
from .errors import ApiError

# Who may be named as the actor of a request; self_heal is the worker's own.
CALLER_ACTORS = ("user", "automation", "api", "presence", "schedule")


def check_query(request: web.Request, allowed: Mapping[str, str]) -> None:
    """Reject query parameters a route does not take, so typos fail loudly."""
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        accepted = ", ".join(f"{name} ({meaning})" for name, meaning in allowed.items()) or "none"
        raise ApiError(
            400,
            "invalid_query",
            f"Unknown query parameter(s): {', '.join(unknown)}. Accepted: {accepted}",
        )


def query_number(request: web.Request, name: str, *, low: float, high: float) -> float | None:
    """A numeric query parameter within bounds, or None when absent."""
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(400, "invalid_query", f"{name} must be a number, not {raw!r}") from None
    if not math.isfinite(value):
        raise ApiError(400, "invalid_query", f"{name} must be a finite number, not {raw!r}")
    if not low <= value <= high:
        raise ApiError(400, "invalid_query", f"{name} must be between {low:g} and {high:g}")
    return value


async def read_object(request: web.Request, *, max_size: int | None = None) -> dict[str, Any]:
    """The JSON object in the body; an empty body is an empty object.

    ``max_size`` raises the application's body limit for this request (images in JSON).
    """
    if max_size is not None:
        request = request.clone(client_max_size=max_size)
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise ApiError(400, "invalid_body", f"The body is not valid JSON: {err}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "The body must be a JSON object")
    return body


def read_actor(raw: object) -> Actor:
    """The ``actor`` of a request body (default: the API itself), checked."""
    if raw is None:
        return Actor(type="api")
    if not isinstance(raw, dict) or raw.get("type") not in CALLER_ACTORS:
        raise ApiError(400, "invalid_body", f"actor.type must be one of {', '.join(CALLER_ACTORS)}")
    for key in ("id", "name"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise ApiError(400, "invalid_body", f"actor.{key} must be text")
    return load(Actor, raw)
