"""A llama.cpp server in router mode (``llama-server`` started without a model).

``GET /models`` lists every model with ``status.value`` ``unloaded``, ``loading``, ``loaded``
(and ``failed: true`` when its process died); ``POST /models/load`` and ``/models/unload``
take ``{"model": id}`` and answer ``{"success": true}`` at once, the model's own process
starting or stopping behind it, so a load here follows ``/models`` until the model is loaded
or has failed. The router reports no sizes: the arbiter measures them on the GPU.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .backend import BackendError, BackendModel, HttpBackend, RunningModel

# How often a load or an unload in progress is looked at.
_POLL_S = 0.05


class LlamaCppBackend(HttpBackend):
    """One llama.cpp router."""

    kind = "llamacpp"

    async def _states(self) -> dict[str, dict[str, Any]]:
        body = await self.request("GET", "/models")
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise BackendError(f"llama.cpp at {self.server} answered /models without a data list")
        states = {}
        for model in body["data"]:
            if isinstance(model, dict) and model.get("id"):
                status = model.get("status")
                states[str(model["id"])] = status if isinstance(status, dict) else {}
        return states

    async def async_models(self) -> list[BackendModel]:
        """``GET /models``."""
        return [BackendModel(name=name) for name in await self._states()]

    async def async_running(self) -> dict[str, RunningModel]:
        """The models whose status is ``loaded``."""
        return {
            name: RunningModel(name=name)
            for name, status in (await self._states()).items()
            if status.get("value") == "loaded"
        }

    async def async_load(self, name: str, ttl_s: float) -> None:
        """``POST /models/load``, then wait for ``loaded`` (``failed``: its process died)."""
        await self._post("/models/load", name)
        await self._until(name, "loaded")

    async def async_unload(self, name: str) -> None:
        """``POST /models/unload``, then wait until it is no longer loaded."""
        await self._post("/models/unload", name)
        await self._until(name, "unloaded")

    async def _post(self, path: str, name: str) -> None:
        body = await self.request("POST", path, json={"model": name})
        if not isinstance(body, dict) or body.get("success") is not True:
            raise BackendError(f"llama.cpp at {self.server} refused {path} of {name}: {body}")

    async def _until(self, name: str, value: str) -> None:
        deadline = time.monotonic() + self.load_timeout_s
        while True:
            status = (await self._states()).get(name)
            if status is None:
                raise BackendError(f"llama.cpp at {self.server} no longer lists {name}")
            if status.get("value") == value:
                return
            if status.get("failed") is True:
                raise BackendError(f"llama.cpp at {self.server} failed to load {name}")
            if time.monotonic() > deadline:
                raise BackendError(
                    f"llama.cpp at {self.server} did not get {name} {value} within"
                    f" {self.load_timeout_s:g} s"
                )
            await asyncio.sleep(_POLL_S)
