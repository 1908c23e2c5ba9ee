"""The one rule for what a failed request to the worker becomes in Home Assistant.

* The worker refused the token: re-authentication starts, and the user reads ``invalid_auth``.
* The worker's certificate is not the one trusted: re-authentication starts (it asks about the
  certificate), and the user reads ``certificate_changed``.
* The worker answered 4xx: the request was refused for what it asked, so it is the user's to
  fix (``ServiceValidationError``), translated under the worker's own error code with the
  worker's message as ``error`` (strings.json has a text for every code the worker answers).
* Anything else (5xx, no answer): the worker failed (``HomeAssistantError``), translated as
  ``failed_key`` for an answer of the worker's and as ``cannot_connect`` without one.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from hydra_core.client import HydraApiError, HydraAuthError, HydraCertificateError, HydraError

from .const import DOMAIN

if TYPE_CHECKING:
    from .coordinator import HydraCoordinator


def worker_error[T](
    coordinator: HydraCoordinator[T],
    err: HydraError,
    *,
    failed_key: str = "cannot_connect",
    **names: str,
) -> HomeAssistantError:
    """What to raise for a failed request; ``names`` (a container, an action) join the worker's
    message and name among the translation's placeholders."""
    entry = coordinator.config_entry
    if isinstance(err, HydraAuthError):
        entry.async_start_reauth(coordinator.hass)
        return HomeAssistantError(translation_domain=DOMAIN, translation_key="invalid_auth")
    if isinstance(err, HydraCertificateError):
        entry.async_start_reauth(coordinator.hass)
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="certificate_changed",
            translation_placeholders={"error": str(err)},
        )
    if not isinstance(err, HydraApiError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={"error": str(err)},
        )
    placeholders = {"error": err.message, "worker": entry.title, **names}
    if 400 <= err.status < 500:
        return ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key=err.code,
            translation_placeholders=placeholders,
        )
    if failed_key == "cannot_connect":
        placeholders["error"] = str(err)
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key=failed_key,
        translation_placeholders=placeholders,
    )


async def async_worker_request[T, R](
    coordinator: HydraCoordinator[T],
    request: Awaitable[R],
    *,
    failed_key: str = "cannot_connect",
    **names: str,
) -> R:
    """The worker's answer to ``request``, or the error the rule above says."""
    try:
        return await request
    except HydraError as err:
        raise worker_error(coordinator, err, failed_key=failed_key, **names) from err
