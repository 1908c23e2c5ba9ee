"""Fixtures for tests that talk to a real worker over loopback TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web
import pytest

LOOPBACK = "127.0.0.1"

ServeApp = Callable[[web.Application], Awaitable[str]]


@pytest.fixture
async def serve_app(loopback_sockets: None) -> AsyncIterator[ServeApp]:
    """Serve aiohttp applications on 127.0.0.1, each on a free port; returns the base URL.

    Every application is cleaned up afterwards (which also closes the worker's GPU probe).
    """
    runners: list[web.AppRunner] = []

    async def serve(app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, LOOPBACK, 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        assert host == LOOPBACK
        assert port != 0
        return f"http://{LOOPBACK}:{port}"

    yield serve
    for runner in reversed(runners):
        await runner.cleanup()


@pytest.fixture
async def http(serve_app: ServeApp) -> AsyncIterator[aiohttp.ClientSession]:
    """A real client session (closed before the servers stop)."""
    async with aiohttp.ClientSession() as session:
        yield session
