"""The VRAM arbiter: decision time with 50 models loaded, a load's overhead beyond the backend's
own load, and a night of mixed work against the stand-ins.

Run: .venv-worker/bin/python -m benchmarks.models [--night 30]

- Decision: ``policy.decide`` over 50 loaded models (the pure choice), and a whole
  ``can-load`` plan through the arbiter (a GPU read on the probe's thread, the candidates, the
  choice), both for a load that must evict.
- Overhead: the same Ollama stand-in model (0.2 s load) loaded straight through the adapter and
  through the arbiter (the turn, a GPU read before and after, the measurement, the event),
  alternating, each after an unload; the difference of the medians.
- Night: Ollama (Home Assistant's assist model loaded with ``keep_alive: -1``, two chat
  models), a llama.cpp router (a coder model), ComfyUI (chapters: each leases the checkpoint,
  then its prompts take 10 GB on the card as ComfyUI's would) and Whisper (a voice request
  every few seconds, at interactive priority) on one simulated 24 GB card, compressed into
  ``--night`` seconds. Counted: out-of-memory failures of any server (goal 0), evictions,
  refusals that made work wait and try again, and the time spent waiting for memory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import time
from typing import Any

import aiohttp
from aiohttp import web

from hydra_core.arbiter.backend import BackendError
from hydra_core.arbiter.comfyui import ComfyUIBackend
from hydra_core.arbiter.inprocess import InProcessBackend, InProcessModel
from hydra_core.arbiter.llamacpp import LlamaCppBackend
from hydra_core.arbiter.models import EVENT_MODEL, PRIORITY_INTERACTIVE
from hydra_core.arbiter.ollama import OllamaBackend
from hydra_core.arbiter.options import ModelsOptions
from hydra_core.arbiter.policy import Loaded, decide
from hydra_core.arbiter.service import ModelArbiter
from hydra_core.audit import AuditLog
from hydra_core.errors import Refusal
from hydra_core.events import EventBus
from hydra_core.gpu import SimulatedProbe
from hydra_core.models import Actor
from hydra_core.voice.loader import LazyModel
from tests.comfyui_standin import ComfyUIStandIn
from tests.models.standins import GIB, LlamaCppRouterStandIn, OllamaStandIn

NIGHT = Actor(type="schedule", name="night")
_CHECKPOINT = "comfyui checkpoint"


def _arbiter(
    probe: SimulatedProbe, backends: list[Any], bus: EventBus | None = None, **options: Any
) -> ModelArbiter:
    return ModelArbiter(
        ModelsOptions(**({"models_reserve_gb": 0.0} | options)),
        backends=backends,
        probe=probe,
        bus=bus or EventBus(),
        audit=AuditLog(None),
        node="bench",
    )


def bench_decision() -> tuple[float, float]:
    """Median and 99th percentile microseconds of one policy decision over 50 loaded models."""
    rng = random.Random(1)  # noqa: S311 - repeatable models, not a secret
    loaded = [
        Loaded(
            id=f"ollama/model-{index}",
            vram_bytes=rng.randint(1, 8) * GIB // 4,
            priority=rng.choice((30, 50, 50, 90)),
            reload_cost_s=rng.uniform(0.05, 20),
            last_used=time.time() - rng.uniform(0, 3600),
            pinned=index % 17 == 0,
            lease_holder="chapter" if index % 11 == 0 else None,
            in_flight=1 if index % 13 == 0 else 0,
        )
        for index in range(50)
    ]
    times = []
    for _ in range(2000):
        started = time.perf_counter()
        decision = decide(loaded, need=6 * GIB, free=1 * GIB, priority=50)
        times.append(time.perf_counter() - started)
    assert decision.verdict == "evict"
    return statistics.median(times) * 1e6, statistics.quantiles(times, n=100)[98] * 1e6


async def bench_plan(http: aiohttp.ClientSession) -> float:
    """Median milliseconds of a can-load plan through the arbiter with 50 models loaded."""
    probe = SimulatedProbe(1, drift=False)
    models = {f"m{index}": 0.4 for index in range(50)} | {"big": 8.0}
    async with OllamaStandIn(probe, models) as ollama:
        arbiter = _arbiter(probe, [OllamaBackend("ollama", ollama.url, lambda: http)])
        await arbiter.async_refresh()
        for index in range(50):
            await arbiter.async_load(f"m{index}", actor=NIGHT)
        probe.allocate(0, "someone", 20 * GIB - 50 * int(0.4 * GIB))
        times = []
        for _ in range(300):
            started = time.perf_counter()
            plan = await arbiter.async_plan("big")
            times.append(time.perf_counter() - started)
        assert plan.verdict == "evict", plan
        return statistics.median(times) * 1000


async def bench_overhead(http: aiohttp.ClientSession, rounds: int = 15) -> tuple[float, float]:
    """Median seconds of a straight load and of a load through the arbiter."""
    probe = SimulatedProbe(1, drift=False)
    async with OllamaStandIn(probe, {"chat": 6.0}, load_delay=0.2) as ollama:
        backend = OllamaBackend("ollama", ollama.url, lambda: http)
        arbiter = _arbiter(probe, [backend])
        await arbiter.async_refresh()
        straight, through = [], []
        for _ in range(rounds):
            started = time.perf_counter()
            await backend.async_load("chat", 0)
            straight.append(time.perf_counter() - started)
            await backend.async_unload("chat")
            await arbiter.async_refresh()
            started = time.perf_counter()
            await arbiter.async_load("chat", actor=NIGHT)
            through.append(time.perf_counter() - started)
            await arbiter.async_unload("chat", actor=NIGHT)
        return statistics.median(straight), statistics.median(through)


class _ComfyUI(ComfyUIStandIn):
    """ComfyUI whose checkpoint takes memory on the simulated card while loaded."""

    def __init__(self, probe: SimulatedProbe) -> None:
        super().__init__()
        self.probe = probe
        self.ooms = 0

    def run_prompt(self) -> None:
        """A prompt loads the checkpoint (10 GB) unless it is loaded."""
        if _CHECKPOINT in self.probe.allocated(0):
            return
        if (self.probe.read().gpus[0].memory_free_bytes or 0) < 10 * GIB:
            self.ooms += 1
            return
        self.probe.allocate(0, _CHECKPOINT, 10 * GIB)

    async def _free(self, request: web.Request) -> web.Response:
        response = await super()._free(request)
        self.probe.release(0, _CHECKPOINT)
        return response

    async def _system_stats(self, request: web.Request) -> web.Response:
        held = self.probe.allocated(0).get(_CHECKPOINT, 0)
        return web.json_response(
            {
                "system": {},
                "devices": [{"name": "cuda:0", "type": "cuda", "torch_vram_total": held}],
            }
        )


class _Night:
    """A compressed night: the arbiter, the stand-ins, the jobs and their counters."""

    def __init__(
        self,
        arbiter: ModelArbiter,
        comfyui: _ComfyUI,
        whisper: LazyModel[None],
        seconds: float,
    ) -> None:
        self.arbiter = arbiter
        self.comfyui = comfyui
        self.whisper = whisper
        self.rng = random.Random(7)  # noqa: S311 - a repeatable night, not a secret
        self.end = time.monotonic() + seconds
        self.refused = 0
        self.refused_s = 0.0
        self.memory_back_s = 0.0
        self.jobs = {"chapter": 0, "research": 0, "voice": 0}
        self.voice_s: list[float] = []
        wait_free = arbiter._wait_free

        async def timed_wait_free(need: int) -> None:
            started = time.perf_counter()
            try:
                await wait_free(need)
            finally:
                self.memory_back_s += time.perf_counter() - started

        arbiter._wait_free = timed_wait_free  # type: ignore[method-assign]

    @property
    def going(self) -> bool:
        """Whether the night goes on."""
        return time.monotonic() < self.end

    async def acquire(self, holder: str, model: str) -> None:
        """Lease ``model``, trying again after each refusal as the task queue does; the time
        lost to refusals is counted."""
        started = time.perf_counter()
        while True:
            attempt = time.perf_counter()
            try:
                await self.arbiter.async_acquire(holder, (model,), priority=50, actor=NIGHT)
            except (Refusal, BackendError) as err:
                if err.status not in (409, 503, 507):
                    raise
                self.refused += 1
                await asyncio.sleep(0.2)
                continue
            self.refused_s += attempt - started
            return

    async def chapters(self) -> None:
        """A chapter leases ComfyUI, draws three images, and ends."""
        index = 0
        while self.going:
            index += 1
            await self.acquire(f"chapter {index}", "comfyui")
            for _ in range(3):
                self.comfyui.run_prompt()
                await asyncio.sleep(0.3)
            self.arbiter.release(f"chapter {index}")
            self.jobs["chapter"] += 1
            await asyncio.sleep(self.rng.uniform(1, 3))

    async def research(self) -> None:
        """Research summarises with one of the LLMs."""
        index = 0
        while self.going:
            index += 1
            model = self.rng.choice(("llama3.1:8b", "qwen2.5:14b", "coder"))
            await self.acquire(f"research {id(self)} {index}", model)
            async with self.arbiter.use(model):
                await asyncio.sleep(self.rng.uniform(0.2, 0.8))
            self.arbiter.release(f"research {id(self)} {index}")
            self.jobs["research"] += 1
            await asyncio.sleep(self.rng.uniform(0.2, 1))

    async def voice(self) -> None:
        """Someone asks something: Whisper (interactive priority) transcribes."""
        while self.going:
            started = time.perf_counter()
            await self.whisper.run(lambda _: time.sleep(0.05))
            self.voice_s.append(time.perf_counter() - started)
            self.jobs["voice"] += 1
            await asyncio.sleep(self.rng.uniform(1, 4))

    async def refresh(self) -> None:
        """The arbiter's look at the servers, every second here."""
        while self.going:
            await self.arbiter.async_refresh()
            await asyncio.sleep(1)


