"""The shipped blueprints, imported into a real Home Assistant as a user would (copied into
``blueprints/automation/hydra/``), drive the worker through Hydra's actions: the home zone
emptying puts the GPUs in eco mode, someone entering restores them, the sleep switch turns
them up for the night."""

from __future__ import annotations

from pathlib import Path
import shutil
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import async_capture_events

from custom_components.hydra.const import EVENT_RESEARCH_FINISHED
from hydra_core.scheduler.client import TasksClient
from tests.fake_nvml import FakeNvml

from .conftest import RoutineWorker, wait_until
from .test_routine import TOPIC, WATTS, _setup

BLUEPRINTS = Path(__file__).parents[2] / "blueprints" / "automation" / "hydra"


def _limits(nvml: FakeNvml) -> list[float]:
    return [gpu.limit_mw / WATTS for gpu in nvml.gpus]


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A configuration folder with the blueprints copied in, as a user installs them."""
    config = tmp_path / "config"
    shutil.copytree(BLUEPRINTS, config / "blueprints" / "automation" / "hydra")
    return config


async def _automations(hass: HomeAssistant, config_dir: Path, *uses: dict[str, Any]) -> None:
    """Make one automation of each use of a blueprint from ``config_dir``."""
    hass.config.config_dir = str(config_dir)
    automations = [
        {"id": str(number), "alias": f"Hydra {number}", "use_blueprint": use}
        for number, use in enumerate(uses)
    ]
    assert await async_setup_component(hass, "automation", {"automation": automations})
    await hass.async_block_till_done()
    for number in range(len(uses)):
        state = hass.states.get(f"automation.hydra_{number}")
        assert state is not None
        assert state.state == "on", state


async def test_blueprints_leave_arrive_and_bedtime(
    hass: HomeAssistant, routine_worker: RoutineWorker, nvml: FakeNvml, config_dir: Path
) -> None:
    """The three blueprints, each instantiated once, steer the worker."""
    hass.states.async_set("device_tracker.alice_phone", "home", {"source_type": "gps"})
    hass.states.async_set("input_boolean.sleeping", "off")
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(
        hass,
        "person",
        {
            "person": [
                {"id": "alice", "name": "Alice", "device_trackers": ["device_tracker.alice_phone"]}
            ]
        },
    )
    assert await async_setup_component(hass, "zone", {})
    await hass.async_block_till_done()
    assert hass.states.get("zone.home").state == "1"
    entry = await _setup(hass, routine_worker, {})
    worker = {"worker": entry.entry_id}
    await _automations(
        hass,
        config_dir,
        {
            "path": "hydra/leave_home.yaml",
            "input": {**worker, "delay": {"seconds": 0}, "topics": [TOPIC]},
        },
        {"path": "hydra/arrive_home.yaml", "input": worker},
        {
            "path": "hydra/bedtime.yaml",
            "input": {**worker, "sleep_entities": ["input_boolean.sleeping"]},
        },
    )

    finished = async_capture_events(hass, EVENT_RESEARCH_FINISHED)
    hass.states.async_set("device_tracker.alice_phone", "not_home", {"source_type": "gps"})
    await wait_until(lambda: _limits(nvml) == [270, 270])
    # The worker's own research ran on the topic.
    await wait_until(lambda: [event.data["topic"] for event in finished] == [TOPIC], within=30)

    hass.states.async_set("device_tracker.alice_phone", "home", {"source_type": "gps"})
    await wait_until(lambda: _limits(nvml) == [450, 450])

    await TasksClient(entry.runtime_data.client).async_update_scheduler(paused=True)
    hass.states.async_set("input_boolean.sleeping", "on")
    await wait_until(lambda: not entry.runtime_data.parts["tasks"].data.scheduler.settings.paused)
    # Switched off, the automations drop their triggers (the bedtime timer among them).
    await hass.services.async_call("automation", "turn_off", {"entity_id": "all"}, blocking=True)


@pytest.mark.parametrize("blueprint", sorted(path.name for path in BLUEPRINTS.glob("*.yaml")))
async def test_blueprints_load_with_their_defaults(
    hass: HomeAssistant, blueprint: str, config_dir: Path
) -> None:
    """Each blueprint is valid as shipped: only the worker needs choosing."""
    hass.config.config_dir = str(config_dir)
    assert await async_setup_component(hass, "automation", {})
    domain_blueprints = hass.data["blueprint"]["automation"]
    loaded = await domain_blueprints.async_get_blueprint(f"hydra/{blueprint}")
    assert loaded.metadata["domain"] == "automation"
    required = [name for name, spec in loaded.inputs.items() if "default" not in (spec or {})]
    assert required == ["worker"]
