"""What every Hydra action starts with: the worker it acts on (the one named by
``config_entry_id``, else the only loaded one), and the part of it the action needs."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Final

from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv, service
import probatio

from .const import DOMAIN

if TYPE_CHECKING:
    from .coordinator import HydraPartCoordinator
    from .data import HydraConfigEntry

ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
# The schema of an action that takes nothing but the worker.
ENTRY_SCHEMA: Final = probatio.Schema({probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string})

# An action: what handles a call, and the schema its data must fit.
type Action = tuple[
    Callable[[ServiceCall], Coroutine[Any, Any, ServiceResponse]],
    probatio.Schema | probatio.All[Any],
]


@callback
def async_register_actions(hass: HomeAssistant, actions: Mapping[str, Action]) -> None:
    """Register Hydra actions; each answers what it did when asked to."""
    for name, (handler, schema) in actions.items():
        hass.services.async_register(
            DOMAIN, name, handler, schema=schema, supports_response=SupportsResponse.OPTIONAL
        )


def action_entry(call: ServiceCall) -> HydraConfigEntry:
    """The loaded entry the call names, or the only one (translated errors otherwise)."""
    return service.async_get_config_entry(call.hass, DOMAIN, call.data.get(ATTR_CONFIG_ENTRY_ID))


def require_part[C: HydraPartCoordinator[Any, Any]](entry: HydraConfigEntry, kind: type[C]) -> C:
    """The entry's part, or the user's mistake of asking a worker that does not have it."""
    if (coordinator := entry.runtime_data.part(kind)) is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key=kind.disabled,
            translation_placeholders={"worker": entry.title},
        )
    return coordinator


def action_part[C: HydraPartCoordinator[Any, Any]](call: ServiceCall, kind: type[C]) -> C:
    """The part of the worker the call names (or of the only worker)."""
    return require_part(action_entry(call), kind)
