"""Fixtures: a worker whose models part drives Ollama and llama.cpp router stand-ins on a
simulated 24 GB GPU that their loads and unloads fill and empty."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from hydra_core.arbiter.backend import ModelBackend
from hydra_core.arbiter.client import ModelsClient
from hydra_core.arbiter.llamacpp import LlamaCppBackend
from hydra_core.arbiter.ollama import OllamaBackend
from hydra_core.arbiter.options import ModelsOptions
from hydra_core.arbiter.part import ModelsPart
from hydra_core.arbiter.service import ModelArbiter
from hydra_core.audit import AuditLog
from hydra_core.client import HydraClient
from hydra_core.events import EventBus
from hydra_core.gpu import SimulatedProbe
from hydra_core.worker.part import Part
from tests.worker.conftest import http, serve_app, serve_worker
from tests.worker_identity import TOKEN

from .standins import GIB, LlamaCppRouterStandIn, OllamaStandIn

__all__ = ["http", "serve_app", "serve_worker"]


@dataclass
class Rig:
    """A worker with the models part, its stand-ins and what a test looks at."""

    models: ModelsClient
    arbiter: ModelArbiter
    probe: SimulatedProbe
    ollama: OllamaStandIn
    llamacpp: LlamaCppRouterStandIn
    bus: EventBus
    audit: AuditLog
    client: HydraClient

    def free_gib(self) -> float:
        """What the simulated GPU shows free."""
        return (self.probe.read().gpus[0].memory_free_bytes or 0) / GIB


MakeRig = Callable[..., Awaitable[Rig]]


@pytest.fixture
def probe() -> SimulatedProbe:
    """One still 24 GB card."""
    return SimulatedProbe(1, drift=False)


@pytest.fixture
async def make_rig(
    probe: SimulatedProbe, serve_worker: Any, http: aiohttp.ClientSession
) -> AsyncIterator[MakeRig]:
    """Build the rig: Ollama (``ollama`` sizes in GB) and a llama.cpp router (``llamacpp``),
    with the models options given (no reserve unless asked)."""
    standins: list[Any] = []

    async def make(
        *,
        ollama: dict[str, float] | None = None,
        llamacpp: dict[str, float] | None = None,
        ollama_kwargs: dict[str, Any] | None = None,
        llamacpp_kwargs: dict[str, Any] | None = None,
        extra_backends: list[ModelBackend] | None = None,
        parts: list[Part] | None = None,
        **options: Any,
    ) -> Rig:
        olla = await OllamaStandIn(probe, ollama or {}, **(ollama_kwargs or {})).__aenter__()
        standins.append(olla)
        llama = await LlamaCppRouterStandIn(
            probe, llamacpp or {}, **(llamacpp_kwargs or {})
        ).__aenter__()
        standins.append(llama)
        options = {"models_reserve_gb": 0.0, "models_free_timeout": 5.0} | options
        bus, audit = EventBus(), AuditLog(None)
        arbiter = ModelArbiter(
            ModelsOptions(**options),
            backends=[
                OllamaBackend("ollama", olla.url, lambda: http),
                LlamaCppBackend("llamacpp", llama.url, lambda: http),
                *(extra_backends or []),
            ],
            probe=probe,
            bus=bus,
            audit=audit,
            node="rig",
        )
        url = await serve_worker(
            token=TOKEN,
            probe=probe,
            bus=bus,
            audit=audit,
            parts=[*(parts or []), ModelsPart(arbiter)],
        )
        client = HydraClient(http, url, TOKEN)
        return Rig(
            models=ModelsClient(client),
            arbiter=arbiter,
            probe=probe,
            ollama=olla,
            llamacpp=llama,
            bus=bus,
            audit=audit,
            client=client,
        )

    yield make
    for standin in reversed(standins):
        await standin.__aexit__(None, None, None)
