"""Reading query strings strictly: unknown or malformed input is a 400 that says what was wrong.

Bodies are read with ``hydra_core.wire.read_body`` into a request dataclass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import math

from aiohttp import web

from .errors import ApiError


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


def query_choice(request: web.Request, name: str, allowed: Sequence[str]) -> str | None:
    """A query parameter that must be one of ``allowed``, or None when absent."""
    value = request.query.get(name)
    if value is not None and value not in allowed:
        raise ApiError(400, "invalid_query", f"{name} must be one of {', '.join(allowed)}")
    return value


def query_before(request: web.Request) -> int | None:
    """The ``before`` paging id (list entries with a smaller id), or None when absent."""
    before = query_number(request, "before", low=1, high=2**62)
    return None if before is None else int(before)


def query_limit(request: web.Request, high: int, *, default: int = 100) -> int:
    """The ``limit`` query parameter, 1 to ``high``; ``default`` when absent."""
    limit = query_number(request, "limit", low=1, high=high)
    return default if limit is None else int(limit)
