"""The loopback web site the knowledge tests fetch from."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
import pytest

from .site import Site


@pytest.fixture
async def site(loopback_sockets: None) -> AsyncIterator[Site]:
    """A web site on 127.0.0.1 with no pages yet."""
    served = Site()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", served.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    served.url = str(server.make_url("")).rstrip("/")
    yield served
    served.released.set()
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client
