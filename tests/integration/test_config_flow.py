"""Every path of the config flow, against a real worker on loopback."""

from __future__ import annotations

from unittest.mock import patch

from homeassistant.config_entries import SOURCE_HASSIO, SOURCE_USER
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hydra.const import CONF_SCAN_INTERVAL, DOMAIN
from hydra_core.models import WorkerInfo

from .conftest import WORKER_ID, LoopbackWorker

CLOSED_PORT_URL = "http://127.0.0.1:9"  # discard port: nothing listens on loopback


def _discovery(url: str, token: str) -> HassioServiceInfo:
    return HassioServiceInfo(
        config={CONF_URL: url, CONF_TOKEN: token},
        name="Hydra worker",
        slug="hydra",
        uuid="0123456789abcdef0123456789abcdef",
    )


async def _start_user(hass: HomeAssistant) -> str:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    return result["flow_id"]


async def test_user_flow(hass: HomeAssistant, worker: LoopbackWorker) -> None:
    """URL and token of a running worker make an entry named after the worker."""
    flow_id = await _start_user(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: f"{worker.url}/", CONF_TOKEN: f" {worker.token} "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "gpubox"
    assert result["data"] == {CONF_URL: worker.url, CONF_TOKEN: worker.token}
    assert result["result"].unique_id == WORKER_ID


@pytest.mark.parametrize(
    ("url", "token", "errors"),
    [
        ("not a url", "x" * 20, {CONF_URL: "invalid_url"}),
        ("ftp://127.0.0.1/", "x" * 20, {CONF_URL: "invalid_url"}),
        ("http://[::1", "x" * 20, {CONF_URL: "invalid_url"}),
        (CLOSED_PORT_URL, "x" * 20, {CONF_URL: "cannot_connect"}),
        (None, "wrong-token-wrong-token", {CONF_TOKEN: "invalid_auth"}),
    ],
)
async def test_user_flow_errors_then_recover(
    hass: HomeAssistant,
    worker: LoopbackWorker,
    url: str | None,
    token: str,
    errors: dict[str, str],
) -> None:
    """A mistake shows on the form, keeps what was typed, and can be corrected."""
    flow_id = await _start_user(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: url or worker.url, CONF_TOKEN: token}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors

    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: worker.url, CONF_TOKEN: worker.token}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_user_flow_unexpected_error(hass: HomeAssistant, worker: LoopbackWorker) -> None:
    """A bug shows as 'unknown error', not a crash."""
    flow_id = await _start_user(hass)
    with patch(
        "custom_components.hydra.config_flow.HydraClient.async_status",
        side_effect=RuntimeError("boom"),
    ):
        result = await hass.config_entries.flow.async_configure(
            flow_id, {CONF_URL: worker.url, CONF_TOKEN: worker.token}
        )
    assert result["errors"] == {"base": "unknown"}


