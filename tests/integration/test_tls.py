"""A worker that serves HTTPS with a self-signed certificate: Home Assistant verifies it, pins
it only on the user's word (its fingerprint shown first), then reads GPUs and events over TLS,
and refuses a different certificate afterwards until the user confirms that one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
import ssl
from typing import Any
from unittest.mock import patch

from aiohttp import web
from homeassistant.config_entries import (
    SOURCE_HASSIO,
    SOURCE_REAUTH,
    SOURCE_USER,
    ConfigEntryState,
)
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hydra.const import CONF_FINGERPRINT, DOMAIN
from hydra_core.client import HydraClient
from hydra_core.models import Actor
from hydra_core.power.client import PowerClient
from hydra_core.worker.__main__ import start_site
from hydra_core.worker.config import CoreOptions
from tests.certificates import LOOPBACK, Certificate, make_certificate
from tests.fake_nvml import FakeNvml

from .conftest import (
    WORKER_ID,
    LoopbackWorker,
    PowerWorker,
    entry_for,
    wait_for_state,
    wait_until,
)
from .test_power import GPU0, choose, select_id, set_power

REFUSED_HANDSHAKE = "Error on transport creation for incoming connection"


@dataclass
class TlsWorker(PowerWorker):
    """The worker with power profiles (whose changes it pushes as events), served over HTTPS
    the way ``hydra-worker --tls-cert --tls-key`` serves."""

    certificate: Certificate = field(default_factory=lambda: Certificate(Path(), Path()))

    @property
    def url(self) -> str:
        """Where Home Assistant reaches it."""
        return f"https://{LOOPBACK}:{self.port}"

    async def start(self) -> None:
        """Serve with the worker's own TLS set-up (again on the same port after a stop)."""
        self._runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        core = CoreOptions(
            host=LOOPBACK,
            port=self.port,
            tls_cert=self.certificate.cert,
            tls_key=self.certificate.key,
        )
        await start_site(self._runner, core)
        self.port = self._runner.addresses[0][1]


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    return make_certificate(tmp_path / "tls")


@pytest.fixture
def other_certificate(tmp_path: Path) -> Certificate:
    """What a stranger on the network would present, or the worker after a new certificate."""
    return make_certificate(tmp_path / "tls", "other")


@pytest.fixture
def refused_handshakes(hass: HomeAssistant) -> None:
    """Let the worker's side of a handshake the client refused pass in the shared test loop.

    In asyncio's debug mode (Home Assistant's tests run in it) the server side of a handshake
    that the client aborts, as Home Assistant must when the certificate is not the right one,
    reaches the loop's exception handler, which fails the test. The worker process runs
    without debug mode and logs nothing for it.
    """
    loop = hass.loop
    handler = loop.get_exception_handler()
    assert handler is not None

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == REFUSED_HANDSHAKE and isinstance(
            context.get("exception"), (ConnectionResetError, ssl.SSLError)
        ):
            return
        handler(loop, context)

    loop.set_exception_handler(handle)


@pytest.fixture
async def tls_worker(
    nvml: FakeNvml, tmp_path: Path, certificate: Certificate, refused_handshakes: None
) -> AsyncIterator[TlsWorker]:
    worker = TlsWorker(nvml, data_dir=tmp_path, certificate=certificate)
    await worker.start()
    yield worker
    await worker.stop()


@pytest.fixture
def pinned(hass: HomeAssistant, tls_worker: TlsWorker, certificate: Certificate) -> MockConfigEntry:
    """The entry of the worker, its certificate pinned, in Home Assistant (not set up)."""
    entry = pinned_entry(tls_worker, certificate.fingerprint)
    entry.add_to_hass(hass)
    return entry


def pinned_entry(worker: TlsWorker, fingerprint: str) -> MockConfigEntry:
    """The entry the config flow makes once the user confirmed a certificate."""
    entry = entry_for(worker)
    return MockConfigEntry(
        domain=DOMAIN,
        title=entry.title,
        unique_id=entry.unique_id,
        data={**entry.data, CONF_FINGERPRINT: fingerprint},
    )


