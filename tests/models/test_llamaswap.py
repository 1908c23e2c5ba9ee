"""llama-swap under the VRAM arbiter, against a stand-in with its API's shapes whose model
processes fill and empty the simulated 24 GB GPU.

What a user notices: llama-swap's models are listed beside the others (not its peers' models
on other hosts), load through the arbiter, are evicted to make room and unloaded on request;
a model process that dies while starting, or a proxy that is gone, is the 502 every other
server gives.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
import signal

import aiohttp
import pytest

from hydra_core.arbiter.llamaswap import LlamaSwapBackend
from hydra_core.client import HydraApiError
from hydra_core.gpu import SimulatedProbe
from hydra_core.models import Actor
from tests.worker.test_cli import STOP_TIMEOUT_S, _start, request

from .conftest import MakeRig, Rig
from .standins import LlamaSwapStandIn

USER = Actor(type="user", id="u1", name="Ada")

SwapRig = Callable[..., Awaitable[tuple[Rig, LlamaSwapStandIn]]]


@pytest.fixture
async def swap_rig(
    make_rig: MakeRig, probe: SimulatedProbe, http: aiohttp.ClientSession
) -> AsyncIterator[SwapRig]:
    """The rig with a llama-swap stand-in (``models`` in GB) beside its Ollama."""
    standins: list[LlamaSwapStandIn] = []

    async def make(
        models: dict[str, float], *, swap: bool = False, load_delay: float = 0.0, **rig: object
    ) -> tuple[Rig, LlamaSwapStandIn]:
        standin = await LlamaSwapStandIn(
            probe, models, swap=swap, load_delay=load_delay
        ).__aenter__()
        standins.append(standin)
        backend = LlamaSwapBackend("llamaswap", standin.url, lambda: http)
        return await make_rig(extra_backends=[backend], **rig), standin

    yield make
    for standin in standins:
        await standin.__aexit__(None, None, None)


async def test_lists_loads_and_unloads_its_models(swap_rig: SwapRig) -> None:
    rig, swap = await swap_rig({"qwen-coder": 8.0, "gemma": 4.0})

    available = await rig.models.async_available()

    # The peer's model runs on another host's GPU: not this arbiter's.
    assert {(m.id, m.backend, m.loaded) for m in available.models} == {
        ("llamaswap/qwen-coder", "llamaswap", False),
        ("llamaswap/gemma", "llamaswap", False),
    }

    result = await rig.models.async_load("qwen-coder", actor=USER)

    assert result.model.id == "llamaswap/qwen-coder"
    assert result.model.loaded
    assert result.model.measured_vram_bytes == 8 * 1024**3  # llama-swap gives no sizes
    assert swap.state == {"qwen-coder": "ready"}
    assert swap.upstream_paths == ["/"]  # loaded by a request that generates nothing
    assert rig.free_gib() == pytest.approx(16)
    assert [m.id for m in (await rig.models.async_loaded()).models] == ["llamaswap/qwen-coder"]

    unloaded = await rig.models.async_unload("qwen-coder", actor=USER)

    assert unloaded.unloaded == ("llamaswap/qwen-coder",)
    assert swap.state == {}
    assert rig.free_gib() == pytest.approx(24)
    assert (await rig.models.async_loaded()).models == ()


async def test_a_model_named_with_a_slash_loads_and_unloads(swap_rig: SwapRig) -> None:
    rig, swap = await swap_rig({"Qwen/Qwen3-8B:Q4_K_M": 6.0})

    loaded = await rig.models.async_load("llamaswap/Qwen/Qwen3-8B:Q4_K_M", actor=USER)
    assert loaded.model.loaded
    assert swap.holds("Qwen/Qwen3-8B:Q4_K_M")

    unloaded = await rig.models.async_unload("llamaswap/Qwen/Qwen3-8B:Q4_K_M", actor=USER)
    assert unloaded.unloaded == ("llamaswap/Qwen/Qwen3-8B:Q4_K_M",)
    assert not swap.holds("Qwen/Qwen3-8B:Q4_K_M")


async def test_a_model_someone_else_started_is_seen_and_evicted_for_room(
    swap_rig: SwapRig, http: aiohttp.ClientSession
) -> None:
    rig, swap = await swap_rig({"coder": 16.0}, ollama={"chat": 12.0})
    # A chat client's request through llama-swap starts the coder behind the arbiter's back.
    async with http.get(f"{swap.url}/upstream/coder/") as response:
        assert response.status == 200
    await rig.arbiter.async_refresh()
    assert [m.id for m in (await rig.models.async_loaded()).models] == ["llamaswap/coder"]

    result = await rig.models.async_load("ollama/chat", actor=USER)

    assert [eviction.id for eviction in result.evicted] == ["llamaswap/coder"]
    assert result.evicted[0].freed_bytes == 16 * 1024**3
    assert swap.state == {}
    assert not swap.holds("coder")
    assert swap.ooms == rig.ollama.ooms == 0


async def test_its_own_swap_shows_at_the_next_look(swap_rig: SwapRig) -> None:
    # llama-swap's default configuration: one group with swap: true.
    rig, swap = await swap_rig({"a": 4.0, "b": 4.0}, swap=True)
    await rig.models.async_load("a", actor=USER)

    await rig.models.async_load("b", actor=USER)
    await rig.arbiter.async_refresh()

    assert [m.id for m in (await rig.models.async_loaded()).models] == ["llamaswap/b"]
    assert swap.state == {"b": "ready"}
    assert rig.free_gib() == pytest.approx(20)


async def test_a_model_process_dying_while_it_starts_is_a_502(swap_rig: SwapRig) -> None:
    rig, swap = await swap_rig({"chat": 8.0}, load_delay=0.2)
    swap.crash_next_load = True

    with pytest.raises(HydraApiError) as failed:
        await rig.models.async_load("llamaswap/chat", actor=USER)

    assert (failed.value.status, failed.value.code) == (502, "backend_failed")
    assert "upstream command exited prematurely" in str(failed.value)
    assert (await rig.models.async_loaded()).models == ()
    assert rig.free_gib() == pytest.approx(24)
    # The process starts the next time.
    assert (await rig.models.async_load("llamaswap/chat", actor=USER)).model.loaded


async def test_a_proxy_that_is_gone_is_a_502_and_unreachable(swap_rig: SwapRig) -> None:
    rig, swap = await swap_rig({"chat": 8.0})
    await rig.arbiter.async_refresh()  # the arbiter knows its models
    await swap.__aexit__(None, None, None)

    with pytest.raises(HydraApiError) as failed:
        await rig.models.async_load("llamaswap/chat", actor=USER)
    await rig.arbiter.async_refresh()
    backends = {b.name: b for b in (await rig.models.async_available()).backends}

    assert (failed.value.status, failed.value.code) == (502, "backend_failed")
    assert not backends["llamaswap"].reachable
    assert "cannot be reached" in (backends["llamaswap"].error or "")


@pytest.mark.usefixtures("loopback_sockets")
async def test_a_worker_process_arbitrates_the_llamaswap_urls_named(tmp_path: Path) -> None:
    async with LlamaSwapStandIn(SimulatedProbe(1, drift=False), {"qwen-coder": 8.0}) as swap:
        process, port, _log = await asyncio.to_thread(
            _start, tmp_path, "--docker-host", "none", "--llamaswap-urls", swap.url
        )
        try:
            token = (tmp_path / "data" / "token").read_text().strip()
            status, body = await asyncio.to_thread(request, port, "/api/v1/models/available", token)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=STOP_TIMEOUT_S)

    assert status == 200
    assert "llamaswap/qwen-coder" in {model["id"] for model in body["models"]}
    assert "llamaswap" in [backend["kind"] for backend in body["backends"]]
