"""A client for ComfyUI's own HTTP and WebSocket API.

One render: pick the server with the shortest queue (``GET /prompt``'s
``exec_info.queue_remaining``; unreachable servers are skipped), upload the reference images it
needs (``POST /upload/image``), check the graph against that server's ``/object_info`` (a node
type it lacks or a model name not in its list is refused here, naming node and input, and
nothing is queued), open ``/ws?clientId=`` before ``POST /prompt`` so no message is missed,
follow ``executing`` / ``progress`` / ``executed`` until ``executing`` names node ``null`` for
the prompt, then read ``/history/{prompt_id}`` and fetch each image through ``/view``.

ComfyUI keeps running a prompt when a WebSocket closes, and ``/history`` holds the prompt's result
and status once it ends, so a dropped socket costs nothing: the client reconnects and, whether
or not that works, asks ``/history`` until the prompt is there. A cancelled render deletes the
prompt from the queue and interrupts it (``POST /queue``, ``POST /interrupt`` with its id), so
the GPU stops working for nobody. Server addresses may carry credentials; messages name servers
by host and port only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
import contextlib
from dataclasses import dataclass
import json
import logging
import time
from typing import Any
import uuid

import aiohttp
from yarl import URL

from ..errors import Refusal

_LOGGER = logging.getLogger(__name__)

#: The type ComfyUI lets link to any input, and the V3 type whose links the frontend checks.
_ANY = "*"
_MATCH_TYPE = "COMFY_MATCHTYPE_V3"


class ComfyUIError(Refusal, code="comfyui_error", status=502):
    """ComfyUI answered something the client cannot use."""


class ComfyUIUnavailableError(ComfyUIError, code="comfyui_unavailable", status=503):
    """No ComfyUI server could be reached."""


class ComfyUITimeoutError(ComfyUIError, code="comfyui_timeout", status=504):
    """A prompt did not finish in time; it was interrupted."""


class GraphInvalidError(ComfyUIError, code="comfyui_graph_invalid", status=400):
    """A graph ComfyUI cannot run: a missing node type or model, a bad input or link."""

    def __init__(self, message: str, *, node_id: str | None = None, input_name: str | None = None):
        super().__init__(message)
        self.node_id = node_id
        self.input_name = input_name


class ExecutionFailedError(ComfyUIError, code="comfyui_execution_failed"):
    """ComfyUI ran the prompt and a node failed (``execution_error``) or it was interrupted."""

    def __init__(self, message: str, *, node_id: str | None, node_type: str | None) -> None:
        super().__init__(message)
        self.node_id = node_id
        self.node_type = node_type


@dataclass(frozen=True)
class Progress:
    """A step of a prompt: the node running and, for samplers, ``value`` of ``max`` steps."""

    prompt_id: str
    node: str
    value: int | None = None
    max: int | None = None


@dataclass(frozen=True)
class Image:
    """One image a prompt's output node saved, with its bytes."""

    node_id: str
    filename: str
    subfolder: str
    type: str
    data: bytes


@dataclass(frozen=True)
class RenderResult:
    """A finished prompt: where it ran and the images it made."""

    prompt_id: str
    server: str
    images: tuple[Image, ...]


ProgressCallback = Callable[[Progress], Awaitable[None] | None]
# Hears where a prompt went: the server's name and the prompt id.
SubmittedCallback = Callable[[str, str], Awaitable[None]]


def server_name(url: URL) -> str:
    """A server as messages and logs may show it: no user, no password, no path."""
    return f"{url.host}:{url.port}"


