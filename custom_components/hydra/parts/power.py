"""The power part: GPU power profiles. The selects, the ``hydra.set_power_profile`` action and
the presence routine all set them here, so a refusal reads the same whichever way the user went.

While a GPU cannot enforce its profile because the worker may not change power limits, Repairs
says so; the issue goes once every GPU enforces its profile again.
"""

from __future__ import annotations

from typing import Any, Final, override

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import Platform
from homeassistant.core import (
    Context,
    ServiceCall,
    ServiceResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv, issue_registry as ir
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
import probatio

from hydra_core.client import HydraApiError, HydraError
from hydra_core.gpu.models import GpuInfo
from hydra_core.models import WorkerEvent
from hydra_core.power.client import PowerClient
from hydra_core.power.models import EVENT_POWER, POWER_PROFILES, GpuPower, PowerStatus
from hydra_core.wire import dump, load

from ..actions import ATTR_CONFIG_ENTRY_ID, action_part
from ..const import DOMAIN, POWER_SCAN_INTERVAL
from ..coordinator import HydraPartCoordinator, HydraStatusCoordinator, show_issue
from ..data import HydraConfigEntry
from ..entity import (
    HydraEntity,
    HydraWorkerPartEntity,
    async_actor,
    async_add_gpu_entities,
    gpu_device_info,
)
from ..helpers import worker_error
from ..part import Part

SERVICE_SET_POWER_PROFILE: Final = "set_power_profile"
ATTR_PROFILE: Final = "profile"
ATTR_LIMIT: Final = "limit"
ATTR_GPU: Final = "gpu"

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


class HydraPowerCoordinator(HydraPartCoordinator[PowerStatus, PowerClient]):
    """The worker's GPU power profiles."""

    part = "power"
    api_type = PowerClient
    disabled = "power_disabled"
    interval = POWER_SCAN_INTERVAL

    @override
    async def async_fetch(self) -> PowerStatus:
        """The power status; a worker that cannot manage power now says why, as a status."""
        try:
            return await self.api.async_power()
        except HydraApiError as err:
            if err.code != "power_unavailable":
                raise
            return PowerStatus(available=False, reason=err.message)

    @override
    async def _async_update_data(self) -> PowerStatus:
        status = await super()._async_update_data()
        self._update_permission_issue(status)
        return status

    @callback
    @override
    def async_set_updated_data(self, data: PowerStatus) -> None:
        self._update_permission_issue(data)
        super().async_set_updated_data(data)

    @override
    async def async_handle_event(self, event: WorkerEvent) -> None:
        self.async_set_updated_data(load(PowerStatus, event.data))

    @override
    def diagnostics(self) -> dict[str, Any]:
        return {**super().diagnostics(), "status": dump(self.data)}

    def _update_permission_issue(self, status: PowerStatus) -> None:
        issue_id = f"power_not_permitted_{self.config_entry.entry_id}"
        refused = [gpu for gpu in status.gpus if gpu.error_code == "not_permitted"]
        if not refused:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        show_issue(
            self.hass,
            issue_id,
            "power_not_permitted",
            {
                "worker": self.config_entry.title,
                "error": refused[0].error or "not permitted",
            },
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
    actor = await async_actor(coordinator.hass, context, admin="power")
    try:
        status = await coordinator.api.async_set_power(
            actor=actor, profile=profile, limit_w=limit_w, gpus=gpus
        )
    except HydraError as err:
        if isinstance(err, HydraApiError) and err.code == "power_not_permitted":
            # The worker kept the choice and records the refusal: show it (and its repair).
            await coordinator.async_request_refresh()
        raise worker_error(coordinator, err, failed_key="power_request_failed") from err
    coordinator.async_set_updated_data(status)
    return status


async def _async_set_power_profile(call: ServiceCall) -> ServiceResponse:
    status = await async_set_power(
        action_part(call, HydraPowerCoordinator),
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


POWER_PROFILE = SelectEntityDescription(
    key="power_profile", translation_key="power_profile", options=list(POWER_PROFILES)
)
POWER_PROFILE_ALL = SelectEntityDescription(
    key="power_profile_all", translation_key="power_profile_all", options=list(POWER_PROFILES)
)


@callback
def async_setup_selects(
    entry: HydraConfigEntry,
    power: HydraPowerCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """A power profile per GPU (GPUs that appear later too), and one for all of them."""
    status = entry.runtime_data.status

    def selects(gpus: list[GpuInfo], first: bool) -> list[SelectEntity]:
        entities: list[SelectEntity] = [
            HydraGpuPowerSelect(power, status, gpu, POWER_PROFILE) for gpu in gpus
        ]
        if first:
            entities.append(HydraAllPowerSelect(power, POWER_PROFILE_ALL))
        return entities

    async_add_gpu_entities(entry, status, async_add_entities, selects)


class HydraPowerEntity(HydraWorkerPartEntity[HydraPowerCoordinator]):
    """The power of all the worker's GPUs together, on the worker's device."""

    @property
    @override
    def available(self) -> bool:
        return super().available and self.coordinator.data.available


class HydraGpuPowerEntity(HydraEntity[HydraPowerCoordinator]):
    """The power of one GPU, on the GPU's device, followed by its UUID."""

    def __init__(
        self,
        coordinator: HydraPowerCoordinator,
        status: HydraStatusCoordinator,
        gpu: GpuInfo,
        description: EntityDescription,
    ) -> None:
        """Attach the entity to the GPU's device (``status`` describes it)."""
        super().__init__(coordinator, description, gpu.uuid)
        self.gpu_uuid = gpu.uuid
        self._attr_device_info = gpu_device_info(status, gpu)

    @property
    def gpu_power(self) -> GpuPower | None:
        """The GPU's power state; None while the worker does not report it."""
        return next((gpu for gpu in self.coordinator.data.gpus if gpu.uuid == self.gpu_uuid), None)

    @property
    @override
    def available(self) -> bool:
        return super().available and self.gpu_power is not None


class HydraGpuPowerSelect(HydraGpuPowerEntity, SelectEntity):
    """One GPU's power profile; unknown while it runs a limit set in watts, or none was chosen."""

    @property
    @override
    def current_option(self) -> str | None:
        gpu = self.gpu_power
        return gpu.profile if gpu is not None and gpu.profile in POWER_PROFILES else None

    @override
    async def async_select_option(self, option: str) -> None:
        if (gpu := self.gpu_power) is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="gpu_not_found",
                translation_placeholders={"error": f"The worker reports no GPU {self.gpu_uuid}"},
            )
        await async_set_power(self.coordinator, self._context, profile=option, gpus=[gpu.index])


class HydraAllPowerSelect(HydraPowerEntity, SelectEntity):
    """Every GPU's power profile at once; unknown unless they all run the same profile."""

    @property
    @override
    def available(self) -> bool:
        return super().available and bool(self.coordinator.data.gpus)

    @property
    @override
    def current_option(self) -> str | None:
        profiles = {gpu.profile for gpu in self.coordinator.data.gpus}
        if len(profiles) != 1:
            return None
        (profile,) = profiles
        return profile if profile in POWER_PROFILES else None

    @override
    async def async_select_option(self, option: str) -> None:
        await async_set_power(self.coordinator, self._context, profile=option)


POWER = Part(
    coordinator=HydraPowerCoordinator,
    events=frozenset({EVENT_POWER}),
    platforms={Platform.SELECT: async_setup_selects},
    actions={SERVICE_SET_POWER_PROFILE: (_async_set_power_profile, SET_POWER_PROFILE_SCHEMA)},
)
