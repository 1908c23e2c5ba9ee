"""GPU power profiles in a real Home Assistant, against the worker on loopback and fake NVML.

The selects and the action change the cards' limits in the (fake) driver; refusals come back as
translated errors, a worker that may not set limits raises a repair that goes once it may, and
a profile survives the worker's restart and a GPU reset.
"""

from __future__ import annotations

from homeassistant.components.select import DOMAIN as SELECT_DOMAIN, SERVICE_SELECT_OPTION
from homeassistant.const import ATTR_ENTITY_ID, ATTR_OPTION, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
import probatio
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.hydra.const import DOMAIN
from tests.fake_nvml import FakeNvml

from .conftest import WORKER_ID, LoopbackWorker, PowerWorker, entry_for, setup_entry, wait_until

GPU0 = "GPU-00000000-1111-2222-3333-444455556666"
GPU1 = "GPU-00000001-1111-2222-3333-444455556666"


@pytest.fixture
async def power_entry(hass: HomeAssistant, power_worker: PowerWorker) -> MockConfigEntry:
    """Hydra set up against the worker that manages power."""
    entry = entry_for(power_worker)
    await setup_entry(hass, entry)
    return entry


def select_id(hass: HomeAssistant, unique_id: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(SELECT_DOMAIN, DOMAIN, unique_id)
    assert entity_id is not None, unique_id
    return entity_id


def limits_w(nvml: FakeNvml) -> list[float]:
    return [gpu.limit_mw / 1000 for gpu in nvml.gpus]


def state(hass: HomeAssistant, unique_id: str) -> str:
    current = hass.states.get(select_id(hass, unique_id))
    assert current is not None
    return current.state


async def choose(hass: HomeAssistant, unique_id: str, option: str) -> None:
    await hass.services.async_call(
        SELECT_DOMAIN,
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: select_id(hass, unique_id), ATTR_OPTION: option},
        blocking=True,
    )


async def set_power(hass: HomeAssistant, **data: object) -> dict:
    response = await hass.services.async_call(
        DOMAIN, "set_power_profile", data, blocking=True, return_response=True
    )
    assert response is not None
    return response


@pytest.mark.usefixtures("power_entry")
async def test_a_gpus_select_sets_its_cards_limit(hass: HomeAssistant, nvml: FakeNvml) -> None:
    entity_id = select_id(hass, f"{GPU0}_power_profile")
    assert entity_id == "select.gpubox_gpu_0_power_profile"
    assert hass.states.get(entity_id).attributes["options"] == ["eco", "balanced", "full"]
    assert state(hass, f"{GPU0}_power_profile") == STATE_UNKNOWN

    await choose(hass, f"{GPU0}_power_profile", "eco")

    assert limits_w(nvml) == [270, 450]
    assert state(hass, f"{GPU0}_power_profile") == "eco"
    assert state(hass, f"{GPU1}_power_profile") == STATE_UNKNOWN
    assert state(hass, f"{WORKER_ID}_power_profile_all") == STATE_UNKNOWN


@pytest.mark.usefixtures("power_entry")
async def test_the_workers_select_sets_every_gpu(hass: HomeAssistant, nvml: FakeNvml) -> None:
    assert select_id(hass, f"{WORKER_ID}_power_profile_all") == "select.gpubox_power_profile"

    await choose(hass, f"{WORKER_ID}_power_profile_all", "balanced")

    assert limits_w(nvml) == [360, 360]
    assert state(hass, f"{WORKER_ID}_power_profile_all") == "balanced"
    assert state(hass, f"{GPU1}_power_profile") == "balanced"

    await choose(hass, f"{GPU1}_power_profile", "full")

    assert limits_w(nvml) == [360, 450]
    assert state(hass, f"{WORKER_ID}_power_profile_all") == STATE_UNKNOWN


@pytest.mark.usefixtures("power_entry")
async def test_the_action_sets_a_profile_or_a_limit(hass: HomeAssistant, nvml: FakeNvml) -> None:
    response = await set_power(hass, profile="eco", gpu=[1])

    assert limits_w(nvml) == [450, 270]
    assert response["gpus"][1] == {
        "index": 1,
        "name": "NVIDIA A100-SXM4-80GB",
        "profile": "eco",
        "target_w": 270,
        "enforced_w": 270,
        "error": None,
    }
    assert response["gpus"][0]["profile"] is None
    assert state(hass, f"{GPU1}_power_profile") == "eco"

    response = await set_power(hass, limit=333)

    assert limits_w(nvml) == [333, 333]
    assert [gpu["profile"] for gpu in response["gpus"]] == ["custom", "custom"]
    # A limit in watts is no profile: the selects do not pretend it is one.
    assert state(hass, f"{GPU1}_power_profile") == STATE_UNKNOWN


