"""The VRAM arbiter through the worker's API, against Ollama and llama.cpp router stand-ins
whose loads and unloads fill and empty a simulated 24 GB GPU.

What a user notices: a load that does not fit evicts the right idle models (lowest priority,
then cheapest to reload, then least recently used) and says so; leases and work in flight are
never broken (409); what cannot fit is refused (507); no load ever runs a server out of memory.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from hydra_core.arbiter.models import AUDIT_EVICT, EVENT_MODEL, PRIORITY_INTERACTIVE
from hydra_core.arbiter.vllm import VllmBackend
from hydra_core.audit import AuditQuery
from hydra_core.client import HydraApiError
from hydra_core.gpu import SimulatedProbe
from hydra_core.models import Actor

from .conftest import MakeRig
from .standins import FOREVER_S, VllmStandIn

USER = Actor(type="user", id="u1", name="Ada")


async def test_lists_every_backends_models_and_what_is_loaded(make_rig: MakeRig) -> None:
    rig = await make_rig(ollama={"llama3.2:latest": 2.0}, llamacpp={"qwen-coder": 8.0})

    available = await rig.models.async_available()

    assert {(m.id, m.backend, m.loaded) for m in available.models} == {
        ("ollama/llama3.2:latest", "ollama", False),
        ("llamacpp/qwen-coder", "llamacpp", False),
    }
    assert available.vram_total_bytes == 24 * 1024**3
    assert all(backend.reachable for backend in available.backends)
    assert (await rig.models.async_loaded()).models == ()

    result = await rig.models.async_load("llama3.2", actor=USER)  # Ollama's default tag

    assert result.model.id == "ollama/llama3.2:latest"
    assert result.model.loaded
    assert result.evicted == ()
    # Measured on the GPU: what the load took, and how long.
    assert result.model.measured_vram_bytes == 2 * 1024**3
    assert result.model.load_seconds_p50 is not None
    loaded = await rig.models.async_loaded()
    assert [model.id for model in loaded.models] == ["ollama/llama3.2:latest"]
    assert rig.free_gib() == pytest.approx(22)


async def test_evicts_lowest_priority_first_then_only_what_is_needed(make_rig: MakeRig) -> None:
    rig = await make_rig(
        ollama={"mid": 6.0, "small": 2.0, "big": 10.0},
        llamacpp={"coder": 8.0},
        models_priorities=("ollama/small=30",),
    )
    for model in ("ollama/mid", "ollama/small", "llamacpp/coder"):
        await rig.models.async_load(model, actor=USER)
    assert rig.free_gib() == pytest.approx(8)

    plan = await rig.models.async_can_load("ollama/big")
    assert (plan.verdict, plan.evict) == ("evict", ("ollama/small",))

    result = await rig.models.async_load("ollama/big", actor=USER)

    # small was used last, yet its lower priority makes it go first; 2 GB was enough.
    assert [eviction.id for eviction in result.evicted] == ["ollama/small"]
    assert result.evicted[0].freed_bytes == 2 * 1024**3
    assert not rig.ollama.holds("small")
    assert rig.ollama.ooms == rig.llamacpp.ooms == 0


async def test_evicts_cheapest_to_reload_before_least_recently_used(make_rig: MakeRig) -> None:
    rig = await make_rig(
        ollama={"chat": 8.0, "next": 8.0},
        llamacpp={"coder": 8.0},
        llamacpp_kwargs={"load_delay": 0.6},
    )
    await rig.models.async_load("llamacpp/coder", actor=USER)  # slow to load, used first
    await rig.models.async_load("ollama/chat", actor=USER)  # quick to load, used later
    await rig.models.async_unload("ollama/chat", actor=USER)
    await rig.models.async_load("ollama/chat", actor=USER)
    rig.probe.allocate(0, "someone else", 8 * 1024**3)

    result = await rig.models.async_load("ollama/next", actor=USER)

    assert [eviction.id for eviction in result.evicted] == ["ollama/chat"]


async def test_evicts_least_recently_used_among_equals(make_rig: MakeRig) -> None:
    rig = await make_rig(ollama={"a": 8.0, "b": 8.0, "c": 8.0, "d": 8.0})
    for model in ("a", "b", "c"):
        await rig.models.async_load(model, actor=USER)
    async with rig.arbiter.use("ollama/a"):  # a is used again: b is now the least recent
        pass

    result = await rig.models.async_load("d", actor=USER)

    assert [eviction.id for eviction in result.evicted] == ["ollama/b"]


async def test_a_lease_blocks_eviction_with_409(make_rig: MakeRig) -> None:
    rig = await make_rig(ollama={"chat": 12.0, "big": 16.0})
    await rig.models.async_load("chat", actor=USER, lease=("chapter 7", 600))

    plan = await rig.models.async_can_load("big")
    with pytest.raises(HydraApiError) as refused:
        await rig.models.async_load("big", actor=USER)

    assert plan.verdict == "blocked"
    assert [(b.id, b.reason, b.holder) for b in plan.blocked_by] == [
        ("ollama/chat", "leased", "chapter 7")
    ]
    assert (refused.value.status, refused.value.code) == (409, "model_blocked")
    assert rig.ollama.holds("chat")
    loaded = await rig.models.async_loaded()
    lease = loaded.models[0].lease
    assert lease is not None
    assert lease.holder == "chapter 7"

    rig.arbiter.release("chapter 7")
    result = await rig.models.async_load("big", actor=USER)
    assert [eviction.id for eviction in result.evicted] == ["ollama/chat"]


async def test_work_in_flight_blocks_eviction_with_409(make_rig: MakeRig) -> None:
    rig = await make_rig(ollama={"chat": 12.0, "big": 16.0})
    await rig.models.async_load("chat", actor=USER)

    async with rig.arbiter.use("chat"):
        loaded = await rig.models.async_loaded()
        with pytest.raises(HydraApiError) as refused:
            await rig.models.async_load("big", actor=USER)

    assert loaded.models[0].in_flight == 1
    assert (refused.value.status, refused.value.code) == (409, "model_blocked")
    assert (await rig.models.async_load("big", actor=USER)).evicted[0].id == "ollama/chat"


async def test_a_load_does_not_evict_what_outranks_it(make_rig: MakeRig) -> None:
    rig = await make_rig(
        ollama={"voice-llm": 12.0, "big": 16.0}, models_priorities=("ollama/voice-*=90",)
    )
    await rig.models.async_load("voice-llm", actor=USER)

    with pytest.raises(HydraApiError) as refused:
        await rig.models.async_load("big", actor=USER)

    assert refused.value.status == 409
    result = await rig.models.async_load("big", actor=USER, priority=PRIORITY_INTERACTIVE)
    assert [eviction.id for eviction in result.evicted] == ["ollama/voice-llm"]


async def test_507_when_it_cannot_fit_even_after_eviction(make_rig: MakeRig) -> None:
    rig = await make_rig(
        ollama={"pinned": 10.0, "huge": 30.0, "large": 16.0}, models_pinned=("ollama/pinned",)
    )
    await rig.models.async_load("pinned", actor=USER)

    with pytest.raises(HydraApiError) as too_big:
        await rig.models.async_load("huge", actor=USER)
    with pytest.raises(HydraApiError) as behind_pin:
        await rig.models.async_load("large", actor=USER)

    assert (too_big.value.status, too_big.value.code) == (507, "insufficient_vram")
    assert (behind_pin.value.status, behind_pin.value.code) == (507, "insufficient_vram")
    assert (await rig.models.async_can_load("large")).verdict == "too_large"
    assert rig.ollama.holds("pinned")
    assert rig.ollama.ooms == 0


async def test_waits_until_the_gpu_shows_the_memory_back(make_rig: MakeRig) -> None:
    # Ollama answers the unload at once; its runner lets the memory go 0.4 s later.
    rig = await make_rig(ollama={"chat": 16.0, "big": 16.0}, ollama_kwargs={"release_delay": 0.4})
    await rig.models.async_load("chat", actor=USER)

    result = await rig.models.async_load("big", actor=USER)

    assert result.wait_seconds >= 0.3
    assert rig.ollama.ooms == 0
    assert rig.ollama.holds("big")


async def test_memory_that_never_comes_back_is_a_503(make_rig: MakeRig) -> None:
    rig = await make_rig(
        ollama={"chat": 16.0, "big": 16.0},
        ollama_kwargs={"release_delay": 30.0},
        models_free_timeout=0.3,
    )
    await rig.models.async_load("chat", actor=USER)

    with pytest.raises(HydraApiError) as refused:
        await rig.models.async_load("big", actor=USER)

    assert (refused.value.status, refused.value.code) == (503, "vram_not_released")
    assert rig.ollama.ooms == 0


@pytest.mark.parametrize("backend", ["ollama", "llamacpp"])
async def test_a_backend_dying_mid_load_is_a_502_and_nothing_stays_loaded(
    make_rig: MakeRig, backend: str
) -> None:
    rig = await make_rig(
        ollama={"chat": 8.0},
        llamacpp={"chat": 8.0},
        ollama_kwargs={"load_delay": 0.2},
        llamacpp_kwargs={"load_delay": 0.2},
    )
    standin = rig.ollama if backend == "ollama" else rig.llamacpp
    standin.crash_next_load = True
    events = rig.bus.subscribe()

    with pytest.raises(HydraApiError) as failed:
        await rig.models.async_load(f"{backend}/chat", actor=USER)

    assert (failed.value.status, failed.value.code) == (502, "backend_failed")
    assert (await rig.models.async_loaded()).models == ()
    event = await events.next(1)
    assert event is not None
    assert event.type == EVENT_MODEL
    assert event.data["event"] == "load_failed"
    assert rig.free_gib() == pytest.approx(24)
    # The server came back: the next load works.
    assert (await rig.models.async_load(f"{backend}/chat", actor=USER)).model.loaded


async def test_two_loads_racing_for_the_last_gigabytes_never_run_out(make_rig: MakeRig) -> None:
    rig = await make_rig(
        ollama={"a": 10.0, "b": 6.0, "c": 6.0},
        llamacpp={"d": 6.0},
        ollama_kwargs={"load_delay": 0.1},
        llamacpp_kwargs={"load_delay": 0.1},
    )
    await rig.models.async_load("a", actor=USER)
    await rig.models.async_load("b", actor=USER)
    assert rig.free_gib() == pytest.approx(8)  # room for one of c and d, not both

    first, second = await asyncio.gather(
        rig.models.async_load("c", actor=USER), rig.models.async_load("d", actor=USER)
    )

    evicted = [eviction.id for result in (first, second) for eviction in result.evicted]
    assert len(evicted) == 1
    assert rig.ollama.ooms == rig.llamacpp.ooms == 0
    assert rig.free_gib() >= 0


async def test_each_eviction_is_audited_and_announced(make_rig: MakeRig) -> None:
    rig = await make_rig(ollama={"chat": 16.0, "big": 16.0})
    await rig.models.async_load("chat", actor=USER)
    events = rig.bus.subscribe()

    await rig.models.async_load("big", actor=USER)

    seen = []
    while len(seen) < 3:
        event = await events.next(2)
        assert event is not None
        seen.append(event)
    models = [(e.data["event"], e.data["model"]["id"]) for e in seen if e.type == EVENT_MODEL]
    assert models == [("evicted", "ollama/chat"), ("loaded", "ollama/big")]
    entries = await rig.audit.async_query(AuditQuery(action=AUDIT_EVICT))
    assert [(e.container, e.result, e.reason, e.actor.name) for e in entries] == [
        ("model:ollama/chat", "ok", "room for ollama/big", "Ada")
    ]
    audit = await rig.client.async_audit(container="model:ollama/chat")
    assert [entry.action for entry in audit] == [AUDIT_EVICT]


async def test_a_model_loaded_forever_by_someone_else_is_seen_and_evicted(
    make_rig: MakeRig, http: object
) -> None:
    """Home Assistant's Ollama integration loads with keep_alive -1: loaded forever."""
    rig = await make_rig(ollama={"home-assistant": 12.0, "big": 16.0})
    async with http.post(  # type: ignore[attr-defined]
        f"{rig.ollama.url}/api/generate", json={"model": "home-assistant", "keep_alive": -1}
    ) as response:
        assert response.status == 200

    loaded = (await rig.models.async_loaded()).models

    assert [model.id for model in loaded] == ["ollama/home-assistant"]
    assert loaded[0].backend_expires_at is not None
    assert loaded[0].backend_expires_at > time.time() + FOREVER_S / 2
    assert loaded[0].vram_bytes == 12 * 1024**3
    result = await rig.models.async_load("big", actor=USER)
    assert [eviction.id for eviction in result.evicted] == ["ollama/home-assistant"]
    assert not rig.ollama.holds("home-assistant")


