"""Logbook: every container action Hydra attempted, on the container's device."""

from collections.abc import Callable, Mapping
from typing import Any

from homeassistant.components.logbook.const import LOGBOOK_ENTRY_MESSAGE, LOGBOOK_ENTRY_NAME
from homeassistant.core import Event, HomeAssistant, callback

from .const import DOMAIN, EVENT_CONTAINER_ACTION

PAST_TENSE = {"start": "started", "stop": "stopped", "restart": "restarted"}


def _actor(data: Mapping[str, Any]) -> str:
    match data.get("actor_type"):
        case "self_heal":
            return "self-healing"
        case "user":
            return data.get("actor_name") or "a user"
        case "automation":
            name = data.get("actor_name")
            return f"automation {name}" if name else "an automation"
        case _:
            return data.get("actor_name") or "the worker API"


def describe_action(data: Mapping[str, Any]) -> str:
    """One line for an audit entry, e.g. "restarted by self-healing: unhealthy for 3 checks"."""
    action = data["action"]
    actor = _actor(data)
    if data["result"] == "ok":
        reason = data.get("reason")
        done = f"{PAST_TENSE.get(action, action)} by {actor}"
        return f"{done}: {reason}" if reason else done
    why = data.get("detail") or data.get("reason") or "no reason given"
    outcome = "refused" if data["result"] == "refused" else "failed"
    return f"{action} {outcome}: {why} (asked by {actor})"


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, str]]], None],
) -> None:
    """Describe Hydra's container actions."""

    @callback
    def async_describe_container_action(event: Event) -> dict[str, str]:
        return {
            LOGBOOK_ENTRY_NAME: event.data["container"],
            LOGBOOK_ENTRY_MESSAGE: describe_action(event.data),
        }

    async_describe_event(DOMAIN, EVENT_CONTAINER_ACTION, async_describe_container_action)
