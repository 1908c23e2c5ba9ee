"""Stand-ins for the model servers the arbiter drives: Ollama, a llama.cpp router, llama-swap
and vLLM on 127.0.0.1, with the shapes of their real APIs, whose models take memory on a
simulated GPU.

None of the servers can run here (no GPU, no weights), so each answers what the real one answers:

- Ollama (``docs/api.md`` of ollama/ollama): ``GET /api/tags`` and ``GET /api/ps`` (``size``,
  ``size_vram``, ``expires_at`` as Go's RFC 3339 with nanoseconds; a ``keep_alive`` of -1 shows
  an expiry centuries away), ``POST /api/generate`` without a prompt loads the model
  (``done_reason: load``) for ``keep_alive`` (seconds, or a Go duration: ``5m``; default 5
  minutes), ``keep_alive: 0`` unloads it (``done_reason: unload``) and the runner lets its
  memory go a moment later; an unknown model is a 404 ``{"error": "model 'x' not found"}``.
- llama.cpp's router (``tools/server/README.md``, router mode): ``GET /models`` lists every
  model with ``status.value`` ``unloaded`` / ``loading`` / ``loaded`` (``failed: true`` and
  ``exit_code`` once its process died), ``POST /models/load`` and ``/models/unload`` take
  ``{"model": id}`` and answer ``{"success": true}`` at once while the model's process starts
  or stops behind them.
- llama-swap (``internal/server`` of mostlygeek/llama-swap at v250): ``GET /v1/models`` lists
  the configured models (``meta.llamaswap.type``: ``model``; a peer's model on another host
  is listed too, as ``peer``), ``GET /running`` answers ``{"running": [{"model", "state",
  ...}]}`` for each process not stopped (``starting``, ``ready``, ``stopping``), a request
  under ``/upstream/{model}/`` starts the model's process, waits until it is ready and passes
  the request on (the model's server answers ``/`` with its web page), ``POST
  /api/models/unload/{model}`` stops one and answers ``OK`` once it has; llama-swap's own
  errors are ``{"src": "llama-swap", "error": {"message", "type", "code"}}``.

What differs: nothing is computed. A load takes ``load_delay`` seconds and then holds the
model's size on the simulated GPU (``SimulatedProbe.allocate``); an unload gives it back after
``release_delay``. A load that does not fit in the card's memory is what a real server does on
a full card: an out-of-memory failure, counted in ``ooms``. ``crash_next_load`` makes the next
load die half way (Ollama's connection drops, llama.cpp's and llama-swap's model process
exits).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
import re
import time
from typing import Any, Self

from aiohttp import web

from hydra_core.gpu import SimulatedProbe

GIB = 1024**3
# Ollama's default keep_alive.
DEFAULT_KEEP_ALIVE_S = 300.0
# What Ollama shows for keep_alive -1: now plus Go's longest duration (about 292 years).
FOREVER_S = 292 * 365 * 86400.0
OOM = "out of memory"


@dataclass
class _Loaded:
    until: float


class _Server:
    """What both stand-ins share: the simulated GPU, the models, the counts, the HTTP server."""

    owner: str

    def __init__(
        self,
        probe: SimulatedProbe,
        models: dict[str, float],
        *,
        gpu: int = 0,
        load_delay: float = 0.0,
        release_delay: float = 0.0,
    ) -> None:
        self.probe = probe
        self.gpu = gpu
        # Each model's size in GiB (on disk and in VRAM: the stand-ins offload every layer).
        self.sizes = {name: int(gib * GIB) for name, gib in models.items()}
        self.load_delay = load_delay
        self.release_delay = release_delay
        self.crash_next_load = False
        self.ooms = 0
        self.loads = 0
        self.unloads = 0
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.url = ""

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for task in self._tasks:
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    def _later(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _key(self, name: str) -> str:
        return f"{self.owner}:{name}"

    def _allocate(self, name: str) -> bool:
        """Take the model's memory; False (an out-of-memory failure) if the card is full."""
        gpu = self.probe.read().gpus[self.gpu]
        free = (gpu.memory_free_bytes or 0) + self.probe.allocated(self.gpu).get(self._key(name), 0)
        if self.sizes[name] > free:
            self.ooms += 1
            return False
        self.probe.allocate(self.gpu, self._key(name), self.sizes[name])
        self.loads += 1
        return True

    async def _release(self, name: str) -> None:
        if self.release_delay:
            await asyncio.sleep(self.release_delay)
        self.probe.release(self.gpu, self._key(name))

    def holds(self, name: str) -> bool:
        """Whether the model's memory is taken on the GPU now."""
        return self._key(name) in self.probe.allocated(self.gpu)