class ComfyUIServer:
    """One ComfyUI server and the calls of its API."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        request_timeout: float = 30.0,
        poll_interval: float = 1.0,
    ) -> None:
        self._session = session
        self.url = URL(url)
        self.name = server_name(self.url)
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._poll_interval = poll_interval
        self._object_info: dict[str, Any] | None = None

    async def _request(self, method: str, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        try:
            response = await self._session.request(
                method, self.url.join(URL(path)), timeout=self._timeout, **kwargs
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as err:
            raise ComfyUIUnavailableError(
                f"ComfyUI at {self.name} cannot be reached ({type(err).__name__})"
            ) from None
        return response

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        async with await self._request(method, path, **kwargs) as response:
            if response.status != 200:
                raise ComfyUIError(
                    f"ComfyUI at {self.name} answered {response.status} to {method} {path}"
                )
            try:
                return await response.json(content_type=None)
            except ValueError:
                raise ComfyUIError(
                    f"ComfyUI at {self.name} answered {method} {path} with something not JSON"
                ) from None

    async def _post_ok(self, path: str, body: Mapping[str, Any]) -> None:
        async with await self._request("POST", path, json=body) as response:
            if response.status != 200:
                raise ComfyUIError(f"ComfyUI at {self.name} answered {response.status} to {path}")

    async def queue_remaining(self) -> int:
        """How many prompts this server has queued or running."""
        info = await self._json("GET", "/prompt")
        try:
            return int(info["exec_info"]["queue_remaining"])
        except (KeyError, TypeError, ValueError):
            raise ComfyUIError(
                f"ComfyUI at {self.name} did not say how long its queue is"
            ) from None

    async def queued(self) -> set[str]:
        """The ids of the prompts this server is running or has queued (``GET /queue``)."""
        answer = await self._json("GET", "/queue")
        ids: set[str] = set()
        for key in ("queue_running", "queue_pending"):
            for item in answer.get(key) or [] if isinstance(answer, dict) else []:
                if isinstance(item, list) and len(item) > 1:
                    ids.add(str(item[1]))
        return ids

    async def object_info(self, *, refresh: bool = False) -> dict[str, Any]:
        """The node types this server has, with their inputs and outputs (cached)."""
        if self._object_info is None or refresh:
            info = await self._json("GET", "/object_info")
            if not isinstance(info, dict):
                raise ComfyUIError(f"ComfyUI at {self.name} answered /object_info oddly")
            self._object_info = info
        return self._object_info

    async def validate(self, graph: Mapping[str, Any]) -> None:
        """Refuse a graph this server cannot run; checked again on fresh node information
        before refusing, so a model added since the last look is found."""
        try:
            check_graph(graph, await self.object_info(), self.name)
        except GraphInvalidError:
            check_graph(graph, await self.object_info(refresh=True), self.name)

    async def upload_image(self, name: str, data: bytes) -> str:
        """Put an image in the server's input folder; answers the name ``LoadImage`` takes."""
        form = aiohttp.FormData()
        form.add_field("image", data, filename=name, content_type="image/png")
        form.add_field("overwrite", "true")
        form.add_field("type", "input")
        answer = await self._json("POST", "/upload/image", data=form)
        subfolder = answer.get("subfolder") or ""
        uploaded = str(answer["name"])
        return f"{subfolder}/{uploaded}" if subfolder else uploaded

    async def submit(self, graph: Mapping[str, Any], client_id: str) -> str:
        """Queue a graph; answers its prompt id. ComfyUI's own refusal becomes a clear error."""
        body = {"prompt": graph, "client_id": client_id}
        async with await self._request("POST", "/prompt", json=body) as response:
            try:
                answer = await response.json(content_type=None)
            except ValueError:
                answer = None
        if response.status == 200 and isinstance(answer, dict) and "prompt_id" in answer:
            return str(answer["prompt_id"])
        if response.status == 400 and isinstance(answer, dict):
            raise _refusal_error(answer, self.name)
        raise ComfyUIError(f"ComfyUI at {self.name} answered {response.status} to a prompt")

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        """The prompt's history entry, or None while it has not finished."""
        answer = await self._json("GET", f"/history/{prompt_id}")
        entry = answer.get(prompt_id) if isinstance(answer, dict) else None
        return entry if isinstance(entry, dict) else None

    async def view(self, filename: str, subfolder: str, folder_type: str) -> bytes:
        """The bytes of one output image."""
        query = {"filename": filename, "subfolder": subfolder, "type": folder_type}
        async with await self._request("GET", "/view", params=query) as response:
            if response.status != 200:
                raise ComfyUIError(
                    f"ComfyUI at {self.name} has no image {filename!r} ({response.status})"
                )
            return await response.read()

    async def interrupt(self, prompt_id: str) -> None:
        """Drop the prompt from the queue, and stop it if it is running."""
        await self._post_ok("/queue", {"delete": [prompt_id]})
        await self._post_ok("/interrupt", {"prompt_id": prompt_id})

    async def free(self, *, unload_models: bool = True, free_memory: bool = True) -> None:
        """Ask the server to unload its models and give the GPU memory back."""
        await self._post_ok("/free", {"unload_models": unload_models, "free_memory": free_memory})

    async def system_stats(self) -> dict[str, Any]:
        """The server's ``/system_stats``: versions, RAM, and each device's VRAM."""
        stats: dict[str, Any] = await self._json("GET", "/system_stats")
        return stats

    async def connect(self, client_id: str) -> aiohttp.ClientWebSocketResponse:
        """Open the progress WebSocket for ``client_id``."""
        url = self.url.with_scheme("wss" if self.url.scheme == "https" else "ws").join(URL("/ws"))
        try:
            return await self._session.ws_connect(
                url.with_query(clientId=client_id), timeout=aiohttp.ClientWSTimeout(ws_close=5)
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as err:
            raise ComfyUIUnavailableError(
                f"ComfyUI at {self.name}: the progress WebSocket failed ({type(err).__name__})"
            ) from None

    async def wait(
        self,
        prompt_id: str,
        client_id: str,
        socket: aiohttp.ClientWebSocketResponse | None,
        on_progress: ProgressCallback | None,
    ) -> dict[str, Any]:
        """Follow the prompt until it ends; answers its history entry.

        Without a socket (it closed and would not reopen) ``/history`` is polled instead.
        """
        try:
            while True:
                if socket is not None:
                    ended = False
                    with contextlib.suppress(aiohttp.ClientError):
                        ended = await _follow(socket, prompt_id, on_progress)
                    await socket.close()
                    socket = None
                    if not ended:
                        _LOGGER.warning("ComfyUI at %s: progress socket lost", self.name)
                        with contextlib.suppress(ComfyUIUnavailableError):
                            socket = await self.connect(client_id)
                entry = await self.history(prompt_id)
                if entry is not None:
                    return entry
                if socket is None:
                    await asyncio.sleep(self._poll_interval)
        finally:
            if socket is not None:
                await socket.close()


async def _follow(
    socket: aiohttp.ClientWebSocketResponse, prompt_id: str, on_progress: ProgressCallback | None
) -> bool:
    """Read messages until the prompt ends (True) or the socket closes (False)."""
    async for message in socket:
        if message.type is not aiohttp.WSMsgType.TEXT:
            continue  # binary frames are previews
        event = json.loads(message.data)
        data = event.get("data") or {}
        if data.get("prompt_id") != prompt_id:
            continue
        kind = event.get("type")
        if kind == "executing":
            if data.get("node") is None:
                return True
            await _report(on_progress, Progress(prompt_id, str(data["node"])))
        elif kind == "progress":
            await _report(
                on_progress,
                Progress(prompt_id, str(data.get("node")), int(data["value"]), int(data["max"])),
            )
        elif kind == "execution_error":
            raise _execution_error(data)
        elif kind == "execution_interrupted":
            raise _interrupted_error(data)
    return False


async def _report(on_progress: ProgressCallback | None, progress: Progress) -> None:
    if on_progress is None:
        return
    result = on_progress(progress)
    if result is not None:
        await result


def _execution_error(data: Mapping[str, Any]) -> ExecutionFailedError:
    node_id, node_type = data.get("node_id"), data.get("node_type")
    return ExecutionFailedError(
        f"ComfyUI failed at node {node_id} ({node_type}): "
        f"{data.get('exception_message', '')}".strip(),
        node_id=None if node_id is None else str(node_id),
        node_type=node_type,
    )


def _interrupted_error(data: Mapping[str, Any]) -> ExecutionFailedError:
    node_id, node_type = data.get("node_id"), data.get("node_type")
    return ExecutionFailedError(
        f"ComfyUI interrupted the prompt at node {node_id} ({node_type})",
        node_id=None if node_id is None else str(node_id),
        node_type=node_type,
    )


def _history_error(entry: Mapping[str, Any]) -> ExecutionFailedError | None:
    """The failure a finished prompt's history records, if it failed."""
    status = entry.get("status") or {}
    if status.get("status_str") != "error":
        return None
    for kind, data in status.get("messages") or []:
        if kind == "execution_error":
            return _execution_error(data)
        if kind == "execution_interrupted":
            return _interrupted_error(data)
    return ExecutionFailedError("ComfyUI reports the prompt failed", node_id=None, node_type=None)


def _refusal_error(answer: Mapping[str, Any], server: str) -> GraphInvalidError:
    """ComfyUI's 400 ``{"error": {...}, "node_errors": {...}}`` as one clear error."""
    for node_id, node in (answer.get("node_errors") or {}).items():
        for error in node.get("errors") or []:
            input_name = (error.get("extra_info") or {}).get("input_name")
            return GraphInvalidError(
                f"ComfyUI at {server} refused node {node_id} ({node.get('class_type')}): "
                f"{error.get('message')}: {error.get('details')}",
                node_id=str(node_id),
                input_name=input_name,
            )
    error = answer.get("error")
    if isinstance(error, dict):
        return GraphInvalidError(
            f"ComfyUI at {server} refused the prompt: "
            f"{error.get('message')} {error.get('details')}".strip()
        )
    return GraphInvalidError(f"ComfyUI at {server} refused the prompt: {error}")


def check_graph(graph: Mapping[str, Any], object_info: Mapping[str, Any], server: str) -> None:
    """Refuse what ComfyUI's own validation (``execution.validate_prompt``) would: a node type it
    lacks (anywhere in the graph), a graph with no output node, and, in each node an output node
    depends on, a required input missing, a link to no node or to an output of another type, a
    dependency cycle, or a value (of a required or optional input) that does not convert to the
    input's type, is out of range, or is not in its list (models). Nodes no output depends on
    are not run, and ComfyUI does not check them either. Where ComfyUI would queue the outputs
    that pass and drop the others (``node_errors`` in its answer), this refuses the graph."""
    outputs = []
    for node_id, node in graph.items():
        class_type = node.get("class_type") if isinstance(node, Mapping) else None
        info = object_info.get(class_type) if isinstance(class_type, str) else None
        if info is None:
            raise GraphInvalidError(
                f"Node {node_id}: ComfyUI at {server} has no node type {class_type!r} "
                "(is the custom node installed?)",
                node_id=str(node_id),
            )
        if info.get("output_node"):
            outputs.append(node_id)
    if not outputs:
        raise GraphInvalidError("The graph has no output node (such as SaveImage)")
    checked: set[str] = set()
    for output in outputs:
        _check_node(graph, output, object_info, server, checked=checked, path=[])


def _check_node(
    graph: Mapping[str, Any],
    node_id: str,
    object_info: Mapping[str, Any],
    server: str,
    *,
    checked: set[str],
    path: list[str],
) -> None:
    """Check a node's inputs and the nodes it links to (``path``: the nodes waiting on it)."""
    if node_id in checked:
        return
    if node_id in path:
        cycle = " -> ".join([*path[path.index(node_id) :], node_id])
        raise GraphInvalidError(
            f"Nodes {cycle} depend on each other in a cycle", node_id=str(node_id)
        )
    node = graph[node_id]
    class_type = node["class_type"]
    inputs = node.get("inputs") or {}
    declared = object_info[class_type].get("input") or {}
    for section in ("required", "optional"):
        for name, spec in (declared.get(section) or {}).items():
            where = f"Node {node_id} ({class_type}) input {name}"
            if name not in inputs:
                if section == "required":
                    raise GraphInvalidError(
                        f"{where} is missing", node_id=str(node_id), input_name=name
                    )
                continue
            source = _check_input(
                inputs[name],
                spec,
                where=where,
                graph=graph,
                object_info=object_info,
                server=server,
                node_id=str(node_id),
                name=name,
            )
            if source is not None:
                _check_node(
                    graph, source, object_info, server, checked=checked, path=[*path, node_id]
                )
    checked.add(node_id)


#: Option flags of a list input that takes an uploaded file: the node's own validation checks the
#: file exists and skips the list, which shows only the top of the input folder.
_UPLOAD_FLAGS = ("image_upload", "audio_upload", "video_upload", "file_upload")
#: ``"name [output]"`` names a file of that folder (``folder_paths.annotated_filepath``).
_ANNOTATIONS = (" [input]", " [output]", " [temp]")
#: Value conversions ComfyUI makes before its range checks; a value that fails is refused.
_CONVERSIONS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "INT": (int, "a whole number"),
    "FLOAT": (float, "a number"),
    "STRING": (str, "text"),
    "BOOLEAN": (bool, "true or false"),
}


