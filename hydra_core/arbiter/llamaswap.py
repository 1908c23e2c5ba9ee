"""llama-swap (mostlygeek/llama-swap): a proxy that starts one inference server per model from
its config and stops it again; read from its source at v250 (``internal/server``).

``GET /v1/models`` lists the configured models (``data[].id``; in newer versions also aliases,
peers' models on other hosts and selectors, told apart by ``meta.llamaswap.type``: only
``model`` is a model of this GPU). ``GET /running`` answers ``{"running": [{"model", "state",
"cmd", "proxy", "ttl", "name", "description"}]}`` for every process not stopped, ``state``
``starting``, ``ready`` or ``stopping``. Any request under ``/upstream/{model}/`` starts the
model's process, waits until it is ready, then passes the request on (llama-swap's own
preload sends ``GET /``): nothing is generated, and what the model's server answers to ``/``
(a web page, a 404) does not matter, ``/running`` says whether it is up. ``POST
/api/models/unload/{model}`` (since v126) stops that one process and answers ``OK`` once it
has; ``GET /unload`` stops every one, which the arbiter never wants. llama-swap reports no
sizes, and its TTL (``ttl`` in its config) is its own: the arbiter measures the sizes on the
GPU and applies its own TTL on top.

In llama-swap's default configuration every model is in one group with ``swap: true``, so a
load stops whatever model ran before: the arbiter sees it at its next look at the server.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import quote

from .backend import BackendError, BackendModel, HttpBackend, RunningModel

# How often a load or an unload in progress is looked at.
_POLL_S = 0.05
_READY = "ready"


class LlamaSwapBackend(HttpBackend):
    """One llama-swap proxy."""

    kind = "llamaswap"

    async def async_models(self) -> list[BackendModel]:
        """``GET /v1/models``: the models of its config (not aliases, peers or selectors)."""
        body = await self.request("GET", "/v1/models")
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise BackendError(
                f"llama-swap at {self.server} answered /v1/models without a data list"
            )
        return [
            BackendModel(name=str(model["id"]))
            for model in body["data"]
            if isinstance(model, dict) and model.get("id") and _type(model) == "model"
        ]

    async def async_running(self) -> dict[str, RunningModel]:
        """The models whose process is ``ready``."""
        return {
            name: RunningModel(name=name)
            for name, state in (await self._states()).items()
            if state == _READY
        }

    async def async_load(self, name: str, ttl_s: float) -> None:
        """``GET /upstream/{name}/``: llama-swap starts the model and answers once it is up."""
        status, text = await self._get(f"/upstream/{quote(name, safe='')}/")
        deadline = time.monotonic() + self.load_timeout_s
        while True:
            state = (await self._states()).get(name)
            if state == _READY:
                return
            if state != "starting":
                message = _swap_error(text) or f"it answered {status}"
                raise BackendError(f"llama-swap at {self.server} failed to load {name}: {message}")
            if time.monotonic() > deadline:
                raise BackendError(
                    f"llama-swap at {self.server} did not get {name} ready within"
                    f" {self.load_timeout_s:g} s"
                )
            await asyncio.sleep(_POLL_S)

    async def async_unload(self, name: str) -> None:
        """``POST /api/models/unload/{name}``: answers once the process has stopped."""
        path = f"/api/models/unload/{quote(name, safe='')}"
        status, text = await self._get(path, method="POST", timeout_s=self.load_timeout_s)
        if status != 200:
            message = _swap_error(text) or f"it answered {status}"
            raise BackendError(f"llama-swap at {self.server} refused to unload {name}: {message}")
        deadline = time.monotonic() + self.load_timeout_s
        while name in await self._states():
            if time.monotonic() > deadline:
                raise BackendError(
                    f"llama-swap at {self.server} did not stop {name} within"
                    f" {self.load_timeout_s:g} s"
                )
            await asyncio.sleep(_POLL_S)

    async def _states(self) -> dict[str, str]:
        """``GET /running``: each running model's state."""
        body = await self.request("GET", "/running")
        if not isinstance(body, dict) or not isinstance(body.get("running"), list):
            raise BackendError(f"llama-swap at {self.server} answered /running without a list")
        return {
            str(model["model"]): str(model.get("state", ""))
            for model in body["running"]
            if isinstance(model, dict) and model.get("model")
        }

    async def _get(
        self, path: str, *, method: str = "GET", timeout_s: float | None = None
    ) -> tuple[int, str]:
        """The status and text of a call whose answer need not be JSON (``OK``, a web page)."""
        url = self._base.with_path(self._base.path.rstrip("/") + path, encoded=True)
        return await self.send(method, url, timeout_s=timeout_s or self.load_timeout_s)


def _type(model: dict[str, Any]) -> str:
    """``meta.llamaswap.type`` (``model``, ``alias``, ``peer``, ``selector``, ``profile``);
    ``model`` where the listing predates it."""
    meta = model.get("meta")
    swap = meta.get("llamaswap") if isinstance(meta, dict) else None
    kind = swap.get("type") if isinstance(swap, dict) else None
    return kind if isinstance(kind, str) else "model"


def _swap_error(text: str) -> str | None:
    """The message of llama-swap's own error envelope (``{"src": "llama-swap", "error":
    {"message"}}``), not of the model's server."""
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("src") != "llama-swap":
        return None
    error = body.get("error")
    message = error.get("message") if isinstance(error, dict) else error
    return str(message) if message else None