def _go_time(unix: float) -> str:
    """Unix time as Go marshals a time.Time: RFC 3339 with nanoseconds and the local offset."""
    moment = datetime.fromtimestamp(min(unix, 253402300799.0), UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def _keep_alive(value: Any) -> float:
    """Seconds from Ollama's keep_alive: a number of seconds or a Go duration; negative: forever."""
    if value is None:
        return DEFAULT_KEEP_ALIVE_S
    if isinstance(value, int | float) and not isinstance(value, bool):
        return FOREVER_S if value < 0 else float(value)
    text = str(value).strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return _keep_alive(float(text))
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    total = 0.0
    for number, unit in re.findall(r"(-?\d+(?:\.\d+)?)(ms|h|m|s)", text):
        total += float(number) * units[unit]
    return FOREVER_S if total < 0 else total


class OllamaStandIn(_Server):
    """An Ollama server whose models take memory on a simulated GPU."""

    owner = "ollama"

    def __init__(self, probe: SimulatedProbe, models: dict[str, float], **kwargs: Any) -> None:
        super().__init__(probe, models, **kwargs)
        self.loaded: dict[str, _Loaded] = {}
        self.requests: list[dict[str, Any]] = []
        # Seconds /api/ps takes to answer what it saw when asked (a slow, busy server).
        self.ps_delay = 0.0

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/tags", self._tags)
        app.router.add_get("/api/ps", self._ps)
        app.router.add_post("/api/generate", self._generate)

    def _details(self) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": "llama",
            "families": ["llama"],
            "parameter_size": "8.0B",
            "quantization_level": "Q4_K_M",
        }

    async def _tags(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "models": [
                    {
                        "name": name,
                        "model": name,
                        "modified_at": "2026-11-30T10:00:00.000000000Z",
                        "size": size,
                        "digest": f"{abs(hash(name)):064x}"[:64],
                        "details": self._details(),
                    }
                    for name, size in self.sizes.items()
                ]
            }
        )

    def _expire(self) -> None:
        now = time.time()
        for name, loaded in list(self.loaded.items()):
            if loaded.until <= now:
                del self.loaded[name]
                self._later(self._release(name))

    async def _ps(self, request: web.Request) -> web.Response:
        self._expire()
        seen = dict(self.loaded)
        await asyncio.sleep(self.ps_delay)
        return web.json_response(
            {
                "models": [
                    {
                        "name": name,
                        "model": name,
                        "size": self.sizes[name],
                        "digest": f"{abs(hash(name)):064x}"[:64],
                        "details": self._details(),
                        "expires_at": _go_time(loaded.until),
                        "size_vram": self.sizes[name],
                        "context_length": 4096,
                    }
                    for name, loaded in seen.items()
                ]
            }
        )

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self._expire()
        name = body.get("model")
        if name not in self.sizes:
            return web.json_response({"error": f"model '{name}' not found"}, status=404)
        keep_alive = _keep_alive(body.get("keep_alive"))
        created = _go_time(time.time())
        if keep_alive == 0:
            if self.loaded.pop(name, None) is not None:
                self.unloads += 1
                self._later(self._release(name))
            return web.json_response(
                {
                    "model": name,
                    "created_at": created,
                    "response": "",
                    "done": True,
                    "done_reason": "unload",
                }
            )
        if name not in self.loaded:
            if self.crash_next_load:
                self.crash_next_load = False
                await asyncio.sleep(self.load_delay / 2)
                assert request.transport is not None
                request.transport.close()  # the server died half way through the load
                return web.Response()
            await asyncio.sleep(self.load_delay)
            if not self._allocate(name):
                return web.json_response(
                    {
                        "error": "llama runner process has terminated: cudaMalloc failed:"
                        " out of memory"
                    },
                    status=500,
                )
        self.loaded[name] = _Loaded(until=time.time() + keep_alive)
        return web.json_response(
            {
                "model": name,
                "created_at": created,
                "response": "",
                "done": True,
                "done_reason": "load",
            }
        )