def _check_input(
    value: Any,
    spec: Sequence[Any],
    *,
    where: str,
    graph: Mapping[str, Any],
    object_info: Mapping[str, Any],
    server: str,
    node_id: str,
    name: str,
) -> str | None:
    """Refuse the input's value as ComfyUI would; answers the node a link points at."""

    def refuse(reason: str) -> GraphInvalidError:
        return GraphInvalidError(f"{where}: {reason}", node_id=node_id, input_name=name)

    kind = spec[0]
    options: Mapping[str, Any] = spec[1] if len(spec) > 1 and isinstance(spec[1], Mapping) else {}
    if isinstance(value, list):
        reason = _link_error(value, kind, graph, object_info)
        if reason is not None:
            raise refuse(reason)
        return str(value[0])
    if isinstance(value, Mapping) and "__value__" in value:
        value = value["__value__"]  # a list value, wrapped so as not to read as a link
    conversion = _CONVERSIONS.get(kind) if isinstance(kind, str) else None
    if conversion is not None:
        convert, wanted = conversion
        try:
            value = convert(value)
        except (TypeError, ValueError, OverflowError):
            raise refuse(f"{value!r} is not {wanted}") from None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "min" in options and value < options["min"]:
            raise refuse(f"{value} is below the minimum {options['min']}")
        if "max" in options and value > options["max"]:
            raise refuse(f"{value} is above the maximum {options['max']}")
    choices = (
        kind if isinstance(kind, list) else options.get("options", []) if kind == "COMBO" else None
    )
    if choices is not None and value not in choices:
        if any(options.get(flag) for flag in _UPLOAD_FLAGS) and _beyond_list(value, choices):
            return None
        shown = ", ".join(map(str, choices[:10])) or "nothing"
        raise refuse(f"{value!r} is not on ComfyUI at {server} (it has: {shown})")
    return None


