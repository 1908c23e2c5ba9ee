"""The interface every GPU probe implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

from .models import GpuReport


class PowerLimitError(Exception):
    """A GPU's power limit could not be set; ``code`` says why for machines, the text for people.

    Codes: ``not_permitted`` (the driver wants root or SYS_ADMIN), ``not_supported`` (the card
    or backend has no settable limit), ``out_of_range``, ``failed`` (the GPU is gone, the driver
    failed).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class GpuProbe(ABC):
    """Reads every GPU of the host.

    The blocking methods (``start``, ``read``, ``set_power_limit``, ``close``) run on one
    dedicated thread, so driver calls never block the event loop and never run concurrently;
    concurrent ``async_read`` callers share the read already in flight instead of queueing
    another.
    """

    backend: ClassVar[str]

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"gpu-{self.backend}")
        self._inflight: asyncio.Future[GpuReport] | None = None

    def start(self) -> None:  # noqa: B027 - most probes need no set-up
        """Initialise the driver once. Never raises: failures show up in ``read``."""

    @abstractmethod
    def read(self) -> GpuReport:
        """Return the current state of every GPU. Never raises."""

    def close(self) -> None:  # noqa: B027 - most probes hold nothing
        """Release the driver."""

    def set_power_limit(self, index: int, uuid: str, watts: float) -> None:
        """Set the power limit of the GPU at ``index`` (which must still be ``uuid``).

        Raises ``PowerLimitError``; this backend cannot set limits at all.
        """
        raise PowerLimitError(
            "not_supported", f"The {self.backend} GPU backend cannot set power limits"
        )

    async def async_start(self) -> None:
        """Run ``start`` on the probe's thread."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self.start)

    async def async_read(self) -> GpuReport:
        """Run ``read`` on the probe's thread, sharing a read already in flight."""
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(
                asyncio.get_running_loop().run_in_executor(self._executor, self.read)
            )
            self._inflight.add_done_callback(self._clear_inflight)
        return await asyncio.shield(self._inflight)

    def _clear_inflight(self, _future: asyncio.Future[GpuReport]) -> None:
        self._inflight = None

    async def async_set_power_limit(self, index: int, uuid: str, watts: float) -> None:
        """Run ``set_power_limit`` on the probe's thread."""
        await asyncio.get_running_loop().run_in_executor(
            self._executor, self.set_power_limit, index, uuid, watts
        )

    async def async_close(self) -> None:
        """Run ``close`` on the probe's thread, then stop the thread."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self.close)
        self._executor.shutdown(wait=True)


class NoGpuProbe(GpuProbe):
    """For workers told not to look for GPUs at all."""

    backend = "none"

    def read(self) -> GpuReport:
        """Report that GPU monitoring is switched off."""
        return GpuReport(backend=self.backend, available=False, reason="GPU monitoring is disabled")
