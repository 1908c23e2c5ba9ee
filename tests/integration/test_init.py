"""Setting up, failing, recovering and unloading the integration."""

from __future__ import annotations

from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import CONF_TOKEN, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.hydra.const import DOMAIN
from tests.fake_nvml import FakeNvml

from .conftest import LoopbackWorker


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def test_worker_down_at_startup_retries(
    hass: HomeAssistant, worker: LoopbackWorker, config_entry: MockConfigEntry
) -> None:
    """Home Assistant keeps retrying a worker that is not up yet, then sets up by itself."""
    await worker.stop()
    await _setup(hass, config_entry)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY
    assert "Cannot reach the Hydra worker" in config_entry.reason

    await worker.start()
    await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED


async def test_rejected_token_asks_for_a_new_one(
    hass: HomeAssistant, worker: LoopbackWorker, config_entry: MockConfigEntry
) -> None:
    """A token the worker refuses stops the entry and starts re-authentication."""
    await worker.restart(token="rotated-token-rotated-token")
    await _setup(hass, config_entry)
    assert config_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]


async def test_token_revoked_while_running(
    hass: HomeAssistant, init_integration: MockConfigEntry, worker: LoopbackWorker
) -> None:
    """If the worker's token changes while running, the user is asked for the new one."""
    await worker.restart(token="rotated-token-rotated-token")
    await init_integration.runtime_data.status.async_refresh()
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    assert hass.states.get("sensor.gpubox_gpu_0_temperature").state == STATE_UNAVAILABLE


async def test_unload(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    """Unloading removes the entities' live state and stops polling."""
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.NOT_LOADED
    assert hass.states.get("sensor.gpubox_gpu_0_temperature").state == STATE_UNAVAILABLE


async def test_no_gpu_raises_and_clears_a_repair_issue(
    hass: HomeAssistant,
    nvml: FakeNvml,
    worker: LoopbackWorker,
    config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A worker that sees no GPU says why in Repairs; the issue goes when the GPUs return."""
    gpus, nvml.gpus = nvml.gpus, []
    await _setup(hass, config_entry)
    assert config_entry.state is ConfigEntryState.LOADED
    issue = issue_registry.async_get_issue(DOMAIN, f"no_gpu_{config_entry.entry_id}")
    assert issue is not None
    assert issue.translation_placeholders == {
        "worker": "gpubox",
        "reason": "NVML found no NVIDIA GPU",
    }
    assert hass.states.get("sensor.gpubox_gpus").state == "0"

    nvml.gpus = gpus
    await config_entry.runtime_data.status.async_refresh()
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, f"no_gpu_{config_entry.entry_id}") is None
    assert hass.states.get("sensor.gpubox_gpu_0_temperature").state == "61.0"


async def test_diagnostics_redact_the_token(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    worker: LoopbackWorker,
) -> None:
    """Diagnostics carry what support needs (GPUs, driver, host) and never the token."""
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)
    assert worker.token not in str(diagnostics)
    assert diagnostics["entry"]["data"][CONF_TOKEN] == "**REDACTED**"
    assert diagnostics["entry"]["data"]["url"] == worker.url
    assert diagnostics["status"]["gpu"]["driver_version"] == "570.86.15"
    assert [gpu["name"] for gpu in diagnostics["status"]["gpu"]["gpus"]] == [
        "NVIDIA GeForce RTX 4090",
        "NVIDIA A100-SXM4-80GB",
    ]
    assert diagnostics["status"]["host"]["cpu_count"] >= 1
