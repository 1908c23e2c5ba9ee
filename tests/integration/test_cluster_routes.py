"""The head's routing rules in a real Home Assistant: the entry's options gain a "Cluster
routing" step for a cluster's head, saving it changes the worker's rules (the "Cluster nodes"
sensor shows them at once), a refusal of the worker is the form's error, and a task of a kind
newly routed is then placed on the cluster.

The head worker is ``test_cluster.py``'s: the real worker application with its queue, cluster
part and routing rules, whose placer is the stand-in (``tests/cluster/standin.py``): a task
"placed on the cluster" here is one the stand-in ran as hydra-compute, not a Ray task.
``tests/cluster/test_cluster.py`` moves a kind to a node on a real Ray cluster.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult, FlowResultType
from homeassistant.helpers.aiohttp_client import async_get_clientsession
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.hydra.const import CONF_SCAN_INTERVAL, DOMAIN, EVENT_TASK_SUCCEEDED
from hydra_core.client import HydraClient
from hydra_core.cluster.client import ClusterClient
from tests.fake_nvml import FakeNvml

from .conftest import entry_for, setup_entry, wait_until
from .test_cluster import NODES, ClusterWorker

ROUTES = "routes"


@pytest.fixture
async def head(nvml: FakeNvml, tmp_path: Path) -> AsyncIterator[ClusterWorker]:
    """test_cluster.py's head worker, its rules from its cluster_routes option."""
    async with ClusterWorker(nvml, data_dir=tmp_path) as worker:
        yield worker


@pytest.fixture
def head_entry(head: ClusterWorker) -> MockConfigEntry:
    return entry_for(head)


async def _routing_step(hass: HomeAssistant, entry: MockConfigEntry) -> FlowResult:
    """Open the entry's options (once a reload after options saved before is done) and pass
    the first step: the Cluster routing step."""
    await hass.async_block_till_done()
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_SCAN_INTERVAL: 10}
    )
    assert (result["type"], result["step_id"]) == (FlowResultType.FORM, "cluster_routes")
    return result


def _worker_api(hass: HomeAssistant, worker: ClusterWorker) -> ClusterClient:
    return ClusterClient(HydraClient(async_get_clientsession(hass), worker.url, worker.token))


async def test_options_change_the_rules_and_a_newly_routed_kind_is_placed(
    hass: HomeAssistant, head: ClusterWorker, head_entry: MockConfigEntry
) -> None:
    """The step shows the worker's rules; saving others sends them (the worker keeps them,
    over its option), the sensor shows them, and a maintenance task, which ran on the head
    before, is now placed on hydra-compute."""
    await setup_entry(hass, head_entry)
    placer = head.placer
    assert placer is not None
    step = await _routing_step(hass, head_entry)
    (field,) = step["data_schema"].schema
    assert field.description == {"suggested_value": "chapter_image=images\ntest=images"}

    done = await hass.config_entries.options.async_configure(
        step["flow_id"], {ROUTES: "test=images\n\nmaintenance=images\n"}
    )
    assert done["type"] is FlowResultType.CREATE_ENTRY
    assert head_entry.options[CONF_SCAN_INTERVAL] == 10
    kept = await _worker_api(hass, head).async_routes()
    assert (kept.routes, kept.source) == ({"test": "images", "maintenance": "images"}, "api")
    await hass.async_block_till_done()
    assert hass.states.get(NODES).attributes["routes"] == {
        "test": "images",
        "maintenance": "images",
    }

    succeeded = async_capture_events(hass, EVENT_TASK_SUCCEEDED)
    response = await hass.services.async_call(
        DOMAIN,
        "queue_task",
        {"kind": "maintenance", "payload": {"dry_run": True}},
        blocking=True,
        return_response=True,
    )
    await wait_until(lambda: bool(succeeded))
    assert succeeded[0].data["node"] == "hydra-compute"
    assert placer.placed == [(response["task_id"], "maintenance")]


