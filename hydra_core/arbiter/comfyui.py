"""ComfyUI: it loads a checkpoint when a prompt needs one and keeps it, so the arbiter treats
each server as one model.

``GET /system_stats`` gives each device's ``torch_vram_total``, the memory PyTorch holds in
ComfyUI's process: more than nothing means a checkpoint is loaded. ``POST /free`` with
``unload_models`` and ``free_memory`` gives it back. A load through the arbiter makes room and
reserves it: ComfyUI takes the memory when the prompt runs.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from ..creative.comfyui import ComfyUIError, ComfyUIServer
from .backend import BackendError, BackendModel, ModelBackend, RunningModel, Session

# The one "model" of a ComfyUI server: whatever checkpoints its prompts load.
CHECKPOINT = "checkpoint"


class ComfyUIBackend(ModelBackend):
    """One ComfyUI server."""

    kind = "comfyui"
    loads_on_demand = True

    def __init__(self, name: str, url: str, session: Session) -> None:
        super().__init__(name, url)
        self._session = session
        self._comfyui: tuple[aiohttp.ClientSession, ComfyUIServer] | None = None

    @property
    def _server(self) -> ComfyUIServer:
        session = self._session()
        if self._comfyui is None or self._comfyui[0] is not session:
            self._comfyui = (session, ComfyUIServer(session, self.url or ""))
        return self._comfyui[1]

    async def async_models(self) -> list[BackendModel]:
        """The server's checkpoint, whichever its prompts load."""
        return [BackendModel(name=CHECKPOINT)]

    async def async_running(self) -> dict[str, RunningModel]:
        """Loaded while PyTorch holds memory in ComfyUI's process."""
        try:
            stats = await self._server.system_stats()
        except ComfyUIError as err:
            raise BackendError(err.message) from None
        held = sum(_bytes(device, "torch_vram_total") for device in _devices(stats))
        return {CHECKPOINT: RunningModel(name=CHECKPOINT, vram_bytes=held)} if held else {}

    async def async_load(self, name: str, ttl_s: float) -> None:
        """Nothing to ask: the next prompt loads the checkpoint into the room made for it."""

    async def async_unload(self, name: str) -> None:
        """``POST /free``: unload the models and empty PyTorch's cache."""
        try:
            await self._server.free(unload_models=True, free_memory=True)
        except ComfyUIError as err:
            raise BackendError(err.message) from None


def _devices(stats: Any) -> list[dict[str, Any]]:
    devices = stats.get("devices") if isinstance(stats, dict) else None
    return [device for device in devices or () if isinstance(device, dict)]


def _bytes(device: dict[str, Any], key: str) -> int:
    value = device.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
