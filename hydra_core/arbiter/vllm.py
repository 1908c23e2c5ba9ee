"""vLLM in sleep mode: a vLLM server holds one model for its life, and with
``--enable-sleep-mode`` (and ``VLLM_SERVER_DEV_MODE=1``, which exposes the endpoints) it lets
the GPU go without stopping.

``GET /v1/models`` names the model, ``GET /is_sleeping`` answers ``{"is_sleeping": bool}``,
``POST /sleep?level=1`` offloads the weights to CPU memory and drops the KV cache (level 2
drops the weights too), ``POST /wake_up`` brings them back: to the arbiter, a sleeping server's
model is unloaded, and waking it up is a load (a fraction of a second from level 1).
"""

from __future__ import annotations

from .backend import BackendError, BackendModel, HttpBackend, RunningModel


class VllmBackend(HttpBackend):
    """One vLLM server with sleep mode."""

    kind = "vllm"
    # Level 1 keeps the weights in CPU memory: waking up is fast, and needs that much RAM.
    sleep_level = 1

    async def async_models(self) -> list[BackendModel]:
        """``GET /v1/models``: the one model the server holds."""
        body = await self.request("GET", "/v1/models")
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise BackendError(f"vLLM at {self.server} answered /v1/models without a data list")
        return [
            BackendModel(name=str(model["id"]))
            for model in body["data"]
            if isinstance(model, dict) and model.get("id")
        ]

    async def async_running(self) -> dict[str, RunningModel]:
        """Its model while the server is awake."""
        body = await self.request("GET", "/is_sleeping")
        if not isinstance(body, dict) or not isinstance(body.get("is_sleeping"), bool):
            raise BackendError(
                f"vLLM at {self.server} has no sleep mode (start it with --enable-sleep-mode"
                " and VLLM_SERVER_DEV_MODE=1)"
            )
        if body["is_sleeping"]:
            return {}
        return {model.name: RunningModel(name=model.name) for model in await self.async_models()}

    async def async_load(self, name: str, ttl_s: float) -> None:
        """``POST /wake_up``."""
        await self.request("POST", "/wake_up", timeout_s=self.load_timeout_s)

    async def async_unload(self, name: str) -> None:
        """``POST /sleep?level=1``."""
        await self.request(
            "POST", f"/sleep?level={self.sleep_level}", timeout_s=self.load_timeout_s
        )