async def test_unload_one_all_and_forced(make_rig: MakeRig) -> None:
    rig = await make_rig(
        ollama={"a": 2.0, "b": 2.0, "pinned": 2.0},
        llamacpp={"leased": 2.0},
        models_pinned=("ollama/pinned",),
    )
    for model in ("a", "b", "pinned"):
        await rig.models.async_load(model, actor=USER)
    await rig.models.async_load("leased", actor=USER, lease=("research", 600))

    one = await rig.models.async_unload("a", actor=USER)
    every = await rig.models.async_unload(actor=USER)

    assert one.unloaded == ("ollama/a",)
    assert every.unloaded == ("ollama/b",)
    assert sorted((kept.id, kept.reason) for kept in every.kept) == [
        ("llamacpp/leased", "leased"),
        ("ollama/pinned", "pinned"),
    ]
    forced = await rig.models.async_unload(actor=USER, force=True)
    assert sorted(forced.unloaded) == ["llamacpp/leased", "ollama/pinned"]
    assert rig.free_gib() == pytest.approx(24)


async def test_a_ttl_unloads_an_idle_model(make_rig: MakeRig) -> None:
    rig = await make_rig(ollama={"chat": 2.0})
    await rig.models.async_load("chat", actor=USER, ttl_s=0.2)
    loaded = (await rig.models.async_loaded()).models[0]
    assert loaded.ttl_s == 0.2
    assert loaded.expires_at is not None

    await asyncio.sleep(0.3)
    assert await rig.arbiter.async_expire() == ["ollama/chat"]

    assert (await rig.models.async_loaded()).models == ()


