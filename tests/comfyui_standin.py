"""A ComfyUI stand-in for tests: ComfyUI's HTTP and WebSocket API on 127.0.0.1, images by Pillow.

ComfyUI cannot be installed here (it is not on PyPI and needs model weights), so this server
answers what ComfyUI's ``server.py`` answers, with the same shapes, taken from its source:

- ``POST /prompt`` validates the graph as ``execution.validate_prompt`` does, against
  ``OBJECT_INFO`` (the real ``INPUT_TYPES`` / ``RETURN_TYPES`` of the nodes in ``nodes.py``; the
  checkpoint list is the stand-in's ``checkpoints``, ``LoadImage``'s list its uploaded files),
  and refuses with ComfyUI's ``{"error": {...}, "node_errors": {...}}`` and HTTP 400;
- a prompt runs as ``main.prompt_worker`` runs it, sending to the submitting ``client_id``:
  ``status``, ``execution_start``, ``execution_cached``, then per node ``executing`` (with
  ``progress`` per sampler step and ``executed`` for output nodes), ``execution_success`` (or
  ``execution_error`` / ``execution_interrupted``), its ``/history`` entry, and last
  ``executing`` with ``node: null``;
- ``/history``, ``/view``, ``/upload/image``, ``/object_info``, ``/interrupt``, ``/queue``,
  ``/free``, ``/system_stats`` and ``/ws?clientId=`` (which, like ComfyUI, re-sends the running
  node to a client that reconnects).

What differs: no model runs. ``SaveImage`` writes a PNG drawn from the seed, prompt, model and
size (same inputs, same bytes), and nothing is cached between prompts (``execution_cached``
always lists no nodes). Tests steer it: ``fail_node_type`` fails the next prompt at that node
type, ``stall`` holds prompts at the sampler until interrupted, ``drop_websockets_after``
closes the sockets after that many progress messages (``refuse_websockets`` keeps them shut).
``submissions`` counts each prompt posted, by content; ``calls`` counts each route.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
import contextlib
import copy
import hashlib
import io
import json
import random
import time
from typing import Any, Self
import uuid

from aiohttp import WSMsgType, web
from PIL import Image, ImageDraw
from PIL.PngImagePlugin import PngInfo

MAX_RESOLUTION = 16384
SAMPLERS = [
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2",
    "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral",
    "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu",
    "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm", "ddim", "uni_pc", "uni_pc_bh2",
]  # fmt: skip
SCHEDULERS = ["normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform", "beta"]
UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]

# name: (required inputs, outputs, output node?); inputs as nodes.py's INPUT_TYPES declares them,
# with "CHECKPOINTS" / "INPUT_FILES" standing for the lists ComfyUI reads from its folders.
_NODES: dict[str, tuple[dict[str, list[Any]], list[str], bool]] = {
    "CheckpointLoaderSimple": ({"ckpt_name": ["CHECKPOINTS"]}, ["MODEL", "CLIP", "VAE"], False),
    "CLIPTextEncode": (
        {"text": ["STRING", {"multiline": True, "dynamicPrompts": True}], "clip": ["CLIP"]},
        ["CONDITIONING"],
        False,
    ),
    "EmptyLatentImage": (
        {
            "width": ["INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8}],
            "height": ["INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8}],
            "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}],
        },
        ["LATENT"],
        False,
    ),
    "KSampler": (
        {
            "model": ["MODEL"],
            "seed": ["INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF}],
            "steps": ["INT", {"default": 20, "min": 1, "max": 10000}],
            "cfg": [
                "FLOAT",
                {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01},
            ],
            "sampler_name": [SAMPLERS],
            "scheduler": [SCHEDULERS],
            "positive": ["CONDITIONING"],
            "negative": ["CONDITIONING"],
            "latent_image": ["LATENT"],
            "denoise": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}],
        },
        ["LATENT"],
        False,
    ),
    "VAEDecode": ({"samples": ["LATENT"], "vae": ["VAE"]}, ["IMAGE"], False),
    "VAEEncode": ({"pixels": ["IMAGE"], "vae": ["VAE"]}, ["LATENT"], False),
    "LoadImage": ({"image": ["INPUT_FILES", {"image_upload": True}]}, ["IMAGE", "MASK"], False),
    "ImageScale": (
        {
            "image": ["IMAGE"],
            "upscale_method": [UPSCALE_METHODS],
            "width": ["INT", {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 1}],
            "height": ["INT", {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 1}],
            "crop": [["disabled", "center"]],
        },
        ["IMAGE"],
        False,
    ),
    "SaveImage": (
        {
            "images": ["IMAGE"],
            "filename_prefix": ["STRING", {"default": "ComfyUI"}],
        },
        [],
        True,
    ),
    "PreviewImage": ({"images": ["IMAGE"]}, [], True),
}


def object_info(checkpoints: list[str], input_files: list[str]) -> dict[str, Any]:
    """``GET /object_info`` as ComfyUI builds it in ``server.node_info``."""
    folders = {"CHECKPOINTS": sorted(checkpoints), "INPUT_FILES": sorted(input_files)}
    info = {}
    for name, (required, outputs, output_node) in _NODES.items():
        inputs = {
            key: [folders.get(spec[0], spec[0]) if isinstance(spec[0], str) else spec[0], *spec[1:]]
            for key, spec in required.items()
        }
        hidden = (
            {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"} if name == "SaveImage" else {}
        )
        info[name] = {
            "input": {"required": inputs, **({"hidden": hidden} if hidden else {})},
            "input_order": {"required": list(inputs)},
            "output": outputs,
            "output_is_list": [False] * len(outputs),
            "output_name": outputs,
            "name": name,
            "display_name": name,
            "description": "",
            "python_module": "nodes",
            "category": "stand-in",
            "output_node": output_node,
        }
    return info


def _error(kind: str, message: str, details: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": dict(extra)}


def validate_prompt(
    prompt: Any, info: Mapping[str, Any], input_files: set[str]
) -> tuple[dict[str, Any] | None, dict[str, Any], list[str]]:
    """``execution.validate_prompt``: (error or None, node_errors, output node ids)."""
    if not isinstance(prompt, dict):
        return _error("invalid_prompt", "Invalid prompt", "", {}), {}, []
    outputs = []
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            message = "Cannot execute because a node is missing the class_type property."
            return _error("invalid_prompt", message, f"Node ID '#{node_id}'", {}), {}, []
        if node["class_type"] not in info:
            message = f"Cannot execute because node {node['class_type']} does not exist."
            return _error("invalid_prompt", message, f"Node ID '#{node_id}'", {}), {}, []
        if info[node["class_type"]]["output_node"]:
            outputs.append(node_id)
    if not outputs:
        return _error("prompt_no_outputs", "Prompt has no outputs", "", {}), {}, []
    node_errors: dict[str, Any] = {}
    for node_id, node in prompt.items():
        errors = _node_errors(prompt, node, info, input_files)
        if errors:
            node_errors[node_id] = {
                "errors": errors,
                "dependent_outputs": outputs,
                "class_type": node["class_type"],
            }
    if node_errors:
        details = "\n".join(
            f"{error['message']}: {error['details']}"
            for node in node_errors.values()
            for error in node["errors"]
        )
        message = "Prompt outputs failed validation"
        return _error("prompt_outputs_failed_validation", message, details, {}), node_errors, []
    return None, {}, outputs


def _node_errors(
    prompt: Mapping[str, Any], node: Mapping[str, Any], info: Mapping[str, Any], files: set[str]
) -> list[dict[str, Any]]:
    errors = []
    inputs = node.get("inputs") or {}
    for name, config in info[node["class_type"]]["input"]["required"].items():
        extra: dict[str, Any] = {"input_name": name, "input_config": config}
        if name not in inputs:
            errors.append(
                _error("required_input_missing", "Required input is missing", name, extra)
            )
            continue
        value, kind = inputs[name], config[0]
        if isinstance(value, list):
            if len(value) != 2 or value[0] not in prompt:
                errors.append(
                    _error(
                        "bad_linked_input",
                        "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                        name,
                        {**extra, "received_value": value},
                    )
                )
                continue
            returned = info[prompt[value[0]]["class_type"]]["output"]
            received = returned[value[1]] if 0 <= value[1] < len(returned) else None
            if received != kind:
                errors.append(
                    _error(
                        "return_type_mismatch",
                        "Return type mismatch between linked nodes",
                        f"{name}, received_type({received}) mismatch input_type({kind})",
                        {**extra, "received_type": received, "linked_node": value},
                    )
                )
            continue
        if node["class_type"] == "LoadImage":  # has VALIDATE_INPUTS: the file must exist
            if value not in files:
                errors.append(
                    _error(
                        "custom_validation_failed",
                        "Custom validation failed for node",
                        f"{name} - Invalid image file: {value}",
                        {**extra, "received_value": value},
                    )
                )
            continue
        errors.extend(_value_errors(name, value, kind, config, extra))
    return errors


def _value_errors(  # noqa: PLR0911 - one return per refusal, as ComfyUI's
    name: str, value: Any, kind: Any, config: list[Any], extra: dict[str, Any]
) -> list[dict[str, Any]]:
    if isinstance(kind, list):
        if value not in kind:
            return [
                _error(
                    "value_not_in_list",
                    "Value not in list",
                    f"{name}: '{value}' not in {kind}",
                    {**extra, "received_value": value},
                )
            ]
        return []
    converters = {"INT": int, "FLOAT": float, "STRING": str}
    if kind not in converters:
        return []
    try:
        value = converters[kind](value)
    except (TypeError, ValueError) as err:
        return [
            _error(
                "invalid_input_type",
                f"Failed to convert an input value to a {kind} value",
                f"{name}, {value}, {err}",
                {**extra, "received_value": value, "exception_message": str(err)},
            )
        ]
    limits = config[1] if len(config) > 1 else {}
    if "min" in limits and value < limits["min"]:
        message = f"Value {value} smaller than min of {limits['min']}"
        return [_error("value_smaller_than_min", message, name, {**extra, "received_value": value})]
    if "max" in limits and value > limits["max"]:
        message = f"Value {value} bigger than max of {limits['max']}"
        return [_error("value_bigger_than_max", message, name, {**extra, "received_value": value})]
    return []


class ExecutionFailure(Exception):
    """A node failed while the prompt ran."""


class Interrupted(Exception):
    """``/interrupt`` stopped the prompt."""


class ComfyUIStandIn:
    """The stand-in server; ``async with ComfyUIStandIn() as comfy:`` then ``comfy.url``."""

    def __init__(self, checkpoints: list[str] | None = None, *, step_delay: float = 0.0) -> None:
        self.checkpoints = checkpoints or ["sd_xl_base_1.0.safetensors"]
        self.step_delay = step_delay
        self.fail_node_type: str | None = None
        self.stall = False
        self.drop_websockets_after: int | None = None
        self.refuse_websockets = False
        self.submissions: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.uploads: dict[str, bytes] = {}
        self.outputs: dict[str, bytes] = {}
        self.history: dict[str, dict[str, Any]] = {}
        self.freed: list[dict[str, Any]] = []
        self._queue: list[tuple[int, str, dict[str, Any], dict[str, Any], list[str]]] = []
        self._running: tuple[int, str, dict[str, Any], dict[str, Any], list[str]] | None = None
        self._wake = asyncio.Event()
        self._interrupt = asyncio.Event()
        self._sockets: dict[str, web.WebSocketResponse] = {}
        self._client_id: str | None = None
        self._last_node: str | None = None
        self._number = 0
        self._counter = 0
        self._runner: web.AppRunner | None = None
        self._worker: asyncio.Task[None] | None = None
        self.url = ""

    async def __aenter__(self) -> Self:
        app = web.Application(middlewares=[self._count])
        app.add_routes(
            [
                web.get("/ws", self._ws),
                web.get("/prompt", self._get_prompt),
                web.post("/prompt", self._post_prompt),
                web.get("/object_info", self._object_info),
                web.get("/history", self._all_history),
                web.get("/history/{prompt_id}", self._history),
                web.get("/view", self._view),
                web.post("/upload/image", self._upload),
                web.get("/queue", self._get_queue),
                web.post("/queue", self._post_queue),
                web.post("/interrupt", self._post_interrupt),
                web.post("/free", self._free),
                web.get("/system_stats", self._system_stats),
            ]
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._worker = asyncio.create_task(self._prompt_worker())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._worker is not None:
            self._worker.cancel()
        for socket in list(self._sockets.values()):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def queue_remaining(self) -> int:
        return len(self._queue) + (self._running is not None)

    @web.middleware
    async def _count(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.calls[f"{request.method} {request.path}"] += 1
        response: web.StreamResponse = await handler(request)
        return response

    # --- the WebSocket -------------------------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if self.refuse_websockets:
            return web.Response(status=503)
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        sid = request.query.get("clientId") or uuid.uuid4().hex
        self._sockets[sid] = socket
        try:
            status = {
                "status": {"exec_info": {"queue_remaining": self.queue_remaining}},
                "sid": sid,
            }
            await self._send("status", status, sid)
            if self._client_id == sid and self._last_node is not None:
                await self._send("executing", {"node": self._last_node}, sid)
            async for message in socket:
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            if self._sockets.get(sid) is socket:
                del self._sockets[sid]
        return socket

    async def _send(self, event: str, data: dict[str, Any], sid: str | None) -> None:
        targets = list(self._sockets.values()) if sid is None else [self._sockets.get(sid)]
        for socket in targets:
            if socket is not None and not socket.closed:
                with contextlib.suppress(ConnectionError):
                    await socket.send_json({"type": event, "data": data})

    async def _drop_sockets(self) -> None:
        for socket in list(self._sockets.values()):
            await socket.close()
        self._sockets.clear()

    # --- the queue -----------------------------------------------------------------------------

    def _queue_info(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": self.queue_remaining}}

    async def _get_prompt(self, request: web.Request) -> web.Response:
        return web.json_response(self._queue_info())

    async def _post_prompt(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "prompt" not in body:
            error = _error("no_prompt", "No prompt provided", "No prompt provided", {})
            return web.json_response({"error": error, "node_errors": {}}, status=400)
        prompt = body["prompt"]
        self.submissions[hashlib.sha256(_canonical(prompt)).hexdigest()] += 1
        error, node_errors, outputs = validate_prompt(
            prompt, object_info(self.checkpoints, list(self.uploads)), set(self.uploads)
        )
        if error is not None:
            return web.json_response({"error": error, "node_errors": node_errors}, status=400)
        prompt_id = str(body.get("prompt_id") or uuid.uuid4())
        extra_data = dict(body.get("extra_data") or {})
        if "client_id" in body:
            extra_data["client_id"] = body["client_id"]
        number = self._number
        self._number += 1
        self._queue.append((number, prompt_id, prompt, extra_data, outputs))
        self._wake.set()
        await self._send("status", {"status": self._queue_info()}, None)
        return web.json_response({"prompt_id": prompt_id, "number": number, "node_errors": {}})

    async def _get_queue(self, request: web.Request) -> web.Response:
        running = [list(self._running)] if self._running else []
        return web.json_response(
            {"queue_running": running, "queue_pending": [list(item) for item in self._queue]}
        )

    async def _post_queue(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("clear"):
            self._queue.clear()
        for prompt_id in body.get("delete") or []:
            self._queue = [item for item in self._queue if item[1] != prompt_id]
        return web.Response()

    async def _post_interrupt(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            body = {}
        prompt_id = body.get("prompt_id") if isinstance(body, dict) else None
        if self._running is not None and prompt_id in (None, self._running[1]):
            self._interrupt.set()
        return web.Response()

    async def _free(self, request: web.Request) -> web.Response:
        self.freed.append(await request.json())
        return web.Response()

    async def _system_stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "system": {"os": "posix", "comfyui_version": "stand-in", "ram_total": 0},
                "devices": [{"name": "stand-in", "type": "cpu", "vram_total": 0, "vram_free": 0}],
            }
        )

    async def _object_info(self, request: web.Request) -> web.Response:
        return web.json_response(object_info(self.checkpoints, list(self.uploads)))

    # --- results -------------------------------------------------------------------------------

    async def _all_history(self, request: web.Request) -> web.Response:
        return web.json_response(self.history)

    async def _history(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry else {})

    async def _view(self, request: web.Request) -> web.Response:
        filename = request.query.get("filename", "")
        if not filename or filename.startswith("/") or ".." in filename:
            return web.Response(status=400)
        folder = request.query.get("type", "output")
        subfolder = request.query.get("subfolder", "")
        key = f"{subfolder}/{filename}" if subfolder else filename
        data = (self.outputs if folder == "output" else self.uploads).get(key)
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="image/png")

    async def _upload(self, request: web.Request) -> web.Response:
        post = await request.post()
        image = post.get("image")
        if not isinstance(image, web.FileField) or not image.filename:
            return web.Response(status=400)
        name = image.filename
        data = image.file.read()
        if post.get("overwrite") not in ("true", "1"):
            stem, dot, suffix = name.rpartition(".")
            counter = 1
            while name in self.uploads and self.uploads[name] != data:
                name = f"{stem} ({counter}){dot}{suffix}"
                counter += 1
        self.uploads[name] = data
        return web.json_response({"name": name, "subfolder": "", "type": "input"})

    # --- running prompts -----------------------------------------------------------------------

    async def _prompt_worker(self) -> None:
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            self._queue.sort(key=lambda item: item[0])
            self._running = self._queue.pop(0)
            _, prompt_id, prompt, extra_data, outputs = self._running
            self._interrupt.clear()
            self._client_id = extra_data.get("client_id")
            messages: list[list[Any]] = []
            ui: dict[str, Any] = {}
            success = await self._execute(prompt_id, prompt, outputs, messages, ui)
            self.history[prompt_id] = {
                "prompt": [self._running[0], prompt_id, prompt, extra_data, outputs],
                "outputs": ui,
                "status": {
                    "status_str": "success" if success else "error",
                    "completed": success,
                    "messages": messages,
                },
                "meta": {node: {"node_id": node, "display_node": node} for node in ui},
            }
            self._running = None
            self._last_node = None
            await self._send("executing", {"node": None, "prompt_id": prompt_id}, self._client_id)
            await self._send("status", {"status": self._queue_info()}, None)

    async def _message(
        self, event: str, data: dict[str, Any], messages: list[list[Any]] | None = None
    ) -> None:
        if messages is not None:
            messages.append([event, {**data, "timestamp": int(time.time() * 1000)}])
        await self._send(event, data, self._client_id)

    async def _execute(
        self,
        prompt_id: str,
        prompt: dict[str, Any],
        outputs: list[str],
        messages: list[list[Any]],
        ui: dict[str, Any],
    ) -> bool:
        await self._message("execution_start", {"prompt_id": prompt_id}, messages)
        await self._message("execution_cached", {"nodes": [], "prompt_id": prompt_id}, messages)
        values: dict[str, list[Any]] = {}
        executed: list[str] = []
        node_id = ""
        try:
            for node_id in _execution_order(prompt, outputs):
                self._last_node = node_id
                await self._message(
                    "executing", {"node": node_id, "display_node": node_id, "prompt_id": prompt_id}
                )
                node = prompt[node_id]
                if node["class_type"] == self.fail_node_type:
                    self.fail_node_type = None
                    raise ExecutionFailure(f"Stand-in failure in {node['class_type']}")
                inputs = {
                    key: values[str(value[0])][value[1]] if isinstance(value, list) else value
                    for key, value in node["inputs"].items()
                }
                values[node_id] = await self._run_node(prompt_id, node_id, node, inputs, ui)
                executed.append(node_id)
        except ExecutionFailure as err:
            await self._message(
                "execution_error",
                {
                    "prompt_id": prompt_id,
                    "node_id": node_id,
                    "node_type": prompt[node_id]["class_type"],
                    "executed": executed,
                    "exception_message": str(err),
                    "exception_type": "RuntimeError",
                    "traceback": [],
                    "current_inputs": {},
                    "current_outputs": {},
                },
                messages,
            )
            return False
        except Interrupted:
            await self._message(
                "execution_interrupted",
                {
                    "prompt_id": prompt_id,
                    "node_id": node_id,
                    "node_type": prompt[node_id]["class_type"],
                    "executed": executed,
                },
                messages,
            )
            return False
        await self._message("execution_success", {"prompt_id": prompt_id}, messages)
        return True

    async def _run_node(  # noqa: PLR0911 - one branch per node type
        self,
        prompt_id: str,
        node_id: str,
        node: Mapping[str, Any],
        inputs: dict[str, Any],
        ui: dict[str, Any],
    ) -> list[Any]:
        kind = node["class_type"]
        if kind == "CheckpointLoaderSimple":
            model = inputs["ckpt_name"]
            return [model, model, model]
        if kind == "CLIPTextEncode":
            return [inputs["text"]]
        if kind == "EmptyLatentImage":
            return [{"size": (inputs["width"], inputs["height"]), "source": "empty"}]
        if kind == "LoadImage":
            image = Image.open(io.BytesIO(self.uploads[inputs["image"]])).convert("RGB")
            return [image, None]
        if kind == "ImageScale":
            return [inputs["image"].resize((inputs["width"], inputs["height"]))]
        if kind == "VAEEncode":
            pixels = inputs["pixels"]
            digest = hashlib.sha256(pixels.tobytes()).hexdigest()
            return [{"size": pixels.size, "source": digest}]
        if kind == "KSampler":
            await self._sample(prompt_id, node_id, int(inputs["steps"]))
            recipe = [
                inputs["seed"], inputs["positive"], inputs["negative"], inputs["model"],
                inputs["latent_image"]["source"], inputs["denoise"],
            ]  # fmt: skip
            return [{"size": inputs["latent_image"]["size"], "recipe": recipe}]
        if kind == "VAEDecode":
            return [_draw(inputs["samples"]["size"], inputs["samples"]["recipe"])]
        if kind in ("SaveImage", "PreviewImage"):
            saved = self._save(inputs["images"], inputs.get("filename_prefix", "ComfyUI"), node)
            ui[node_id] = {"images": [saved]}
            await self._message(
                "executed",
                {
                    "node": node_id,
                    "display_node": node_id,
                    "output": ui[node_id],
                    "prompt_id": prompt_id,
                },
            )
            return []
        raise ExecutionFailure(f"The stand-in cannot run {kind}")

    async def _sample(self, prompt_id: str, node_id: str, steps: int) -> None:
        for step in range(1, steps + 1):
            if self._interrupt.is_set():
                raise Interrupted
            if self.stall:
                await self._interrupt.wait()
                raise Interrupted
            await self._message(
                "progress", {"value": step, "max": steps, "prompt_id": prompt_id, "node": node_id}
            )
            if self.drop_websockets_after is not None and step >= self.drop_websockets_after:
                self.drop_websockets_after = None
                await self._drop_sockets()
            await asyncio.sleep(self.step_delay)

    def _save(self, image: Image.Image, prefix: str, node: Mapping[str, Any]) -> dict[str, str]:
        subfolder, _, stem = prefix.rpartition("/")
        self._counter += 1
        filename = f"{stem}_{self._counter:05}_.png"
        metadata = PngInfo()
        metadata.add_text("prompt", json.dumps(node))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", pnginfo=metadata)
        self.outputs[f"{subfolder}/{filename}" if subfolder else filename] = buffer.getvalue()
        return {"filename": filename, "subfolder": subfolder, "type": "output"}


def _canonical(prompt: Any) -> bytes:
    return json.dumps(prompt, sort_keys=True).encode()


def _execution_order(prompt: Mapping[str, Any], outputs: list[str]) -> list[str]:
    """Each output's inputs first, depth first, each node once."""
    order: list[str] = []

    def visit(node_id: str) -> None:
        if node_id in order:
            return
        for value in prompt[node_id]["inputs"].values():
            if isinstance(value, list):
                visit(str(value[0]))
        order.append(node_id)

    for output in sorted(outputs):
        visit(output)
    return order


def _draw(size: tuple[int, int], recipe: list[Any]) -> Image.Image:
    """A picture that only the recipe (seed, prompts, model, source, denoise) decides."""
    rng = random.Random(hashlib.sha256(_canonical(copy.deepcopy(recipe))).digest())  # noqa: S311 (pictures, not secrets)
    image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = rng.randrange(size[0]), rng.randrange(size[1])
        x1, y1 = rng.randrange(x0, size[0] + 1), rng.randrange(y0, size[1] + 1)
        draw.ellipse((x0, y0, x1, y1), fill=tuple(rng.randrange(256) for _ in range(3)))
    return image