class LlamaCppRouterStandIn(_Server):
    """A llama.cpp server in router mode whose models take memory on a simulated GPU."""

    owner = "llamacpp"

    def __init__(self, probe: SimulatedProbe, models: dict[str, float], **kwargs: Any) -> None:
        super().__init__(probe, models, **kwargs)
        self.status: dict[str, dict[str, Any]] = {name: {"value": "unloaded"} for name in models}

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/models", self._models)
        app.router.add_post("/models/load", self._load)
        app.router.add_post("/models/unload", self._unload)

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "data": [
                    {
                        "id": name,
                        "object": "model",
                        "owned_by": "llamacpp",
                        "created": 1764460800,
                        "in_cache": False,
                        "path": f"/models/{name}.gguf",
                        "status": {**status, "args": ["llama-server", "-ngl", "99"]},
                    }
                    for name, status in self.status.items()
                ],
                "object": "list",
            }
        )

    def _error(self, message: str) -> web.Response:
        return web.json_response(
            {"error": {"code": 400, "message": message, "type": "invalid_request_error"}},
            status=400,
        )

    async def _load(self, request: web.Request) -> web.Response:
        name = (await request.json()).get("model")
        if name not in self.status:
            return self._error("model not found")
        if self.status[name]["value"] in ("loaded", "loading"):
            return self._error("model is already loaded")
        self.status[name] = {"value": "loading"}
        self._later(self._spawn(name))
        return web.json_response({"success": True})

    async def _spawn(self, name: str) -> None:
        crash, self.crash_next_load = self.crash_next_load, False
        await asyncio.sleep(self.load_delay / 2 if crash else self.load_delay)
        if crash or not self._allocate(name):
            self.status[name] = {"value": "unloaded", "failed": True, "exit_code": 1}
            return
        self.status[name] = {"value": "loaded"}

    async def _unload(self, request: web.Request) -> web.Response:
        name = (await request.json()).get("model")
        if name not in self.status:
            return self._error("model not found")
        if self.status[name]["value"] != "loaded":
            return self._error("model is not loaded")
        self.status[name] = {"value": "unloading"}
        self.unloads += 1
        self._later(self._stop(name))
        return web.json_response({"success": True})

    async def _stop(self, name: str) -> None:
        await self._release(name)
        self.status[name] = {"value": "unloaded"}


