"""Ollama: ``/api/tags`` lists, ``/api/ps`` says what is loaded (``size_vram``, ``expires_at``),
an empty ``/api/generate`` with ``keep_alive`` loads, and ``keep_alive: 0`` unloads.

Ollama keeps a model for its ``keep_alive`` after each request, and a client may ask for
``-1``: forever (Home Assistant's Ollama integration does). Such a model shows in ``/api/ps``
with an ``expires_at`` years away; the arbiter sees it, and may evict it like any other idle
model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .backend import BackendError, BackendModel, HttpBackend, RunningModel


class OllamaBackend(HttpBackend):
    """One Ollama server."""

    kind = "ollama"

    async def async_models(self) -> list[BackendModel]:
        """``GET /api/tags``."""
        body = await self.request("GET", "/api/tags")
        return [
            BackendModel(name=str(model["name"]), size_bytes=_size(model.get("size")))
            for model in _list(body, "models")
        ]

    async def async_running(self) -> dict[str, RunningModel]:
        """``GET /api/ps``."""
        body = await self.request("GET", "/api/ps")
        return {
            str(model["name"]): RunningModel(
                name=str(model["name"]),
                vram_bytes=_size(model.get("size_vram")),
                expires_at=_time(model.get("expires_at")),
            )
            for model in _list(body, "models")
        }

    async def async_load(self, name: str, ttl_s: float) -> None:
        """An empty generate: Ollama loads the model and answers ``done_reason: load``."""
        keep_alive: float | int = ttl_s if ttl_s > 0 else -1
        await self._generate(name, keep_alive)

    async def async_unload(self, name: str) -> None:
        """An empty generate with ``keep_alive: 0``: Ollama unloads and answers ``unload``."""
        await self._generate(name, 0)

    async def _generate(self, name: str, keep_alive: float | int) -> None:
        body = await self.request(
            "POST",
            "/api/generate",
            json={"model": name, "keep_alive": keep_alive, "stream": False},
            timeout_s=self.load_timeout_s,
        )
        if not isinstance(body, dict) or body.get("error"):
            error = body.get("error") if isinstance(body, dict) else body
            raise BackendError(f"ollama at {self.server} refused {name}: {error}")


def _list(body: Any, key: str) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get(key), list):
        raise BackendError(f"Ollama answered without a {key!r} list")
    return [item for item in body[key] if isinstance(item, dict) and item.get("name")]


def _size(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _time(value: Any) -> float | None:
    """Go's RFC 3339 time (nanoseconds, an offset) as unix time; Go's zero time is None."""
    if not isinstance(value, str) or value.startswith("0001-01-01"):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None
