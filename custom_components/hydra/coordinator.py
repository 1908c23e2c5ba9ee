"""The status coordinator: polls the worker for its host and GPUs."""

from dataclasses import dataclass
from datetime import timedelta
from typing import override

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from hydra_core.client import HydraAuthError, HydraClient, HydraError
from hydra_core.models import GpuInfo, WorkerStatus

from .const import CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL, DOMAIN, LOGGER


@dataclass(slots=True)
class HydraData:
    """What a config entry holds while it is loaded."""

    client: HydraClient
    status: HydraStatusCoordinator


type HydraConfigEntry = ConfigEntry[HydraData]


class HydraStatusCoordinator(DataUpdateCoordinator[WorkerStatus]):
    """Polls ``/api/v1/status`` at the interval chosen in the options (30 s by default)."""

    config_entry: HydraConfigEntry

    def __init__(self, hass: HomeAssistant, entry: HydraConfigEntry, client: HydraClient) -> None:
        """Set up the coordinator for one worker."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} status {entry.title}",
            update_interval=timedelta(
                seconds=entry.options.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL.total_seconds())
            ),
        )
        self.client = client
        self.gpus: dict[str, GpuInfo] = {}

    @override
    async def _async_update_data(self) -> WorkerStatus:
        try:
            status = await self.client.async_status()
        except HydraAuthError as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="invalid_auth"
            ) from err
        except HydraError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="cannot_connect",
                translation_placeholders={"error": str(err)},
            ) from err
        self.gpus = status.gpu_by_uuid()
        self._update_no_gpu_issue(status)
        return status

    def _update_no_gpu_issue(self, status: WorkerStatus) -> None:
        """Tell the user, through a repairs issue, when a worker that should see GPUs sees none."""
        issue_id = f"no_gpu_{self.config_entry.entry_id}"
        if status.gpu.available or status.gpu.backend == "none":
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key="no_gpu",
            translation_placeholders={
                "worker": status.worker.name,
                "reason": status.gpu.reason or "unknown",
            },
        )
