"""The engine fixtures inside Home Assistant's test harness.

Home Assistant's plugin checks for leftover threads and refuses socket connections; a test that
uses ``hass`` and ``podman`` together must still reach the engine through aiohttp, the way the
integration's code would.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
from homeassistant.core import HomeAssistant

from tests.podman import DOCKER_API, PodmanEngine


async def test_engine_reachable_from_a_hass_test(hass: HomeAssistant, podman: PodmanEngine) -> None:
    """aiohttp's UnixConnector lists containers and streams events next to ``hass``."""
    container_id = await hass.async_add_executor_job(podman.run, "near-hass")
    connector = aiohttp.UnixConnector(path=podman.socket_path)
    async with aiohttp.ClientSession(
        connector=connector, base_url="http://localhost", timeout=aiohttp.ClientTimeout(total=10)
    ) as session:
        async with session.get(f"{DOCKER_API}/containers/json", params={"all": "1"}) as response:
            listed = await response.json()
        assert container_id in {c["Id"] for c in listed}

        params = {"filters": json.dumps({"type": ["container"]})}
        async with session.get(f"{DOCKER_API}/events", params=params) as response:
            await hass.async_add_executor_job(podman.kill, "near-hass")
            async with asyncio.timeout(2):
                async for line in response.content:
                    event = json.loads(line)
                    if event["Action"] == "die" and event["id"] == container_id:
                        break
    assert event["Actor"]["Attributes"]["name"] == "near-hass"