@pytest.mark.usefixtures("power_entry")
async def test_a_limit_out_of_range_is_the_users_mistake_and_changes_nothing(
    hass: HomeAssistant, nvml: FakeNvml
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await set_power(hass, limit=700)

    assert err.value.translation_key == "power_limit_out_of_range"
    assert "150 to 600 W" in str(err.value)
    assert limits_w(nvml) == [450, 450]
    assert nvml.set_limit_calls == 0

    with pytest.raises(ServiceValidationError) as err:
        await set_power(hass, profile="eco", gpu=[0, 5])
    assert err.value.translation_key == "gpu_not_found"
    assert limits_w(nvml) == [450, 450]


async def test_not_permitted_raises_and_repairs_until_permitted(
    hass: HomeAssistant,
    power_entry: MockConfigEntry,
    nvml: FakeNvml,
    issue_registry: ir.IssueRegistry,
) -> None:
    nvml.root = False
    issue_id = f"power_not_permitted_{power_entry.entry_id}"

    with pytest.raises(HomeAssistantError) as err:
        await choose(hass, f"{GPU0}_power_profile", "eco")

    # A 4xx answer of the worker (403), so, by the one error rule, a refusal the user reads.
    assert isinstance(err.value, ServiceValidationError)
    assert err.value.translation_key == "power_not_permitted"
    assert "SYS_ADMIN" in str(err.value)
    assert limits_w(nvml) == [450, 450]
    await hass.async_block_till_done()
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "power_not_permitted"
    assert issue.translation_placeholders["worker"] == "gpubox"
    assert "root" in issue.translation_placeholders["error"]

    # The worker kept the choice and keeps trying; once it may, the repair goes by itself.
    nvml.root = True
    await wait_until(lambda: issue_registry.async_get_issue(DOMAIN, issue_id) is None)
    assert limits_w(nvml) == [270, 450]
    assert state(hass, f"{GPU0}_power_profile") == "eco"


async def test_the_profile_comes_back_after_a_worker_restart_and_a_gpu_reset(
    hass: HomeAssistant, power_entry: MockConfigEntry, power_worker: PowerWorker, nvml: FakeNvml
) -> None:
    await choose(hass, f"{WORKER_ID}_power_profile_all", "eco")

    # The host rebooted: the driver starts on the default limits, then the worker starts.
    await power_worker.stop()
    nvml.reset_gpu(0)
    nvml.reset_gpu(1)
    await power_worker.start()

    assert limits_w(nvml) == [270, 270]
    await power_entry.runtime_data.parts["power"].async_refresh()
    assert state(hass, f"{WORKER_ID}_power_profile_all") == "eco"

    nvml.reset_gpu(1)
    await wait_until(lambda: limits_w(nvml) == [270, 270])


async def test_diagnostics_show_the_power_profiles(
    hass: HomeAssistant, power_entry: MockConfigEntry, hass_client: ClientSessionGenerator
) -> None:
    await choose(hass, f"{GPU0}_power_profile", "eco")

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, power_entry)

    gpus = diagnostics["power"]["status"]["gpus"]
    assert [(gpu["profile"], gpu["target_w"]) for gpu in gpus] == [("eco", 270), (None, None)]


@pytest.mark.usefixtures("init_integration")
async def test_a_worker_without_power_management_has_no_power_entities(
    hass: HomeAssistant, worker: LoopbackWorker
) -> None:
    registry = er.async_get(hass)
    assert registry.async_get_entity_id(SELECT_DOMAIN, DOMAIN, f"{GPU0}_power_profile") is None

    with pytest.raises(ServiceValidationError) as err:
        await set_power(hass, profile="eco")
    assert err.value.translation_key == "power_disabled"


@pytest.mark.usefixtures("power_entry")
@pytest.mark.parametrize(
    "data",
    [{}, {"profile": "eco", "limit": 300}, {"profile": "turbo"}, {"limit": 0}, {"gpu": [0]}],
)
async def test_the_action_wants_one_profile_or_one_limit(
    hass: HomeAssistant, nvml: FakeNvml, data: dict
) -> None:
    with pytest.raises(probatio.Invalid):
        await set_power(hass, **data)
    assert limits_w(nvml) == [450, 450]
