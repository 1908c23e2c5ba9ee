"""A state file the worker had to set aside reaches the user as a repair."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hydra.const import DOMAIN

from .conftest import TaskWorker


async def test_a_set_aside_settings_file_raises_a_repair_until_it_is_dealt_with(
    hass: HomeAssistant,
    task_worker: TaskWorker,
    tasks_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    settings = task_worker.data_dir / "scheduler.json"
    settings.write_text('{"max_concurrent": "lots"}')
    await task_worker.restart()

    tasks_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(tasks_entry.entry_id)
    await hass.async_block_till_done()

    assert tasks_entry.state is ConfigEntryState.LOADED
    issue = issue_registry.async_get_issue(DOMAIN, f"state_set_aside_{tasks_entry.entry_id}")
    assert issue is not None
    assert issue.translation_key == "state_set_aside"
    [moved] = task_worker.data_dir.glob("scheduler.json.corrupt-*")
    assert issue.translation_placeholders == {
        "worker": "gpubox",
        "files": f"- `{settings}`, kept as `{moved.name}`: max_concurrent: Input should be a"
        " valid integer",
    }

    # Once the user has looked at it and removed it, the repair goes.
    moved.unlink()
    await tasks_entry.runtime_data.status.async_refresh()
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, f"state_set_aside_{tasks_entry.entry_id}") is None
