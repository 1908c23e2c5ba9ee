"""The models part's calls: list, load and unload models across the GPU's servers."""

from __future__ import annotations

from typing import Any

import aiohttp

from ..client import PartClient
from ..models import Actor
from ..wire import dump
from .models import PRIORITY_BACKGROUND, LoadPlan, LoadResult, ModelsStatus, UnloadResult

# A load may wait for evicted models' memory and for a large model to come off a slow disk.
LOAD_TIMEOUT = aiohttp.ClientTimeout(total=900)


class ModelsClient(PartClient):
    """The VRAM arbiter, through a ``HydraClient``."""

    async def async_available(self) -> ModelsStatus:
        """Every model of every backend, the backends and the GPU's memory."""
        return await self._client.call(ModelsStatus, "GET", "models/available")

    async def async_loaded(self) -> ModelsStatus:
        """The loaded models."""
        return await self._client.call(ModelsStatus, "GET", "models/loaded")

    async def async_can_load(self, model: str, *, priority: int = PRIORITY_BACKGROUND) -> LoadPlan:
        """Whether ``model`` fits, what it would evict, or what blocks it."""
        return await self._client.call(
            LoadPlan, "GET", f"models/can-load/{model}", params={"priority": str(priority)}
        )

    async def async_load(
        self,
        model: str,
        *,
        actor: Actor,
        ttl_s: float | None = None,
        lease: tuple[str, float] | None = None,
        priority: int = PRIORITY_BACKGROUND,
    ) -> LoadResult:
        """Load ``model`` (evicting idle ones); HydraApiError ``model_blocked`` (409),
        ``insufficient_vram`` (507), ``model_not_found``, ``backend_failed``."""
        body: dict[str, Any] = {"model": model, "actor": dump(actor), "priority": priority}
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        if lease is not None:
            body["lease"] = {"holder": lease[0], "seconds": lease[1]}
        return await self._client.call(
            LoadResult, "POST", "models/load", json=body, client_timeout=LOAD_TIMEOUT
        )

    async def async_unload(
        self, model: str | None = None, *, actor: Actor, force: bool = False
    ) -> UnloadResult:
        """Unload ``model``, or every model when None."""
        body: dict[str, Any] = {"actor": dump(actor), "force": force}
        body |= {"model": model} if model is not None else {"all": True}
        return await self._client.call(
            UnloadResult, "POST", "models/unload", json=body, client_timeout=LOAD_TIMEOUT
        )