async def test_the_user_pins_a_self_signed_certificate_and_the_entry_works_over_tls(
    hass: HomeAssistant, tls_worker: TlsWorker, certificate: Certificate, nvml: FakeNvml
) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: tls_worker.url, CONF_TOKEN: tls_worker.token}
    )
    # Not trusted by any CA Home Assistant knows: nothing is stored before the user says so.
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "certificate"
    assert result["description_placeholders"]["fingerprint"] == certificate.fingerprint
    assert result["description_placeholders"]["url"] == tls_worker.url
    assert "not trusted" in result["description_placeholders"]["error"]
    assert not hass.config_entries.async_entries(DOMAIN)

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        CONF_URL: tls_worker.url,
        CONF_TOKEN: tls_worker.token,
        CONF_FINGERPRINT: certificate.fingerprint,
    }
    entry = result["result"]
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED

    # GPUs over HTTPS ...
    assert hass.states.get("sensor.gpubox_gpu_0_temperature").state == "61.0"
    assert hass.states.get("sensor.gpubox_gpus").state == "2"
    # ... and events over wss: a change made elsewhere arrives without a poll.
    await wait_until(lambda: entry.runtime_data.parts["power"].pushed)
    elsewhere = HydraClient(
        async_get_clientsession(hass),
        tls_worker.url,
        tls_worker.token,
        fingerprint=certificate.fingerprint,
    )
    await PowerClient(elsewhere).async_set_power(
        actor=Actor(type="api", name="cli"), profile="eco", gpus=[0]
    )
    await wait_for_state(hass, select_id(hass, f"{GPU0}_power_profile"), "eco")


async def test_a_different_certificate_is_refused_until_the_user_confirms_it(
    hass: HomeAssistant,
    tls_worker: TlsWorker,
    pinned: MockConfigEntry,
    other_certificate: Certificate,
    nvml: FakeNvml,
) -> None:
    entry = pinned
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED

    await tls_worker.restart(certificate=other_certificate)
    # An action fails with a translated error that names the problem, and changes nothing.
    with pytest.raises(HomeAssistantError) as caught:
        await set_power(hass, profile="eco", gpu=[0])
    assert caught.value.translation_key == "certificate_changed"
    assert "changed" in str(caught.value)
    assert [gpu.limit_mw for gpu in nvml.gpus] == [450_000, 450_000]

    # Re-authentication asks about the certificate, not the token.
    await wait_until(lambda: bool(hass.config_entries.flow.async_progress_by_handler(DOMAIN)))
    (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["context"]["source"] == SOURCE_REAUTH
    result = await hass.config_entries.flow.async_configure(flow["flow_id"])
    assert result["step_id"] == "certificate"
    assert result["description_placeholders"]["fingerprint"] == other_certificate.fingerprint
    result = await hass.config_entries.flow.async_configure(flow["flow_id"], {})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_FINGERPRINT] == other_certificate.fingerprint
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    await choose(hass, f"{GPU0}_power_profile", "eco")
    assert nvml.gpus[0].limit_mw == 270_000


