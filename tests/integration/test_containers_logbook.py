"""Container actions in the logbook of the container's device."""

from __future__ import annotations

from homeassistant.components.recorder import Recorder
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.hydra.const import DOMAIN, EVENT_CONTAINER_ACTION
from custom_components.hydra.logbook import describe_action
from tests.podman import PodmanEngine

from .conftest import WORKER_ID, setup_entry, wait_until


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None, socket_enabled: None
) -> None:
    """As in conftest, with the recorder (the logbook reads it) set up before Home Assistant."""


async def test_actions_show_in_the_device_logbook(
    hass: HomeAssistant,
    podman: PodmanEngine,
    containers_entry: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    hass_admin_user: MockUser,
) -> None:
    """A restart and a refused restart, each on its own container's logbook, in words."""
    assert await async_setup_component(hass, "logbook", {})
    podman.run("web", init=True)
    podman.run("vault", init=True)
    await setup_entry(hass, containers_entry, "web", "vault")
    start = dt_util.utcnow()
    fired: list[str] = []
    hass.bus.async_listen(EVENT_CONTAINER_ACTION, lambda event: fired.append(event.data["action"]))

    await hass.services.async_call(
        "button",
        "press",
        {ATTR_ENTITY_ID: "button.web_restart"},
        blocking=True,
        context=Context(user_id=hass_admin_user.id),
    )
    # Protected since Home Assistant last heard (a protected container has no restart button).
    podman.recreate("vault", init=True, labels={"hydra.protected": "true"})
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            "button", "press", {ATTR_ENTITY_ID: "button.vault_restart"}, blocking=True
        )
    await wait_until(lambda: len(fired) == 2)
    await async_wait_recording_done(hass)

    client = await hass_ws_client(hass)
    for name, expected in (
        ("web", f"restarted by {hass_admin_user.name}"),
        ("vault", "restart refused: protected (asked by an automation)"),
    ):
        device = dr.async_get(hass).async_get_device_by_identifier(
            (DOMAIN, f"{WORKER_ID}_container_{name}"), containers_entry.entry_id
        )
        await client.send_json_auto_id(
            {
                "type": "logbook/get_events",
                "start_time": start.isoformat(),
                "device_ids": [device.id],
            }
        )
        response = await client.receive_json()
        assert response["success"]
        entries = [entry for entry in response["result"] if entry.get("domain") == DOMAIN]
        assert [(entry["name"], entry["message"]) for entry in entries] == [(name, expected)]


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (
            {
                "action": "restart",
                "result": "ok",
                "actor_type": "self_heal",
                "actor_name": "Self-healing",
                "reason": "unhealthy for 3 consecutive checks",
            },
            "restarted by self-healing: unhealthy for 3 consecutive checks",
        ),
        (
            {
                "action": "restart",
                "result": "refused",
                "actor_type": "self_heal",
                "reason": "restart budget spent: 3 restarts in the last hour",
            },
            "restart refused: restart budget spent: 3 restarts in the last hour "
            "(asked by self-healing)",
        ),
        (
            {"action": "stop", "result": "ok", "actor_type": "automation", "actor_name": "Night"},
            "stopped by automation Night",
        ),
        (
            {
                "action": "start",
                "result": "failed",
                "actor_type": "api",
                "actor_name": None,
                "detail": "Engine error 500: no such file",
            },
            "start failed: Engine error 500: no such file (asked by the worker API)",
        ),
        (
            {"action": "stop", "result": "ok", "actor_type": "user", "actor_name": None},
            "stopped by a user",
        ),
    ],
)
def test_logbook_lines(data: dict[str, str | None], line: str) -> None:
    """Every kind of actor and result reads as a sentence."""
    assert describe_action(data) == line