class LlamaSwapStandIn(_Server):
    """A llama-swap proxy whose models take memory on a simulated GPU. ``swap``: its default
    configuration, every model in one group with ``swap: true``, so a load stops the model
    that ran before; off, as with a group of ``swap: false``, models run side by side."""

    owner = "llamaswap"

    def __init__(
        self, probe: SimulatedProbe, models: dict[str, float], *, swap: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(probe, models, **kwargs)
        self.swap = swap
        self.state: dict[str, str] = {}
        self.upstream_paths: list[str] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/running", self._running)
        app.router.add_route("*", "/upstream/{model}/{path:.*}", self._upstream)
        app.router.add_post("/api/models/unload/{model}", self._unload)

    def _error(self, status: int, message: str, code: str) -> web.Response:
        return web.json_response(
            {
                "src": "llama-swap",
                "error": {"message": message, "type": "server_error", "param": None, "code": code},
            },
            status=status,
        )

    def _record(self, model_id: str, kind: str, status: str) -> dict[str, Any]:
        return {
            "id": model_id,
            "object": "model",
            "created": int(time.time()),
            "owned_by": "llama-swap",
            "status": {"value": status},
            "meta": {"llamaswap": {"type": kind}},
        }

    async def _models(self, request: web.Request) -> web.Response:
        data = [
            self._record(name, "model", "loaded" if name in self.state else "unloaded")
            for name in self.sizes
        ]
        data.append(self._record("other-box/llama3", "peer", "unloaded"))
        return web.json_response({"object": "list", "data": sorted(data, key=lambda m: m["id"])})

    async def _running(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "running": [
                    {
                        "model": name,
                        "state": state,
                        "cmd": f"llama-server --port ${{PORT}} -m /models/{name}.gguf -ngl 99",
                        "proxy": "http://127.0.0.1:${PORT}",
                        "ttl": 0,
                        "name": "",
                        "description": "",
                    }
                    for name, state in sorted(self.state.items())
                ]
            }
        )

    async def _upstream(self, request: web.Request) -> web.Response:
        name = request.match_info["model"]
        self.upstream_paths.append("/" + request.match_info["path"])
        if name not in self.sizes:
            return self._error(404, "model not found", "not_found")
        if self.state.get(name) != "ready":
            if self.swap:
                for other in [other for other in self.state if other != name]:
                    await self._stop(other)
            self.state[name] = "starting"
            crash, self.crash_next_load = self.crash_next_load, False
            await asyncio.sleep(self.load_delay / 2 if crash else self.load_delay)
            if crash or not self._allocate(name):
                del self.state[name]
                return self._error(
                    500,
                    f"unspecific error: [{name}] upstream command exited prematurely"
                    if crash
                    else f"unspecific error: [{name}] {OOM}",
                    "internal_error",
                )
            self.state[name] = "ready"
        # What llama-server answers to / with its web UI.
        return web.Response(
            text="<!doctype html><title>llama.cpp</title>", content_type="text/html"
        )

    async def _unload(self, request: web.Request) -> web.Response:
        name = request.match_info["model"]
        if name not in self.sizes:
            return self._error(404, "model not found", "not_found")
        if name in self.state:
            await self._stop(name)
        return web.Response(text="OK")

    async def _stop(self, name: str) -> None:
        self.state[name] = "stopping"
        self.unloads += 1
        await self._release(name)
        del self.state[name]


class VllmStandIn(_Server):
    """A vLLM server with sleep mode (``--enable-sleep-mode``, ``VLLM_SERVER_DEV_MODE=1``)
    holding one model: awake from the start (its weights and KV cache on the simulated GPU),
    ``POST /sleep?level=1`` gives the memory back, ``POST /wake_up`` takes it again; both
    answer 200 with no body, ``GET /is_sleeping`` ``{"is_sleeping": bool}``."""

    owner = "vllm"

    def __init__(self, probe: SimulatedProbe, model: str, gib: float, **kwargs: Any) -> None:
        super().__init__(probe, {model: gib}, **kwargs)
        self.model = model
        self.sleeping = not self._allocate(model)

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/is_sleeping", self._is_sleeping)
        app.router.add_post("/sleep", self._sleep)
        app.router.add_post("/wake_up", self._wake_up)

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {
                        "id": self.model,
                        "object": "model",
                        "created": 1764460800,
                        "owned_by": "vllm",
                        "root": self.model,
                        "parent": None,
                        "max_model_len": 8192,
                    }
                ],
            }
        )

    async def _is_sleeping(self, request: web.Request) -> web.Response:
        return web.json_response({"is_sleeping": self.sleeping})

    async def _sleep(self, request: web.Request) -> web.Response:
        if not self.sleeping:
            self.sleeping = True
            self.unloads += 1
            await self._release(self.model)
        return web.Response()

    async def _wake_up(self, request: web.Request) -> web.Response:
        if self.sleeping:
            await asyncio.sleep(self.load_delay)
            if not self._allocate(self.model):
                return web.json_response(
                    {"error": "CUDA out of memory", "type": "InternalServerError"}, status=500
                )
            self.sleeping = False
        return web.Response()