def _link_error(
    link: list[Any], kind: Any, graph: Mapping[str, Any], object_info: Mapping[str, Any]
) -> str | None:
    """Why ComfyUI would refuse a ``[node_id, output_index]`` link to an input of this kind."""
    source = link[0] if len(link) == 2 else None
    if not isinstance(source, str) or source not in graph:
        if source is not None and not isinstance(source, bool) and str(source) in graph:
            return (
                f"the link {link} names node {source!r}, and ComfyUI takes node ids as "
                f"strings ({str(source)!r})"
            )
        return f"the link {link} points at no node of this graph"
    if not isinstance(link[1], int):
        return f"the link {link} names no output of node {source}"
    outputs = (object_info.get(graph[source].get("class_type")) or {}).get("output") or []
    if not 0 <= link[1] < len(outputs):
        return f"node {source} has no output {link[1]}"
    given = outputs[link[1]]
    if not _types_match(given, kind):
        wanted = "a list" if isinstance(kind, list) else kind
        return f"node {source} gives {given}, the input takes {wanted}"
    return None


def _beyond_list(value: Any, choices: Sequence[Any]) -> bool:
    """Whether an upload input's value names a file its list cannot show: one in a subfolder or
    in the output or temp folder (``"name [output]"``), or ``"name [input]"`` of a listed one."""
    if not isinstance(value, str):
        return False
    for annotation in _ANNOTATIONS:
        if value.endswith(annotation):
            stripped = value[: -len(annotation)]
            return annotation != " [input]" or "/" in stripped or stripped in choices
    return "/" in value