async def bench_night(http: aiohttp.ClientSession, seconds: float) -> dict[str, Any]:
    """A compressed night of chapters, research and voice requests."""
    probe = SimulatedProbe(1, drift=False)
    whisper: LazyModel[None] = LazyModel(
        "Whisper",
        lambda: probe.allocate(0, "whisper", 1 * GIB),
        unload=lambda _: probe.release(0, "whisper"),
        idle_unload_s=3.0,
    )
    ollama_models = {"ha-assist:latest": 4.0, "llama3.1:8b": 6.0, "qwen2.5:14b": 10.0}
    async with (
        OllamaStandIn(probe, ollama_models, load_delay=0.3, release_delay=0.2) as ollama,
        LlamaCppRouterStandIn(probe, {"coder": 12.0}, load_delay=0.5) as llamacpp,
        _ComfyUI(probe) as comfyui,
    ):
        own = InProcessBackend(
            [
                InProcessModel(
                    name="whisper",
                    lazy=lambda: whisper,
                    estimated_vram_bytes=GIB,
                    priority=PRIORITY_INTERACTIVE,
                )
            ]
        )
        bus = EventBus()
        events = bus.subscribe(maxsize=100_000)
        arbiter = _arbiter(
            probe,
            [
                own,
                OllamaBackend("ollama", ollama.url, lambda: http),
                LlamaCppBackend("llamacpp", llamacpp.url, lambda: http),
                ComfyUIBackend("comfyui", comfyui.url, lambda: http),
            ],
            bus,
            models_sizes=("llamacpp/coder=12",),
            models_reserve_gb=0.5,
        )
        own.hook(arbiter.async_make_room)
        # Home Assistant's Ollama integration: its assist model, loaded forever.
        async with http.post(
            f"{ollama.url}/api/generate", json={"model": "ha-assist", "keep_alive": -1}
        ):
            pass
        await arbiter.async_refresh()
        night = _Night(arbiter, comfyui, whisper, seconds)
        await asyncio.gather(
            night.chapters(), night.research(), night.research(), night.voice(), night.refresh()
        )
        await whisper.close()
        evictions = 0
        with contextlib.suppress(TimeoutError):
            while (event := await events.next(0.01)) is not None:
                evictions += event.type == EVENT_MODEL and event.data["event"] == "evicted"
        return {
            "ooms": ollama.ooms + llamacpp.ooms + comfyui.ooms,
            "evictions": evictions,
            "refused": night.refused,
            "refused_s": night.refused_s,
            "memory_back_s": night.memory_back_s,
            "jobs": night.jobs,
            "voice_p50_ms": statistics.median(night.voice_s) * 1000,
            "voice_max_ms": max(night.voice_s) * 1000,
        }