async def test_unknown_model_and_bad_requests(make_rig: MakeRig) -> None:
    rig = await make_rig(ollama={"chat": 2.0})

    with pytest.raises(HydraApiError) as unknown:
        await rig.models.async_load("nothing", actor=USER)
    with pytest.raises(HydraApiError) as neither:
        await rig.client.request("POST", "models/unload", json={})

    assert (unknown.value.status, unknown.value.code) == (404, "model_not_found")
    assert (neither.value.status, neither.value.code) == (400, "invalid_body")


async def test_a_vllm_server_sleeps_to_make_room_and_wakes_up_to_load(
    make_rig: MakeRig, probe: SimulatedProbe, http: aiohttp.ClientSession
) -> None:
    async with VllmStandIn(probe, "Qwen/Qwen2.5-7B-Instruct", 16.0) as vllm:
        rig = await make_rig(
            ollama={"chat": 12.0},
            extra_backends=[VllmBackend("vllm", vllm.url, lambda: http)],
        )
        loaded = [model.id for model in (await rig.models.async_loaded()).models]
        assert loaded == ["vllm/Qwen/Qwen2.5-7B-Instruct"]  # it loads its model as it starts

        chat = await rig.models.async_load("chat", actor=USER)
        assert [eviction.id for eviction in chat.evicted] == ["vllm/Qwen/Qwen2.5-7B-Instruct"]
        assert vllm.sleeping

        await rig.models.async_unload("chat", actor=USER)
        awake = await rig.models.async_load("vllm/Qwen/Qwen2.5-7B-Instruct", actor=USER)
        assert awake.model.loaded
        assert not vllm.sleeping
        assert awake.model.measured_vram_bytes == 16 * 1024**3
        assert vllm.ooms == rig.ollama.ooms == 0


async def test_a_look_at_the_servers_from_before_a_load_does_not_undo_it(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig(ollama={"chat": 4.0})
    rig.ollama.ps_delay = 0.3
    looking = asyncio.create_task(rig.arbiter.async_refresh())  # sees nothing loaded
    await asyncio.sleep(0.1)
    rig.ollama.ps_delay = 0.0

    await rig.models.async_load("chat", actor=USER)
    await looking

    status = await rig.arbiter.async_status(loaded_only=True)
    assert [model.id for model in status.models] == ["ollama/chat"]
