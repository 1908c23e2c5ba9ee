"""A web site on 127.0.0.1 for the knowledge tests: pages and feeds with their validators,
redirects, and pages that misbehave (too large, too slow).

It answers conditional requests as a real server does (``If-None-Match`` against the page's
ETag, ``If-Modified-Since`` against its Last-Modified, 304 with no body), and records every
request with its headers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
import socket

from aiohttp import web
from multidict import CIMultiDictProxy

from hydra_core.knowledge.fetch import Resolver

MB = 1_000_000


@dataclass
class Page:
    body: bytes
    content_type: str | None
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class Huge:
    """A body of ``size`` bytes sent a block at a time; ``sent`` counts what the socket took."""

    size: int
    declare: bool
    sent: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: CIMultiDictProxy[str]


class Site:
    """The pages a test puts on it, served from ``url``."""

    def __init__(self) -> None:
        self.url = ""
        self.pages: dict[str, Page] = {}
        self.redirects: dict[str, tuple[int, str]] = {}
        self.huge: dict[str, Huge] = {}
        self.stalled: set[str] = set()
        self.dripping: set[str] = set()
        self.requests: list[Seen] = []
        # Set when the test ends: stalled and dripping pages stop.
        self.released = asyncio.Event()

    def add(
        self,
        path: str,
        body: bytes | str,
        *,
        content_type: str | None = "text/html; charset=utf-8",
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> str:
        """Serve ``body`` at ``path``; returns its URL."""
        data = body.encode() if isinstance(body, str) else body
        self.pages[path] = Page(data, content_type, etag, last_modified)
        return self.url + path

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        self.redirects[path] = (status, location)
        return self.url + path

    def add_huge(self, path: str, size: int, *, declare: bool) -> Huge:
        """Serve ``size`` bytes of HTML, with its Content-Length if ``declare`` (else chunked)."""
        self.huge[path] = Huge(size, declare)
        return self.huge[path]

    def paths(self) -> list[str]:
        """The paths asked for, in order."""
        return [seen.path for seen in self.requests]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests.append(Seen(request.method, path, request.headers))
        if path in self.redirects:
            status, location = self.redirects[path]
            return web.Response(status=status, headers={"Location": location})
        if path in self.huge:
            return await self._send_huge(request, self.huge[path])
        if path in self.stalled:
            await asyncio.wait_for(self.released.wait(), 30)
            return web.Response(text="late", content_type="text/html")
        if path in self.dripping:
            return await self._drip(request)
        page = self.pages.get(path)
        if page is None:
            raise web.HTTPNotFound
        headers = {}
        if page.etag:
            headers["ETag"] = page.etag
        if page.last_modified:
            headers["Last-Modified"] = page.last_modified
        if self._unchanged(request, page):
            return web.Response(status=304, headers=headers)
        if page.content_type:
            headers["Content-Type"] = page.content_type
        response = web.Response(body=page.body, headers=headers)
        if not page.content_type:
            response.headers.popall("Content-Type", None)
        return response

    @staticmethod
    def _unchanged(request: web.Request, page: Page) -> bool:
        if page.etag and request.headers.get("If-None-Match") == page.etag:
            return True
        return bool(
            page.last_modified
            and "If-None-Match" not in request.headers
            and request.headers.get("If-Modified-Since") == page.last_modified
        )

    async def _send_huge(self, request: web.Request, huge: Huge) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/html"})
        if huge.declare:
            response.content_length = huge.size
        await response.prepare(request)
        block = b"<p>" + b"x" * (MB - 7) + b"</p>"
        try:
            while huge.sent < huge.size:
                await response.write(block)
                huge.sent += len(block)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client hung up: what it took is counted
        finally:
            huge.done.set()
        return response

    async def _drip(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/html"})
        await response.prepare(request)
        try:
            while not self.released.is_set():
                await response.write(b" ")
                await asyncio.sleep(0.05)
        except (ConnectionError, RuntimeError):
            pass
        return response


def fake_dns(names: dict[str, str | Sequence[str]]) -> Resolver:
    """A resolver that knows only ``names`` (each one address or several)."""

    async def resolve(host: str, port: int) -> list[str]:
        found = names.get(host)
        if found is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [found] if isinstance(found, str) else list(found)

    return resolve


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
