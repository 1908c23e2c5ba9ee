"""The worker's voice settings from Home Assistant: one request per change, errors translated."""

from __future__ import annotations

from typing import Any

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from hydra_core.client import HydraApiError, HydraError

from .const import DOMAIN
from .coordinator import HydraVoiceCoordinator
from .entity import request_error


async def async_update_voice(coordinator: HydraVoiceCoordinator, **changes: Any) -> None:
    """Change voice settings on the worker and show the result at once."""
    try:
        status = await coordinator.client.async_update_voice(**changes)
    except HydraError as err:
        raise _voice_error(coordinator, err) from err
    coordinator.async_set_updated_data(status)


def _voice_error(coordinator: HydraVoiceCoordinator, err: HydraError) -> HomeAssistantError:
    def refused(api: HydraApiError) -> HomeAssistantError | None:
        if api.code != "invalid_setting":
            return None
        return ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_voice_setting",
            translation_placeholders={"error": api.message},
        )

    return request_error(coordinator, err, refused)
