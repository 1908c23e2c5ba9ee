"""Coordinators: the worker's status (polled), and the base of every part's coordinator (pushed by
the event stream, polled to fill gaps)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from datetime import timedelta
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, override

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from hydra_core.client import HydraAuthError, HydraCertificateError, HydraClient, HydraError
from hydra_core.gpu.models import GpuInfo
from hydra_core.models import WorkerEvent, WorkerStatus

from .const import CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL, DOMAIN, LOGGER

if TYPE_CHECKING:
    from .data import HydraConfigEntry


def raise_update_failed(err: HydraError) -> NoReturn:
    """Turn a client error into what a coordinator raises: a refused token or certificate asks
    the user (re-authentication), anything else is retried."""
    if isinstance(err, HydraAuthError):
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key="invalid_auth"
        ) from err
    if isinstance(err, HydraCertificateError):
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN,
            translation_key="certificate_changed",
            translation_placeholders={"error": str(err)},
        ) from err
    raise UpdateFailed(
        translation_domain=DOMAIN,
        translation_key="cannot_connect",
        translation_placeholders={"error": str(err)},
    ) from err


def show_issue(
    hass: HomeAssistant,
    issue_id: str,
    translation_key: str,
    placeholders: dict[str, str],
    severity: ir.IssueSeverity = ir.IssueSeverity.ERROR,
) -> None:
    """Raise (or update) one of Hydra's repairs issues, which the user fixes outside Hydra."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=False,
        severity=severity,
        translation_key=translation_key,
        translation_placeholders=placeholders,
    )


class HydraCoordinator[T](DataUpdateCoordinator[T]):
    """A coordinator of one worker: what every Hydra entity and request goes through."""

    config_entry: HydraConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HydraConfigEntry,
        client: HydraClient,
        name: str,
        interval: timedelta,
    ) -> None:
        """Set up the coordinator for one worker."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {name} {entry.title}",
            update_interval=interval,
        )
        self.client = client


class HydraStatusCoordinator(HydraCoordinator[WorkerStatus]):
    """Polls ``/api/v1/status`` at the interval chosen in the options (30 s by default)."""

    def __init__(self, hass: HomeAssistant, entry: HydraConfigEntry, client: HydraClient) -> None:
        """Set up the coordinator for one worker."""
        seconds = entry.options.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL.total_seconds())
        super().__init__(hass, entry, client, "status", timedelta(seconds=seconds))
        self.gpus: dict[str, GpuInfo] = {}

    @override
    async def _async_update_data(self) -> WorkerStatus:
        try:
            status = await self.client.async_status()
        except HydraError as err:
            raise_update_failed(err)
        self.gpus = status.gpu_by_uuid()
        self._update_no_gpu_issue(status)
        self._update_set_aside_issue(status)
        return status

    def _update_no_gpu_issue(self, status: WorkerStatus) -> None:
        """Tell the user, through a repairs issue, when a worker that should see GPUs sees none."""
        issue_id = f"no_gpu_{self.config_entry.entry_id}"
        if status.gpu.available or status.gpu.backend == "none":
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        show_issue(
            self.hass,
            issue_id,
            "no_gpu",
            {
                "worker": status.worker.name,
                "reason": status.gpu.reason or "unknown",
            },
            severity=ir.IssueSeverity.WARNING,
        )

    def _update_set_aside_issue(self, status: WorkerStatus) -> None:
        """Tell the user which state files the worker found damaged and started without."""
        issue_id = f"state_set_aside_{self.config_entry.entry_id}"
        if not status.set_aside:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        files = "\n".join(
            f"- `{item.path}`, kept as `{PurePath(item.moved_to).name}`: {item.reason}"
            for item in status.set_aside
        )
        show_issue(
            self.hass, issue_id, "state_set_aside", {"worker": status.worker.name, "files": files}
        )


class HydraPartCoordinator[T, A](HydraCoordinator[T]):
    """One part of the worker (containers, tasks, voice, power, quality): pushed by the event
    stream, polled to fill gaps.

    ``part`` names the part (its key in the registry and in ``HydraData.parts``); ``disabled``
    is the worker's error code for a worker without it, which the actions also raise;
    ``api_type`` makes ``api``, the part's calls on the worker.
    """

    part: ClassVar[str]
    disabled: ClassVar[str]
    interval: ClassVar[timedelta]
    api_type: Callable[[HydraClient], A]

    def __init__(
        self, hass: HomeAssistant, entry: HydraConfigEntry, client: HydraClient, worker_id: str
    ) -> None:
        """Set up the coordinator for one worker."""
        super().__init__(hass, entry, client, self.part, self.interval)
        self.api = self.api_type(client)
        self.worker_id = worker_id
        # Set by the event stream; while it is down, actions ask for a poll to show their effect.
        self.pushed = False

    @abstractmethod
    async def async_fetch(self) -> T:
        """Read the part from the worker (raises the client's errors)."""

    @override
    async def _async_update_data(self) -> T:
        try:
            return await self.async_fetch()
        except HydraError as err:
            raise_update_failed(err)

    async def async_start(self) -> None:
        """Called once the first data is in, before the platforms are set up."""

    @abstractmethod
    async def async_handle_event(self, event: WorkerEvent) -> None:
        """Take a pushed event of one of the types the part's registry entry lists."""

    async def async_stream_live(self, hello: WorkerEvent, *, reconnected: bool) -> None:
        """The event stream (re)connected and everything was read again: catch up on what the
        stream could not tell meanwhile."""

    def diagnostics(self) -> dict[str, Any]:
        """What the part adds to the entry's diagnostics."""
        return {"last_update_success": self.last_update_success}

    def device_identifiers(self) -> set[str]:
        """The identifiers of the devices the part has now (they cannot be deleted)."""
        return set()

    def forget_device(self, device: dr.DeviceEntry) -> None:
        """The user deleted a device of the part that the worker no longer reports."""
