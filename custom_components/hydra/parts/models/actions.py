"""``hydra.load_model`` loads a model on the worker's GPU, evicting idle ones when it does not
fit, and answers what was evicted; ``hydra.unload_model`` unloads one model or all of them.

Both change what every user's requests find loaded, so they take an administrator, as the
GPUs' power does.
"""

from __future__ import annotations

from typing import Any, Final

from homeassistant.core import Context, ServiceCall, ServiceResponse
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
import probatio

from hydra_core.arbiter.models import MAX_LEASE_S, MAX_TTL_S, LoadResult, UnloadResult
from hydra_core.client import HydraError

from ...actions import ENTRY_SCHEMA, Action, action_part
from ...const import DOMAIN
from ...entity import async_actor
from ...helpers import worker_error
from .coordinator import HydraModelsCoordinator

SERVICE_LOAD_MODEL: Final = "load_model"
SERVICE_UNLOAD_MODEL: Final = "unload_model"
ATTR_MODEL: Final = "model"
ATTR_TTL: Final = "ttl"
ATTR_LEASE_HOLDER: Final = "lease_holder"
ATTR_LEASE_SECONDS: Final = "lease_seconds"
ATTR_ALL: Final = "all"
ATTR_FORCE: Final = "force"

_MODEL: Final = probatio.All(cv.string, probatio.Strip, probatio.Length(min=1, max=300))
LOAD_SCHEMA: Final = ENTRY_SCHEMA.extend(
    {
        probatio.Required(ATTR_MODEL): _MODEL,
        probatio.Optional(ATTR_TTL): probatio.All(
            probatio.Coerce(float), probatio.Range(min=0, max=MAX_TTL_S)
        ),
        probatio.Inclusive(ATTR_LEASE_HOLDER, "lease"): probatio.All(
            cv.string, probatio.Length(min=1, max=200)
        ),
        probatio.Inclusive(ATTR_LEASE_SECONDS, "lease"): probatio.All(
            probatio.Coerce(float), probatio.Range(min=1, max=MAX_LEASE_S)
        ),
    }
)
UNLOAD_SCHEMA: Final = ENTRY_SCHEMA.extend(
    {
        probatio.Optional(ATTR_MODEL): _MODEL,
        probatio.Optional(ATTR_ALL, default=False): cv.boolean,
        probatio.Optional(ATTR_FORCE, default=False): cv.boolean,
    }
)


async def async_load_model(
    models: HydraModelsCoordinator,
    context: Context | None,
    model: str,
    *,
    ttl_s: float | None = None,
    lease: tuple[str, float] | None = None,
) -> LoadResult:
    """Load ``model`` on behalf of the user or automation of ``context``; show it at once."""
    actor = await async_actor(models.hass, context, admin="models")
    try:
        result = await models.api.async_load(model, actor=actor, ttl_s=ttl_s, lease=lease)
    except HydraError as err:
        raise worker_error(models, err, failed_key="models_request_failed") from err
    await models.async_refresh()  # the entities show it when the action returns
    return result


async def async_unload_model(
    models: HydraModelsCoordinator,
    context: Context | None,
    model: str | None,
    *,
    force: bool = False,
) -> UnloadResult:
    """Unload ``model`` (None: every model) on behalf of ``context``'s user or automation."""
    actor = await async_actor(models.hass, context, admin="models")
    try:
        result = await models.api.async_unload(model, actor=actor, force=force)
    except HydraError as err:
        raise worker_error(models, err, failed_key="models_request_failed") from err
    await models.async_refresh()
    return result


def load_response(result: LoadResult) -> dict[str, Any]:
    """What ``hydra.load_model`` answers."""
    return {
        "model": result.model.id,
        "already_loaded": result.already_loaded,
        "vram_bytes": result.model.vram_bytes,
        "evicted": [
            {"model": eviction.id, "vram_bytes": eviction.vram_bytes} for eviction in result.evicted
        ],
        "wait_seconds": round(result.wait_seconds, 3),
        "load_seconds": round(result.load_seconds, 3),
    }


async def _async_load(call: ServiceCall) -> ServiceResponse:
    models = action_part(call, HydraModelsCoordinator)
    lease = None
    if ATTR_LEASE_HOLDER in call.data:
        lease = (call.data[ATTR_LEASE_HOLDER], call.data[ATTR_LEASE_SECONDS])
    result = await async_load_model(
        models, call.context, call.data[ATTR_MODEL], ttl_s=call.data.get(ATTR_TTL), lease=lease
    )
    return load_response(result)


async def _async_unload(call: ServiceCall) -> ServiceResponse:
    models = action_part(call, HydraModelsCoordinator)
    model = call.data.get(ATTR_MODEL)
    if (model is None) != call.data[ATTR_ALL]:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="model_or_all")
    result = await async_unload_model(models, call.context, model, force=call.data[ATTR_FORCE])
    return {
        "unloaded": list(result.unloaded),
        "kept": [{"model": kept.id, "reason": kept.reason} for kept in result.kept],
    }


MODELS_ACTIONS: Final[dict[str, Action]] = {
    SERVICE_LOAD_MODEL: (_async_load, LOAD_SCHEMA),
    SERVICE_UNLOAD_MODEL: (_async_unload, UNLOAD_SCHEMA),
}
