"""A worker serving image quality over loopback, as the quality tests talk to it: the typed
client, raw calls for routes the client lacks, and its quality service."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from hydra_core.client import HydraClient
from hydra_core.quality.service import QualityService
from hydra_core.worker.app import API_PREFIX
from tests.worker_identity import TOKEN

HEADERS = {"Authorization": f"Bearer {TOKEN}"}


class QualityWorker:
    """A worker over loopback with its quality service."""

    def __init__(self, url: str, service: QualityService, http: aiohttp.ClientSession) -> None:
        self.url = url
        self.service = service
        self.http = http
        self.client = HydraClient(http, url, TOKEN)

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Call a route; the status and the JSON answer (None when empty)."""
        async with self.http.request(
            method, f"{self.url}{API_PREFIX}/{path}", json=body, headers=HEADERS
        ) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None
