"""GPU power profiles from Home Assistant: the selects, the action and the presence routine all
set them here, so a refusal reads the same whichever way the user went."""

from __future__ import annotations

from typing import Final

from homeassistant.core import (
    Context,
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv, service
import probatio

from hydra_core.client import HydraApiError, HydraError
from hydra_core.models import POWER_PROFILES, PowerStatus

from .const import DOMAIN
from .coordinator import HydraConfigEntry, HydraPowerCoordinator
from .entity import async_actor, refusal_error

SERVICE_SET_POWER_PROFILE: Final = "set_power_profile"
ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_PROFILE: Final = "profile"
ATTR_LIMIT: Final = "limit"
ATTR_GPU: Final = "gpu"

# What the worker refuses because of what the user asked, by its error code.
_USER_MISTAKES = frozenset({"invalid_profile", "power_limit_out_of_range", "gpu_not_found"})
# What the worker cannot do however it is asked, by its error code.
_WORKER_REFUSALS = frozenset({"power_not_permitted", "power_unavailable"})

SET_POWER_PROFILE_SCHEMA: Final = probatio.All(
    probatio.Schema(
        {
            probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
            probatio.Exclusive(ATTR_PROFILE, "power"): probatio.In(POWER_PROFILES),
            probatio.Exclusive(ATTR_LIMIT, "power"): probatio.All(
                probatio.Coerce(float), probatio.Range(min=1)
            ),
            probatio.Optional(ATTR_GPU): probatio.All(
                cv.ensure_list, [cv.positive_int], probatio.Length(min=1)
            ),
        }
    ),
    cv.has_at_least_one_key(ATTR_PROFILE, ATTR_LIMIT),
)


def power_error(coordinator: HydraPowerCoordinator, err: HydraError) -> HomeAssistantError:
    """The user's mistake (ServiceValidationError), or what keeps the worker from doing it."""
    return refusal_error(
        coordinator,
        err,
        mistakes=_USER_MISTAKES,
        own=_WORKER_REFUSALS,
        failed_key="power_request_failed",
    )


async def async_set_power(
    coordinator: HydraPowerCoordinator,
    context: Context | None,
    *,
    profile: str | None = None,
    limit_w: float | None = None,
    gpus: list[int] | None = None,
) -> PowerStatus:
    """Set a profile (eco, balanced, full) or a limit in watts on some GPUs (default: all), on
    behalf of the user or automation of ``context``; show the outcome at once."""
    actor = await async_actor(coordinator.hass, context)
    try:
        status = await coordinator.client.async_set_power(
            actor=actor, profile=profile, limit_w=limit_w, gpus=gpus
        )
    except HydraError as err:
        if isinstance(err, HydraApiError) and err.code == "power_not_permitted":
            # The worker kept the choice and records the refusal: show it (and its repair).
            await coordinator.async_request_refresh()
        raise power_error(coordinator, err) from err
    coordinator.async_set_updated_data(status)
    return status


def _power(call: ServiceCall) -> HydraPowerCoordinator:
    """The power of the worker the call names (or the only worker)."""
    entry: HydraConfigEntry = service.async_get_config_entry(
        call.hass, DOMAIN, call.data.get(ATTR_CONFIG_ENTRY_ID)
    )
    if (power := entry.runtime_data.power) is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="power_disabled",
            translation_placeholders={"worker": entry.title},
        )
    return power


async def _async_set_power_profile(call: ServiceCall) -> ServiceResponse:
    status = await async_set_power(
        _power(call),
        call.context,
        profile=call.data.get(ATTR_PROFILE),
        limit_w=call.data.get(ATTR_LIMIT),
        gpus=call.data.get(ATTR_GPU),
    )
    return {
        "gpus": [
            {
                "index": gpu.index,
                "name": gpu.name,
                "profile": gpu.profile,
                "target_w": gpu.target_w,
                "enforced_w": gpu.enforced_w,
                "error": gpu.error,
            }
            for gpu in status.gpus
        ]
    }


@callback
def async_setup_power_services(hass: HomeAssistant) -> None:
    """Register the power profile action."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_SET_POWER_PROFILE,
        _async_set_power_profile,
        schema=SET_POWER_PROFILE_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
