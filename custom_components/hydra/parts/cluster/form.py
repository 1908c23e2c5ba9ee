"""The head's routing rules as the options flow shows them: one ``KIND=LABEL`` line a rule."""

from __future__ import annotations

from collections.abc import Mapping

from hydra_core.client import HydraApiError, HydraError

# The worker's refusals of a rule set that the form names by their own code (strings.json's
# options.error); any other refusal is ``routes_refused`` with the worker's message.
ROUTE_ERRORS = frozenset(
    {"invalid_route", "unknown_route_kind", "coordinator_route", "cluster_not_head"}
)


class RouteLineError(ValueError):
    """A line of the form that is not ``KIND=LABEL``."""


def routes_text(routes: Mapping[str, str]) -> str:
    """The rules, one ``KIND=LABEL`` line each, in the order they are tried."""
    return "\n".join(f"{kind}={label}" for kind, label in routes.items())


def parse_routes(text: str) -> dict[str, str]:
    """The rules of the form's text (blank lines skipped); RouteLineError naming a line that
    is not ``KIND=LABEL``. The worker checks the kinds and labels themselves."""
    routes: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        kind, equals, label = line.partition("=")
        if not equals or not kind.strip() or not label.strip():
            raise RouteLineError(line.strip())
        routes[kind.strip()] = label.strip()
    return routes


def route_error(err: HydraError) -> tuple[str, str]:
    """The form's error code and the text for its ``{error}`` for a failed PUT."""
    if isinstance(err, HydraApiError) and 400 <= err.status < 500:
        return (err.code if err.code in ROUTE_ERRORS else "routes_refused"), err.message
    return "cannot_connect", str(err)
