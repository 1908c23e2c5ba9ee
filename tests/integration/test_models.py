"""The VRAM arbiter in a real Home Assistant, against the worker on loopback whose models part
drives Ollama and llama.cpp router stand-ins on a simulated 24 GB GPU.

What a user sees: a VRAM sensor per model once it was loaded, a select per LLM server showing
its loaded model (choosing one loads it), unload buttons, ``hydra.load_model`` answering what it
evicted, ``hydra.unload_model`` what it unloaded and kept, and a repair while a server is down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from homeassistant.auth.const import GROUP_ID_USER
from homeassistant.components.button import DOMAIN as BUTTON_DOMAIN, SERVICE_PRESS
from homeassistant.components.select import DOMAIN as SELECT_DOMAIN, SERVICE_SELECT_OPTION
from homeassistant.components.sensor import DOMAIN as SENSOR_DOMAIN
from homeassistant.const import ATTR_ENTITY_ID, ATTR_OPTION, STATE_UNKNOWN
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError, Unauthorized
from homeassistant.helpers import entity_registry as er, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser

from custom_components.hydra.const import DOMAIN
from custom_components.hydra.parts.models.coordinator import HydraModelsCoordinator
from hydra_core.arbiter.backend import SharedSession
from hydra_core.arbiter.llamacpp import LlamaCppBackend
from hydra_core.arbiter.llamaswap import LlamaSwapBackend
from hydra_core.arbiter.ollama import OllamaBackend
from hydra_core.arbiter.options import ModelsOptions
from hydra_core.arbiter.part import ModelsPart
from hydra_core.arbiter.service import ModelArbiter
from hydra_core.audit import AuditLog
from hydra_core.events import EventBus
from hydra_core.gpu import SimulatedProbe
from hydra_core.worker.app import create_app
from tests.fake_nvml import FakeNvml
from tests.models.standins import LlamaCppRouterStandIn, LlamaSwapStandIn, OllamaStandIn

from .conftest import WORKER_ID, LoopbackWorker, entry_for, setup_entry, wait_until


@dataclass
class ModelsWorker(LoopbackWorker):
    """The worker with its VRAM arbiter over the two stand-ins."""

    probe: SimulatedProbe = field(default_factory=lambda: SimulatedProbe(1, drift=False))
    ollama_url: str = ""
    llamacpp_url: str = ""
    llamaswap_url: str = ""

    def build_app(self) -> web.Application:
        """The worker application with the models part."""
        session = SharedSession()
        bus, audit = EventBus(), AuditLog(None)
        arbiter = ModelArbiter(
            ModelsOptions(models_reserve_gb=0.0, models_free_timeout=5.0),
            backends=[
                OllamaBackend("ollama", self.ollama_url, session),
                LlamaCppBackend("llamacpp", self.llamacpp_url, session),
                LlamaSwapBackend("llamaswap", self.llamaswap_url, session),
            ],
            probe=self.probe,
            bus=bus,
            audit=audit,
            node="gpu-box",
        )
        return create_app(
            info=self.info,
            token=self.token,
            probe=self.probe,
            bus=bus,
            audit=audit,
            parts=[ModelsPart(arbiter, session)],
        )


@dataclass
class Servers:
    """The stand-ins and the worker."""

    ollama: OllamaStandIn
    llamacpp: LlamaCppRouterStandIn
    llamaswap: LlamaSwapStandIn
    worker: ModelsWorker


@pytest.fixture
async def servers(nvml: FakeNvml) -> AsyncIterator[Servers]:
    probe = SimulatedProbe(1, drift=False)
    async with (
        OllamaStandIn(probe, {"llama3.2:latest": 2.0, "big": 20.0}) as ollama,
        LlamaCppRouterStandIn(probe, {"coder": 8.0}) as llamacpp,
        LlamaSwapStandIn(probe, {"mistral": 1.0, "phi": 1.0}) as llamaswap,
        ModelsWorker(
            nvml,
            probe=probe,
            ollama_url=ollama.url,
            llamacpp_url=llamacpp.url,
            llamaswap_url=llamaswap.url,
        ) as worker,
    ):
        yield Servers(ollama, llamacpp, llamaswap, worker)


@pytest.fixture
async def models_entry(hass: HomeAssistant, servers: Servers) -> MockConfigEntry:
    entry = entry_for(servers.worker)
    await setup_entry(hass, entry)
    return entry


def entity(hass: HomeAssistant, domain: str, key: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(domain, DOMAIN, f"{WORKER_ID}_{key}")
    assert entity_id is not None, key
    return entity_id


def has_entity(hass: HomeAssistant, domain: str, key: str) -> bool:
    return er.async_get(hass).async_get_entity_id(domain, DOMAIN, f"{WORKER_ID}_{key}") is not None


async def action(hass: HomeAssistant, name: str, **data: Any) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, name, data, blocking=True, return_response=True
    )
    assert response is not None
    return dict(response)


@pytest.mark.usefixtures("models_entry")
async def test_sensors_selects_buttons_and_actions(hass: HomeAssistant, servers: Servers) -> None:
    ollama_select = entity(hass, SELECT_DOMAIN, "active_llm_ollama")
    llamacpp_select = entity(hass, SELECT_DOMAIN, "active_llm_llamacpp")
    assert hass.states.get(ollama_select).attributes["options"] == ["big", "llama3.2:latest"]
    assert hass.states.get(ollama_select).state == STATE_UNKNOWN
    assert not has_entity(hass, SENSOR_DOMAIN, "model_vram_ollama/llama3.2:latest")

    loaded = await action(hass, "load_model", model="llama3.2")

    assert loaded["model"] == "ollama/llama3.2:latest"
    assert loaded["evicted"] == []
    await hass.async_block_till_done()
    sensor = entity(hass, SENSOR_DOMAIN, "model_vram_ollama/llama3.2:latest")
    state = hass.states.get(sensor)
    assert state is not None
    assert float(state.state) == pytest.approx(2.1, abs=0.05)  # 2 GiB, shown in GB
    assert state.attributes["backend"] == "ollama"
    assert state.attributes["last_used"] is not None
    assert hass.states.get(ollama_select).state == "llama3.2:latest"

    await hass.services.async_call(
        SELECT_DOMAIN,
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: llamacpp_select, ATTR_OPTION: "coder"},
        blocking=True,
    )
    await hass.async_block_till_done()
    assert hass.states.get(llamacpp_select).state == "coder"
    assert servers.llamacpp.holds("coder")

    # 20 GB do not fit beside 10: the coder, the least recent of the two that free enough, goes.
    big = await action(hass, "load_model", model="ollama/big")
    assert [evicted["model"] for evicted in big["evicted"]] == ["llamacpp/coder"]
    await hass.async_block_till_done()
    assert (
        float(hass.states.get(entity(hass, SENSOR_DOMAIN, "model_vram_llamacpp/coder")).state) == 0
    )
    assert hass.states.get(llamacpp_select).state == STATE_UNKNOWN

    await hass.services.async_call(
        BUTTON_DOMAIN,
        SERVICE_PRESS,
        {ATTR_ENTITY_ID: entity(hass, BUTTON_DOMAIN, "unload_model_ollama/big")},
        blocking=True,
    )
    await hass.async_block_till_done()
    assert not servers.ollama.holds("big")

    every = await action(hass, "unload_model", all=True)
    assert every == {"unloaded": ["ollama/llama3.2:latest"], "kept": []}

    with pytest.raises(ServiceValidationError) as unknown:
        await action(hass, "load_model", model="nothing")
    assert unknown.value.translation_key == "model_not_found"
    with pytest.raises(ServiceValidationError) as neither:
        await action(hass, "unload_model")
    assert neither.value.translation_key == "model_or_all"


async def test_a_server_that_does_not_answer_is_a_repair(
    hass: HomeAssistant, models_entry: MockConfigEntry, servers: Servers
) -> None:
    issue_id = f"model_server_unreachable_{models_entry.entry_id}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None

    await servers.llamacpp.__aexit__(None, None, None)
    models = models_entry.runtime_data.part(HydraModelsCoordinator)
    assert models is not None
    await models.async_refresh()

    await wait_until(lambda: ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["server"] == servers.llamacpp.url


@pytest.mark.usefixtures("models_entry")
async def test_loading_and_unloading_are_an_administrators(
    hass: HomeAssistant, servers: Servers, hass_admin_user: MockUser
) -> None:
    member = await hass.auth.async_create_user("Bob", group_ids=[GROUP_ID_USER])

    with pytest.raises(Unauthorized) as caught:
        await hass.services.async_call(
            DOMAIN,
            "load_model",
            {"model": "llama3.2"},
            blocking=True,
            context=Context(user_id=member.id),
        )

    assert caught.value.translation_key == "admin_models"
    assert not servers.ollama.holds("llama3.2:latest")
    await hass.services.async_call(
        DOMAIN,
        "load_model",
        {"model": "llama3.2"},
        blocking=True,
        context=Context(user_id=hass_admin_user.id),
    )
    assert servers.ollama.holds("llama3.2:latest")


@pytest.mark.usefixtures("models_entry")
async def test_a_llama_swap_server_has_its_select_too(
    hass: HomeAssistant, servers: Servers
) -> None:
    select = entity(hass, SELECT_DOMAIN, "active_llm_llamaswap")
    assert hass.states.get(select).attributes["options"] == ["mistral", "phi"]
    await hass.services.async_call(
        SELECT_DOMAIN,
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: select, ATTR_OPTION: "phi"},
        blocking=True,
    )
    await hass.async_block_till_done()
    assert hass.states.get(select).state == "phi"
    assert servers.llamaswap.holds("phi")