async def test_user_flow_same_worker_twice(
    hass: HomeAssistant, worker: LoopbackWorker, config_entry: MockConfigEntry
) -> None:
    """The same worker cannot be added twice."""
    config_entry.add_to_hass(hass)
    flow_id = await _start_user(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: worker.url, CONF_TOKEN: worker.token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_hassio_discovery(hass: HomeAssistant, worker: LoopbackWorker) -> None:
    """The add-on announces its worker; one click adds it."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=_discovery(worker.url, worker.token)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "hassio_confirm"
    assert result["description_placeholders"] == {"addon": "Hydra worker"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "gpubox"
    assert result["data"] == {CONF_URL: worker.url, CONF_TOKEN: worker.token}
    assert result["result"].unique_id == WORKER_ID


async def test_hassio_discovery_worker_gone_before_confirm(
    hass: HomeAssistant, worker: LoopbackWorker
) -> None:
    """If the add-on stops before the user confirms, the form says so and can be retried."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=_discovery(worker.url, worker.token)
    )
    await worker.stop()
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    await worker.start()
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_hassio_discovery_updates_existing_entry(
    hass: HomeAssistant, worker: LoopbackWorker
) -> None:
    """An add-on that got a new token or address updates the entry instead of duplicating it."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=WORKER_ID,
        data={CONF_URL: "http://127.0.0.1:1", CONF_TOKEN: "old-token-old-token"},
    )
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=_discovery(worker.url, worker.token)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data == {CONF_URL: worker.url, CONF_TOKEN: worker.token}


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({CONF_URL: "http://127.0.0.1:8741"}, "invalid_discovery_info"),
        ({CONF_URL: "bogus", CONF_TOKEN: "t" * 20}, "invalid_discovery_info"),
        ({CONF_URL: CLOSED_PORT_URL, CONF_TOKEN: "t" * 20}, "cannot_connect"),
    ],
)
async def test_hassio_discovery_aborts(
    hass: HomeAssistant, config: dict[str, str], reason: str
) -> None:
    """Incomplete or unreachable announcements end the flow with the reason."""
    info = HassioServiceInfo(config=config, name="Hydra worker", slug="hydra", uuid="abc")
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=info
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == reason


async def test_reauth(
    hass: HomeAssistant, worker: LoopbackWorker, config_entry: MockConfigEntry
) -> None:
    """A new token fixes an entry the worker stopped accepting."""
    config_entry.add_to_hass(hass)
    result = await config_entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    assert result["description_placeholders"] == {"name": "gpubox", "url": worker.url}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: "still-the-wrong-token"}
    )
    assert result["errors"] == {CONF_TOKEN: "invalid_auth"}

    await worker.stop()
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: worker.token}
    )
    assert result["errors"] == {"base": "cannot_connect"}

    await worker.restart(token="a-brand-new-token-after-rotation")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: worker.token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert config_entry.data[CONF_TOKEN] == "a-brand-new-token-after-rotation"


async def test_reauth_other_worker(
    hass: HomeAssistant, worker: LoopbackWorker, config_entry: MockConfigEntry
) -> None:
    """A token that works because another worker now answers at that address is refused."""
    config_entry.add_to_hass(hass)
    result = await config_entry.start_reauth_flow(hass)
    await worker.restart(info=WorkerInfo(worker_id="someone-else", name="other", version="0.1.0"))
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: worker.token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_worker"


async def test_reconfigure(
    hass: HomeAssistant, worker: LoopbackWorker, config_entry: MockConfigEntry
) -> None:
    """The worker moved to a new address: reconfigure points the entry there."""
    config_entry.add_to_hass(hass)
    old_url = worker.url
    await worker.restart(port=0)
    assert worker.url != old_url

    result = await config_entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: old_url, CONF_TOKEN: worker.token}
    )
    assert result["errors"] == {CONF_URL: "cannot_connect"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: worker.url, CONF_TOKEN: worker.token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert config_entry.data[CONF_URL] == worker.url


async def test_reconfigure_other_worker(
    hass: HomeAssistant, worker: LoopbackWorker, config_entry: MockConfigEntry
) -> None:
    """Pointing an entry at a different worker is refused: add that one as its own entry."""
    config_entry.add_to_hass(hass)
    await worker.restart(info=WorkerInfo(worker_id="someone-else", name="other", version="0.1.0"))
    result = await config_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: worker.url, CONF_TOKEN: worker.token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_worker"


async def test_options_flow(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    """The update interval is an option, applied after the automatic reload."""
    coordinator = init_integration.runtime_data.status
    assert coordinator.update_interval.total_seconds() == 30
    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_SCAN_INTERVAL: 10}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert init_integration.options[CONF_SCAN_INTERVAL] == 10
    # The routine's sections, left closed, keep their defaults: nothing runs by itself.
    assert init_integration.options["presence"]["persons"] == []
    assert init_integration.options["bedtime"]["bedtime_enabled"] is False
    assert init_integration.options["briefing"]["briefing_enabled"] is False
    assert init_integration.runtime_data.status.update_interval.total_seconds() == 10