def _types_match(given: Any, wanted: Any) -> bool:
    """``comfy_execution.validation.validate_node_input``: the same type, the any type ``*``,
    a V3 match type, or (``"A,B"`` lists several) a type in common."""
    if given == wanted or _ANY in (given, wanted) or _MATCH_TYPE in (given, wanted):
        return True
    if isinstance(given, list) and wanted == "COMBO":
        return True  # a custom node's list of options, as ComfyUI allows
    if not isinstance(given, str) or not isinstance(wanted, str):
        return False
    given_types = {part.strip() for part in given.split(",")}
    wanted_types = {part.strip() for part in wanted.split(",")}
    return _ANY in given_types | wanted_types or bool(given_types & wanted_types)


class ComfyUIClient:
    """Renders graphs on one of several ComfyUI servers, the least busy one reachable."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        urls: Sequence[str],
        *,
        request_timeout: float = 30.0,
        render_timeout: float = 3600.0,
        poll_interval: float = 1.0,
    ) -> None:
        if not urls:
            raise ComfyUIError("No ComfyUI server is configured", status=400)
        self.servers = [
            ComfyUIServer(
                session, url, request_timeout=request_timeout, poll_interval=poll_interval
            )
            for url in urls
        ]
        self._render_timeout = render_timeout

    async def pick(self) -> ComfyUIServer:
        """The reachable server with the fewest prompts queued (the first one on a tie)."""
        lengths = await asyncio.gather(
            *(server.queue_remaining() for server in self.servers), return_exceptions=True
        )
        reachable = [
            (length, index) for index, length in enumerate(lengths) if isinstance(length, int)
        ]
        if not reachable:
            names = ", ".join(server.name for server in self.servers)
            raise ComfyUIUnavailableError(f"No ComfyUI server can be reached (tried {names})")
        for server, length in zip(self.servers, lengths, strict=True):
            if isinstance(length, BaseException):
                _LOGGER.warning("Skipping ComfyUI at %s: %s", server.name, length)
        return self.servers[min(reachable)[1]]

    async def render(
        self,
        graph: Mapping[str, Any],
        *,
        images: Mapping[str, bytes] | None = None,
        on_progress: ProgressCallback | None = None,
        on_submitted: SubmittedCallback | None = None,
        keep_running: Callable[[], bool] | None = None,
    ) -> RenderResult:
        """Run ``graph`` and fetch the images it saves.

        A cancelled render is taken off ComfyUI's queue and interrupted, unless
        ``keep_running`` says to leave it (the worker is stopping: ComfyUI finishes the image
        and ``resume`` collects it after the restart).

        ``images`` are uploaded first under their names (``graphs.reference_name``), which the
        graph's ``LoadImage`` nodes name. Raises ``GraphInvalidError`` before queuing anything
        when the server cannot run the graph, ``ExecutionFailedError`` when a node fails,
        ``ComfyUITimeoutError`` (after interrupting it) when it runs too long. ``on_submitted``
        hears the server and prompt id as soon as ComfyUI took the prompt, so a caller that
        stops (a worker killed mid-render) can ``resume`` it instead of drawing it again.
        """
        server = await self.pick()
        for name, data in (images or {}).items():
            uploaded = await server.upload_image(name, data)
            if uploaded != name:
                raise ComfyUIError(f"ComfyUI at {server.name} stored {name} as {uploaded}")
        await server.validate(graph)
        client_id = uuid.uuid4().hex
        socket: aiohttp.ClientWebSocketResponse | None = None
        with contextlib.suppress(ComfyUIUnavailableError):
            socket = await server.connect(client_id)
        prompt_id: str | None = None
        started = time.monotonic()
        try:
            prompt_id = await server.submit(graph, client_id)
            if on_submitted is not None:
                await on_submitted(server.name, prompt_id)
            async with asyncio.timeout(self._render_timeout):
                entry = await server.wait(prompt_id, client_id, socket, on_progress)
        except TimeoutError:
            await _interrupt_quietly(server, prompt_id)
            raise ComfyUITimeoutError(
                f"ComfyUI at {server.name} did not finish prompt {prompt_id} in "
                f"{self._render_timeout:g} s; it was interrupted"
            ) from None
        except asyncio.CancelledError:
            if keep_running is None or not keep_running():
                await _interrupt_quietly(server, prompt_id)
            raise
        finally:
            if socket is not None:
                await socket.close()
        return await self._result(server, prompt_id, entry, started)

    async def resume(self, server_name: str, prompt_id: str) -> RenderResult | None:
        """The result of a prompt submitted earlier (before a restart), waiting for it if
        ComfyUI still has it queued or running; None when the server no longer knows it (it
        restarted, or is not configured any more), so the caller renders again."""
        server = next((item for item in self.servers if item.name == server_name), None)
        if server is None:
            return None
        started = time.monotonic()
        entry = await server.history(prompt_id)
        if entry is None:
            if prompt_id not in await server.queued():
                return None
            try:
                async with asyncio.timeout(self._render_timeout):
                    entry = await server.wait(prompt_id, uuid.uuid4().hex, None, None)
            except TimeoutError:
                await _interrupt_quietly(server, prompt_id)
                raise ComfyUITimeoutError(
                    f"ComfyUI at {server.name} did not finish prompt {prompt_id} in "
                    f"{self._render_timeout:g} s; it was interrupted"
                ) from None
        return await self._result(server, prompt_id, entry, started)

    async def _result(
        self, server: ComfyUIServer, prompt_id: str, entry: Mapping[str, Any], started: float
    ) -> RenderResult:
        failure = _history_error(entry)
        if failure is not None:
            raise failure
        result = RenderResult(prompt_id, server.name, await _fetch_images(server, entry))
        _LOGGER.debug(
            "ComfyUI at %s rendered %s in %.1f s",
            server.name,
            prompt_id,
            time.monotonic() - started,
        )
        return result


async def _interrupt_quietly(server: ComfyUIServer, prompt_id: str | None) -> None:
    if prompt_id is None:
        return
    try:
        await asyncio.shield(server.interrupt(prompt_id))
    except ComfyUIError as err:
        _LOGGER.warning("Could not interrupt prompt %s at %s: %s", prompt_id, server.name, err)


async def _fetch_images(server: ComfyUIServer, entry: Mapping[str, Any]) -> tuple[Image, ...]:
    images = []
    for node_id, output in (entry.get("outputs") or {}).items():
        for image in output.get("images") or []:
            if image.get("type") != "output":
                continue  # previews in the temp folder
            data = await server.view(image["filename"], image.get("subfolder", ""), "output")
            images.append(
                Image(str(node_id), image["filename"], image.get("subfolder", ""), "output", data)
            )
    return tuple(images)
