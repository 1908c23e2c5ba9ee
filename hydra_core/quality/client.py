"""The quality part's calls: scoring, the character registry and the review loop."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import aiohttp

from ..client import PartClient
from ..models import Actor
from ..wire import dump
from .models import Asset, Character, ImageScore, QualityStatus

# Scoring may have to load (or download) the CLIP model first.
SCORING_TIMEOUT = aiohttp.ClientTimeout(total=300)


class QualityClient(PartClient):
    """Scoring, characters and the review loop, through a ``HydraClient``."""

    async def async_quality(self) -> QualityStatus:
        """Whether scoring can run, the model, what waits for review, what was learnt."""
        return await self._client.call(QualityStatus, "GET", "quality")

    async def async_score(
        self,
        images: Sequence[bytes],
        *,
        prompt: str | None = None,
        character: str | None = None,
        style_prompt: str | None = None,
        names: Sequence[str] | None = None,
    ) -> list[ImageScore]:
        """Score images (PNG, JPEG or WebP) without keeping them; ranked best first.

        HydraApiError ``invalid_image``, ``unsupported_format``, ``image_too_large``,
        ``character_not_found``, ``quality_unavailable``.
        """
        named: Sequence[str | None] = names or [None] * len(images)
        body: dict[str, Any] = {
            "images": [
                {"data": base64.b64encode(image).decode(), "name": name}
                for image, name in zip(images, named, strict=True)
            ]
        }
        for key, value in (
            ("prompt", prompt),
            ("character", character),
            ("style_prompt", style_prompt),
        ):
            if value is not None:
                body[key] = value
        answer = await self._client.request(
            "POST", "quality/score", json=body, client_timeout=SCORING_TIMEOUT
        )
        return [self._client.parse(ImageScore, score) for score in answer["scores"]]

    async def async_characters(self) -> list[Character]:
        """Every character of the registry."""
        body = await self._client.request("GET", "characters")
        return [self._client.parse(Character, item) for item in body["characters"]]

    async def async_submit_asset(
        self,
        image: bytes,
        *,
        prompt: str | None = None,
        character: str | None = None,
        name: str | None = None,
    ) -> Asset:
        """Keep and score a generated image: auto-accepted at or above its character's
        threshold, else pending review."""
        body: dict[str, Any] = {"data": base64.b64encode(image).decode()}
        for key, value in (("prompt", prompt), ("character", character), ("name", name)):
            if value is not None:
                body[key] = value
        return await self._client.call(
            Asset, "POST", "assets", json=body, client_timeout=SCORING_TIMEOUT
        )

    async def async_assets(self, *, state: str | None = None, limit: int = 100) -> list[Asset]:
        """Assets, oldest pending first for ``state=pending``, else newest first."""
        query = {"state": state, "limit": str(limit)}
        body = await self._client.request(
            "GET", "assets", params={key: value for key, value in query.items() if value}
        )
        return [self._client.parse(Asset, item) for item in body["assets"]]

    async def async_asset_image(self, asset_id: int) -> tuple[bytes, str]:
        """An asset's image bytes and content type."""
        return await self._client.request_bytes(f"assets/{asset_id}/image")

    async def async_review_asset(
        self, asset_id: int, decision: str, *, actor: Actor, reason: str | None = None
    ) -> Asset:
        """Accept or reject an asset; HydraApiError ``asset_not_found``, ``invalid_decision``."""
        body: dict[str, Any] = {"decision": decision, "actor": dump(actor)}
        if reason:
            body["reason"] = reason
        return await self._client.call(Asset, "POST", f"assets/{asset_id}/review", json=body)
