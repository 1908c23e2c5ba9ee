"""Hydra's own models (Whisper, Kokoro, CLIP, the embedding model): their lazy loaders join
the arbiter.

Each stays a ``LazyModel``: it loads on first use and unloads when idle as before; the arbiter
reads its state and use count, loads and unloads it, and, through the loader's ``before_load``
hook, makes room for it before a request loads it on its own (a voice request evicting an idle
LLM instead of running out of memory).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
import time
from typing import Any

from ..voice.loader import LazyModel, ModelState
from .backend import BackendError, BackendModel, ModelBackend, RunningModel

HYDRA = "hydra"


@dataclass(frozen=True, slots=True, kw_only=True)
class InProcessModel:
    """One of Hydra's models: its name, its loader (asked anew each time: changing the Whisper
    model makes a new one), what it is guessed to take on the GPU, and its priority."""

    name: str
    lazy: Callable[[], LazyModel[Any]]
    estimated_vram_bytes: int
    priority: int


# Makes room for a model a request is about to load by itself: (model id, priority).
MakeRoom = Callable[[str, int], Awaitable[None]]


class InProcessBackend(ModelBackend):
    """The models of this worker's own process."""

    kind = HYDRA
    unloads_when_idle = True

    def __init__(self, models: list[InProcessModel]) -> None:
        super().__init__(HYDRA)
        self.models = {model.name: model for model in models}
        # Loads the arbiter itself started: their ``before_load`` must not ask it again.
        self._loading: set[str] = set()
        self._make_room: MakeRoom | None = None

    def hook(self, make_room: MakeRoom) -> None:
        """Have each loader ask the arbiter for room before it loads by itself."""
        self._make_room = make_room
        self._hook_loaders(replace=True)

    def _hook_loaders(self, *, replace: bool = False) -> None:
        """Hook the loaders (and those made since: a new Whisper model is a new loader)."""
        if self._make_room is None:
            return
        for model in self.models.values():
            lazy = model.lazy()
            if replace or lazy.before_load is None:
                lazy.before_load = self._before_load(model, self._make_room)

    def _before_load(
        self, model: InProcessModel, make_room: MakeRoom
    ) -> Callable[[], Awaitable[None]]:
        async def before_load() -> None:
            if model.name not in self._loading:
                await make_room(f"{HYDRA}/{model.name}", model.priority)

        return before_load

    async def async_models(self) -> list[BackendModel]:
        """Every in-process model."""
        return [
            BackendModel(name=model.name, size_bytes=model.estimated_vram_bytes)
            for model in self.models.values()
        ]

    async def async_running(self) -> dict[str, RunningModel]:
        """The loaders holding a model."""
        self._hook_loaders()
        return {
            name: RunningModel(name=name)
            for name, model in self.models.items()
            if model.lazy().loaded or model.lazy().state is ModelState.LOADING
        }

    async def async_load(self, name: str, ttl_s: float) -> None:
        """Load through the loader (its own idle unload stays as configured)."""
        self._loading.add(name)
        try:
            await self.models[name].lazy().load()
        except Exception as err:  # the loader's own error (files missing, no memory): the load's
            raise BackendError(f"Hydra's {name} could not load: {err}") from err
        finally:
            self._loading.discard(name)

    async def async_unload(self, name: str) -> None:
        """Unload once no inference holds it."""
        await self.models[name].lazy().unload()

    def priority(self, name: str) -> int:
        """Whisper and Kokoro answer people: they outrank background work."""
        return self.models[name].priority

    def in_flight(self, name: str) -> int:
        """Inferences holding the model now."""
        return self.models[name].lazy().in_use

    def last_used(self, name: str) -> float | None:
        """The loader's last use, as unix time."""
        used = self.models[name].lazy().last_used
        return None if used is None else time.time() - (time.monotonic() - used)
