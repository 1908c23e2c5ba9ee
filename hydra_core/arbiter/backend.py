"""What the arbiter needs of a model server: list, what is loaded, load, unload.

Each adapter speaks one server's own API (Ollama, a llama.cpp router, ComfyUI) or wraps
Hydra's own lazily loaded models; the arbiter decides, the adapters only carry it out.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from json import loads
from typing import Any, ClassVar

import aiohttp
from yarl import URL

from ..errors import Refusal
from .models import PRIORITY_BACKGROUND


class BackendError(Refusal, code="backend_failed", status=502):
    """A model server failed a call, or could not be reached."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendModel:
    """A model a server can load: its name there and, where the server says, its size."""

    name: str
    size_bytes: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunningModel:
    """A model a server holds now: the VRAM it says it takes and when it means to unload it."""

    name: str
    vram_bytes: int | None = None
    expires_at: float | None = None


class ModelBackend(ABC):
    """One model server (or Hydra itself). ``name`` prefixes the ids of its models."""

    kind: ClassVar[str]
    # A server that loads a model itself when work asks for it (ComfyUI): a load through the
    # arbiter only makes room and reserves it, the memory is taken when the work runs.
    loads_on_demand: ClassVar[bool] = False
    # A backend that unloads its idle models itself (Hydra's own): no TTL of the arbiter's.
    unloads_when_idle: ClassVar[bool] = False

    def __init__(self, name: str, url: str | None = None) -> None:
        self.name = name
        self.url = url

    @property
    def node(self) -> str:
        """Where the models run: the server's host, or this worker's for in-process models."""
        return URL(self.url).host or "" if self.url else ""

    @abstractmethod
    async def async_models(self) -> list[BackendModel]:
        """Every model the server can load."""

    @abstractmethod
    async def async_running(self) -> dict[str, RunningModel]:
        """The models the server holds now, by name."""

    @abstractmethod
    async def async_load(self, name: str, ttl_s: float) -> None:
        """Load ``name`` and return once it is ready; ``ttl_s`` 0: keep it until unloaded."""

    @abstractmethod
    async def async_unload(self, name: str) -> None:
        """Unload ``name``; return once the server has let it go."""

    def priority(self, name: str) -> int:
        """The model's priority unless the options say otherwise."""
        return PRIORITY_BACKGROUND

    def in_flight(self, name: str) -> int:
        """Work using ``name`` that the arbiter cannot see otherwise (Hydra's own models)."""
        return 0

    def last_used(self, name: str) -> float | None:
        """When ``name`` was last used, where the backend knows (unix time)."""
        return None


# The HTTP session backends share: called on each request, so it opens inside the event loop.
Session = Callable[[], aiohttp.ClientSession]


class SharedSession:
    """One aiohttp session for every HTTP backend, opened on first use."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def __call__(self) -> aiohttp.ClientSession:
        """The session."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def async_close(self) -> None:
        """Close it, if it was opened."""
        if self._session is not None:
            await self._session.close()


class HttpBackend(ModelBackend):
    """A model server over HTTP, with the worker's own session."""

    def __init__(
        self,
        name: str,
        url: str,
        session: Session,
        *,
        timeout_s: float = 30.0,
        load_timeout_s: float = 600.0,
    ) -> None:
        super().__init__(name, url)
        self._base = URL(url.rstrip("/"))
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        # A large model may take minutes to load from a slow disk.
        self.load_timeout_s = load_timeout_s

    @property
    def server(self) -> str:
        """The server as messages show it: no user, no password, no path."""
        return f"{self._base.host}:{self._base.port}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> Any:
        """The JSON answer of one call; BackendError if it fails or answers another status."""
        status, text = await self.send(
            method, self._base.join(URL(path)), json=json, timeout_s=timeout_s
        )
        if status not in ok:
            raise BackendError(
                f"{self.kind} at {self.server} answered {status} to"
                f" {method} {path}: {_error_text(text)}"
            )
        try:
            return loads(text) if text.strip() else None
        except ValueError:
            raise BackendError(
                f"{self.kind} at {self.server} answered {method} {path} with something"
                " that is not JSON"
            ) from None

    async def send(
        self,
        method: str,
        url: URL,
        *,
        json: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> tuple[int, str]:
        """The status and text of one call, whatever they are; BackendError if the server
        cannot be reached."""
        timeout = self._timeout if timeout_s is None else aiohttp.ClientTimeout(total=timeout_s)
        try:
            async with self._session().request(method, url, json=json, timeout=timeout) as response:
                return response.status, await response.text(errors="replace")
        except (aiohttp.ClientError, OSError, TimeoutError) as err:
            raise BackendError(
                f"{self.kind} at {self.server} cannot be reached ({type(err).__name__})"
            ) from None


def _error_text(text: str, limit: int = 200) -> str:
    """A server's error body, short enough for a message."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