async def main(night_s: float) -> None:
    """Print the figures beside the goals."""
    median_us, max_us = bench_decision()
    async with aiohttp.ClientSession() as http:
        plan_ms = await bench_plan(http)
        straight, through = await bench_overhead(http)
        night = await bench_night(http, night_s)
    print(
        f"Decision with 50 models loaded: policy {median_us:.1f} µs median ({max_us:.1f} µs p99),"
        f" whole can-load plan {plan_ms:.2f} ms median (goal < 1 ms)"
    )
    print(
        f"Load through the arbiter: {1000 * straight:.1f} ms straight, {1000 * through:.1f} ms"
        f" through: overhead {1000 * (through - straight):.1f} ms (goal < 20 ms)"
    )
    print(
        f"Night of {night_s:g} s: {night['jobs']} jobs; out-of-memory failures {night['ooms']}"
        f" (goal 0); evictions {night['evictions']}; refusals waited out {night['refused']}"
        f" ({night['refused_s']:.1f} s); waiting for evicted memory to come back"
        f" {night['memory_back_s']:.1f} s; voice request median"
        f" {night['voice_p50_ms']:.0f} ms, max {night['voice_max_ms']:.0f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--night", type=float, default=30.0, help="seconds the night lasts")
    asyncio.run(main(parser.parse_args().night))