async def test_a_refusal_is_the_forms_error_and_changes_nothing(
    hass: HomeAssistant, head: ClusterWorker, head_entry: MockConfigEntry
) -> None:
    """A line that is not a rule, a kind the worker does not have: the form again, with what
    is wrong, and the worker's rules as they were."""
    await setup_entry(hass, head_entry)
    step = await _routing_step(hass, head_entry)

    result = await hass.config_entries.options.async_configure(
        step["flow_id"], {ROUTES: "test images"}
    )
    assert (result["type"], result["errors"]) == (
        FlowResultType.FORM,
        {ROUTES: "invalid_route_line"},
    )
    assert result["description_placeholders"]["error"] == "test images"

    result = await hass.config_entries.options.async_configure(
        step["flow_id"], {ROUTES: "test=images\nrender=images"}
    )
    assert (result["step_id"], result["errors"]) == (
        "cluster_routes",
        {ROUTES: "unknown_route_kind"},
    )
    assert "No task kind of this worker is 'render'" in result["description_placeholders"]["error"]
    # What was typed stays in the form to be corrected.
    (field,) = result["data_schema"].schema
    assert field.description == {"suggested_value": "test=images\nrender=images"}
    kept = await _worker_api(hass, head).async_routes()
    assert (kept.routes, kept.source) == ({"chapter_image": "images", "test": "images"}, "option")
    assert hass.states.get(NODES).attributes["routes"] == {
        "chapter_image": "images",
        "test": "images",
    }

    # Corrected, it is saved.
    result = await hass.config_entries.options.async_configure(
        step["flow_id"], {ROUTES: "test=images"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert (await _worker_api(hass, head).async_routes()).routes == {"test": "images"}


async def test_a_label_no_node_has_is_saved_with_a_warning(
    hass: HomeAssistant, head: ClusterWorker, head_entry: MockConfigEntry
) -> None:
    await setup_entry(hass, head_entry)
    step = await _routing_step(hass, head_entry)
    result = await hass.config_entries.options.async_configure(
        step["flow_id"], {ROUTES: "test=gpu"}
    )
    assert (result["type"], result["step_id"]) == (FlowResultType.FORM, "cluster_routes_warning")
    assert "No node has the label 'gpu' now" in result["description_placeholders"]["warnings"]
    assert (await _worker_api(hass, head).async_routes()).routes == {"test": "gpu"}
    result = await hass.config_entries.options.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_rules_unchanged_are_not_sent(
    hass: HomeAssistant, head: ClusterWorker, head_entry: MockConfigEntry
) -> None:
    """Saving the options with the rules as they were leaves the worker on its option's; the
    same rules in another order are a change (the first that matches is used)."""
    await setup_entry(hass, head_entry)
    step = await _routing_step(hass, head_entry)
    result = await hass.config_entries.options.async_configure(
        step["flow_id"], {ROUTES: "chapter_image=images\ntest=images"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert (await _worker_api(hass, head).async_routes()).source == "option"

    step = await _routing_step(hass, head_entry)
    result = await hass.config_entries.options.async_configure(
        step["flow_id"], {ROUTES: "test=images\nmaintenance=*\n"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    step = await _routing_step(hass, head_entry)
    result = await hass.config_entries.options.async_configure(
        step["flow_id"], {ROUTES: "maintenance=*\ntest=images"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    kept = await _worker_api(hass, head).async_routes()
    assert list(kept.routes) == ["maintenance", "test"]


async def test_a_change_made_elsewhere_shows_at_once(
    hass: HomeAssistant, head: ClusterWorker, head_entry: MockConfigEntry
) -> None:
    """Rules changed through the worker's API (another Home Assistant, a script) are pushed
    over the event stream: the sensor follows without waiting for its 30 s poll."""
    await setup_entry(hass, head_entry)
    await _worker_api(hass, head).async_set_routes({"maintenance": "*"})
    await wait_until(
        lambda: hass.states.get(NODES).attributes["routes"] == {"maintenance": "*"}, within=5
    )
    await _worker_api(hass, head).async_reset_routes()
    await wait_until(
        lambda: (
            hass.states.get(NODES).attributes["routes"]
            == {"chapter_image": "images", "test": "images"}
        ),
        within=5,
    )


async def test_a_worker_gone_while_saving_is_the_forms_error(
    hass: HomeAssistant, head: ClusterWorker, head_entry: MockConfigEntry
) -> None:
    """The worker stops while the step is open: saving says it could not be reached, and
    the flow stays open to save again."""
    await setup_entry(hass, head_entry)
    step = await _routing_step(hass, head_entry)
    await head.stop()
    result = await hass.config_entries.options.async_configure(
        step["flow_id"], {ROUTES: "maintenance=images"}
    )
    assert (result["step_id"], result["errors"]) == ("cluster_routes", {ROUTES: "cannot_connect"})
    assert "127.0.0.1" in result["description_placeholders"]["error"]


async def test_no_routing_step_while_the_worker_is_unreachable(
    hass: HomeAssistant, head: ClusterWorker, head_entry: MockConfigEntry
) -> None:
    """An entry not set up (its worker down) cannot know its cluster: its options save
    without the step."""
    await head.stop()
    head_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(head_entry.entry_id)
    await hass.async_block_till_done()
    assert head_entry.state is ConfigEntryState.SETUP_RETRY
    result = await hass.config_entries.options.async_init(head_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_SCAN_INTERVAL: 10}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
