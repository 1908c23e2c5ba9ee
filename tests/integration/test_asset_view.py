"""The image view behind review notifications serves only images: whatever else answers at the
worker's address (a router's page, a misbehaving worker) is not served from Home Assistant's
own origin."""

from __future__ import annotations

from http import HTTPStatus

from aiohttp import web
from aiohttp.typedefs import Handler
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.hydra.parts.quality.events import ASSET_IMAGE_URL
from tests.fake_nvml import FakeNvml, make_gpu

from .conftest import LoopbackWorker, entry_for, setup_entry

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


class AssetWorker(LoopbackWorker):
    """A worker whose asset images answer with ``content_type`` (the view's other side)."""

    content_type: str = "image/png"

    def build_app(self) -> web.Application:
        app = super().build_app()

        @web.middleware
        async def image(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith("/api/v1/assets/"):
                return web.Response(body=PNG, content_type=self.content_type)
            return await handler(request)

        app.middlewares.insert(0, image)
        return app


async def test_only_images_are_served(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> None:
    async with AssetWorker(FakeNvml([make_gpu(0)])) as worker:
        entry = entry_for(worker)
        await setup_entry(hass, entry)
        http = await hass_client()
        url = ASSET_IMAGE_URL.format(entry_id=entry.entry_id, asset_id=1)

        response = await http.get(url)
        assert response.status == HTTPStatus.OK
        assert response.content_type == "image/png"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert await response.read() == PNG

        worker.content_type = "text/html"
        response = await http.get(url)
        assert response.status == HTTPStatus.BAD_GATEWAY
        assert response.content_type != "text/html"