async def test_a_pinned_entry_does_not_start_with_another_certificate(
    hass: HomeAssistant,
    tls_worker: TlsWorker,
    certificate: Certificate,
    other_certificate: Certificate,
) -> None:
    entry = pinned_entry(tls_worker, other_certificate.fingerprint)
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert "changed" in (entry.reason or "")
    (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    result = await hass.config_entries.flow.async_configure(flow["flow_id"])
    assert result["step_id"] == "certificate"
    assert result["description_placeholders"]["fingerprint"] == certificate.fingerprint
    # Nothing changed while the user has not answered.
    assert entry.data[CONF_FINGERPRINT] == other_certificate.fingerprint


async def test_reconfigure_to_a_new_address_asks_about_its_certificate(
    hass: HomeAssistant,
    worker: LoopbackWorker,
    tls_worker: TlsWorker,
    certificate: Certificate,
) -> None:
    """The worker moves from plain HTTP to HTTPS: the new certificate is confirmed, then the
    entry keeps its token and pins it."""
    entry = entry_for(worker)
    entry.add_to_hass(hass)
    tls_worker.token = worker.token
    await tls_worker.restart()
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: tls_worker.url, CONF_TOKEN: "wrong-token-wrong-token"}
    )
    assert result["step_id"] == "certificate"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    # Pinned; the token still has to be right.
    assert result["step_id"] == "reconfigure"
    assert result["errors"] == {CONF_TOKEN: "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: tls_worker.url, CONF_TOKEN: worker.token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_URL] == tls_worker.url
    assert entry.data[CONF_FINGERPRINT] == certificate.fingerprint
    # The entry reloads with what was confirmed, and works.
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def test_the_add_on_announces_its_certificate(
    hass: HomeAssistant, tls_worker: TlsWorker, certificate: Certificate
) -> None:
    """The Supervisor's word for the add-on's certificate is enough: no question to confirm."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_HASSIO},
        data=_add_on_discovery(tls_worker, certificate.fingerprint),
    )
    assert result["step_id"] == "hassio_confirm"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == WORKER_ID
    assert result["data"][CONF_FINGERPRINT] == certificate.fingerprint


def _add_on_discovery(worker: TlsWorker, fingerprint: str) -> HassioServiceInfo:
    return HassioServiceInfo(
        config={CONF_URL: worker.url, CONF_TOKEN: worker.token, CONF_FINGERPRINT: fingerprint},
        name="Hydra worker",
        slug="hydra",
        uuid="0123456789abcdef0123456789abcdef",
    )


async def test_a_certificate_changed_before_the_user_confirms_the_add_on_is_asked_about(
    hass: HomeAssistant,
    tls_worker: TlsWorker,
    certificate: Certificate,
    other_certificate: Certificate,
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_HASSIO},
        data=_add_on_discovery(tls_worker, certificate.fingerprint),
    )
    await tls_worker.restart(certificate=other_certificate)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["step_id"] == "certificate"
    assert "changed" in result["description_placeholders"]["error"]
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_FINGERPRINT] == other_certificate.fingerprint


async def test_the_add_on_announcing_a_new_certificate_updates_the_entry(
    hass: HomeAssistant,
    tls_worker: TlsWorker,
    pinned: MockConfigEntry,
    other_certificate: Certificate,
) -> None:
    entry = pinned
    await tls_worker.restart(certificate=other_certificate)
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_HASSIO},
        data=_add_on_discovery(tls_worker, other_certificate.fingerprint),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data[CONF_FINGERPRINT] == other_certificate.fingerprint


async def test_a_worker_gone_before_its_certificate_is_read_is_unreachable(
    hass: HomeAssistant, tls_worker: TlsWorker
) -> None:
    """The certificate is read on a connection of its own; a worker gone by then is the usual
    'cannot connect', and the form keeps what was typed."""
    read = HydraClient.async_certificate_fingerprint

    async def stop_then_read(client: HydraClient) -> str:
        await tls_worker.stop()
        return await read(client)

    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    with patch.object(HydraClient, "async_certificate_fingerprint", stop_then_read):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_URL: tls_worker.url, CONF_TOKEN: tls_worker.token}
        )
    assert result["step_id"] == "user"
    assert result["errors"] == {CONF_URL: "cannot_connect"}


async def test_reauth_with_a_new_token_and_a_new_certificate(
    hass: HomeAssistant,
    tls_worker: TlsWorker,
    pinned: MockConfigEntry,
    other_certificate: Certificate,
) -> None:
    entry = pinned
    await tls_worker.restart(token="a-brand-new-token-after-rotation")
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"

    await tls_worker.restart(certificate=other_certificate)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: "a-brand-new-token-after-rotation"}
    )
    assert result["step_id"] == "certificate"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_TOKEN] == "a-brand-new-token-after-rotation"
    assert entry.data[CONF_FINGERPRINT] == other_certificate.fingerprint
    # The entry reloads with what was confirmed, and works.
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
