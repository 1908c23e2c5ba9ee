"""Fixtures: a real Hydra worker on loopback and a real Home Assistant around the integration."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
import secrets
from typing import Any

from aiohttp import web
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hydra.const import DOMAIN
from hydra_core.gpu import NvmlProbe
from hydra_core.models import WorkerInfo
from hydra_core.worker.app import create_app
from tests.fake_nvml import FakeNvml, make_gpu

WORKER_ID = "6f1c0d7e2b9a4c55a1e3b2d4c6f8a0b1"
WORKER_NAME = "gpubox"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    enable_custom_integrations: None, socket_enabled: None
) -> Iterator[None]:
    """Let Home Assistant load custom_components/hydra, and talk to the worker on loopback.

    Home Assistant's test plugin refuses every socket by default; ``socket_enabled`` lifts that,
    while its allowed-hosts list still keeps connections on 127.0.0.1.
    """
    return


@dataclass
class LoopbackWorker:
    """The real worker application, served over HTTP on 127.0.0.1, that tests stop and start."""

    nvml: FakeNvml
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    info: WorkerInfo = field(
        default_factory=lambda: WorkerInfo(worker_id=WORKER_ID, name=WORKER_NAME, version="0.1.0")
    )
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Where Home Assistant reaches it."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Serve (again, on the same port after a stop)."""
        app = create_app(info=self.info, token=self.token, probe=NvmlProbe(self.nvml))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def restart(self, **changes: Any) -> None:
        """Stop, change (token, info, port), and serve again: a worker that was reconfigured."""
        await self.stop()
        for name, value in changes.items():
            setattr(self, name, value)
        await self.start()

    async def stop(self) -> None:
        """Stop serving, as when the worker process dies."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@pytest.fixture
def nvml() -> FakeNvml:
    """Two GPUs: an RTX 4090 and an A100 without a fan of its own."""
    return FakeNvml(
        [
            make_gpu(0),
            make_gpu(
                1,
                name="NVIDIA A100-SXM4-80GB",
                memory_total=80 * 1024**3,
                memory_used=20 * 1024**3,
                temperature=48,
                unsupported={"nvmlDeviceGetFanSpeed"},
            ),
        ]
    )


@pytest.fixture
async def worker(nvml: FakeNvml) -> AsyncIterator[LoopbackWorker]:
    """A running worker."""
    loopback = LoopbackWorker(nvml)
    await loopback.start()
    yield loopback
    await loopback.stop()


@pytest.fixture
def config_entry(worker: LoopbackWorker) -> MockConfigEntry:
    """The entry the config flow makes for the worker."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=WORKER_NAME,
        unique_id=WORKER_ID,
        data={CONF_URL: worker.url, CONF_TOKEN: worker.token},
    )


@pytest.fixture
async def init_integration(hass: HomeAssistant, config_entry: MockConfigEntry) -> MockConfigEntry:
    """Hydra set up in Home Assistant against the loopback worker."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    return config_entry
