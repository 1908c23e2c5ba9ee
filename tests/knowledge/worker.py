"""A real worker process with the knowledge part, and loopback servers for what it reads: web
pages and feeds (an aiohttp app the test fills) and an OpenAI-compatible chat endpoint (a
stand-in: the language model is the user's own server)."""

from __future__ import annotations

import asyncio
from collections import Counter
import sys
import time
from typing import Any

from aiohttp import web

from tests.worker_process import WorkerProcess

TOKEN = "knowledge-worker-token-0123456789"


class Site:
    """Pages and feeds on 127.0.0.1: ``pages[path] = (content_type, body)``; counts requests
    per path and the conditional headers it was sent; ``hang`` paths never answer."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[str, bytes]] = {}
        self.etags: dict[str, str] = {}
        self.requests: Counter[str] = Counter()
        self.conditional: list[tuple[str, str | None]] = []
        self.hang: set[str] = set()
        # Paths answered with this many bytes of HTML, streamed (a page too large to read).
        self.huge: dict[str, int] = {}
        self.huge_sent: Counter[str] = Counter()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests[path] += 1
        self.conditional.append((path, request.headers.get("If-None-Match")))
        if path in self.hang:
            await asyncio.sleep(3600)
        if path in self.huge:
            response = web.StreamResponse(headers={"Content-Type": "text/html"})
            await response.prepare(request)
            block = b"<p>" + b"filler text " * 5000 + b"</p>\n"
            try:
                while self.huge_sent[path] < self.huge[path]:
                    await response.write(block)
                    self.huge_sent[path] += len(block)
            except (ConnectionResetError, RuntimeError):
                pass
            return response
        if path not in self.pages:
            return web.Response(status=404, text="not here")
        etag = self.etags.get(path)
        if etag is not None and request.headers.get("If-None-Match") == etag:
            return web.Response(status=304)
        content_type, body = self.pages[path]
        headers = {"ETag": etag} if etag else {}
        return web.Response(body=body, content_type=content_type, headers=headers)

    async def __aenter__(self) -> Site:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        # A short grace: a hanging page must not hold the test's end up for aiohttp's 60 s.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class ChatStandIn:
    """An OpenAI-compatible ``POST /v1/chat/completions`` on 127.0.0.1: answers ``reply``
    (or fails with ``fail_status``) and keeps every request body."""

    def __init__(self, reply: str = "") -> None:
        self.reply = reply
        self.fail_status: int | None = None
        self.bodies: list[dict[str, Any]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(body)
        if self.fail_status is not None:
            return web.json_response({"error": {"message": "boom"}}, status=self.fail_status)
        return web.json_response(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": self.reply},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            }
        )

    async def __aenter__(self) -> ChatStandIn:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class KnowledgeWorker(WorkerProcess):
    """``python -m hydra_core.worker`` with the knowledge part, on 127.0.0.1."""

    token = TOKEN

    def command(self, *options: str) -> list[str]:
        """The worker with no GPU, engine, voice, quality or creative."""
        return [
            sys.executable,
            "-m",
            "hydra_core.worker",
            *("--host", "127.0.0.1", "--port", str(self.port), "--token", TOKEN),
            *("--data-dir", str(self.data_dir), "--gpu-backend", "none"),
            *("--docker-host", "none", "--voice", "false", "--quality", "false"),
            *("--creative", "false", "--retry-backoff", "0.2"),
            *options,
        ]

    async def research(self, payload: dict[str, Any], within: float = 120.0) -> dict[str, Any]:
        """Queue a research task and wait for it to end; the task."""
        status, task = await self.call("POST", "tasks", {"kind": "research", "payload": payload})
        assert status == 201, task
        return await self.wait_task(task["id"], within)
