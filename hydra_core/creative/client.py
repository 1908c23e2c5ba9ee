"""The creative part's calls: chapters in, their progress and packages out."""

from __future__ import annotations

from typing import Any

from ..client import PartClient
from ..models import Actor
from ..wire import dump
from .models import ChapterStatus


class CreativeClient(PartClient):
    """Chapters through a ``HydraClient``."""

    async def async_process_chapter(
        self,
        text: str,
        *,
        actor: Actor,
        project: str | None = None,
        name: str | None = None,
        start: str | None = None,
        regenerate: bool = False,
    ) -> ChapterStatus:
        """Queue a Fountain chapter; HydraApiError ``invalid_chapter`` (its message names each
        problem's line), ``invalid_style_book``, ``comfyui_not_configured``..."""
        body: dict[str, Any] = {"text": text, "actor": dump(actor), "regenerate": regenerate}
        for key, value in (("project", project), ("name", name), ("start", start)):
            if value is not None:
                body[key] = value
        return await self._client.call(ChapterStatus, "POST", "chapters", json=body)

    async def async_chapters(
        self, *, state: str | None = None, limit: int = 50
    ) -> list[ChapterStatus]:
        """Chapters, newest first."""
        params = {"limit": str(limit)} | ({"state": state} if state else {})
        body = await self._client.request("GET", "chapters", params=params)
        return [self._client.parse(ChapterStatus, chapter) for chapter in body["chapters"]]

    async def async_chapter(self, chapter_id: int) -> ChapterStatus:
        """One chapter; HydraApiError ``chapter_not_found``."""
        return await self._client.call(ChapterStatus, "GET", f"chapters/{chapter_id}")

    async def async_cancel_chapter(self, chapter_id: int) -> ChapterStatus:
        """Stop a chapter and its unfinished assets (what is made is kept)."""
        return await self._client.call(ChapterStatus, "POST", f"chapters/{chapter_id}/cancel")

    async def async_retry_chapter(self, chapter_id: int) -> ChapterStatus:
        """Run a failed or cancelled chapter again; what was made is not made again."""
        return await self._client.call(ChapterStatus, "POST", f"chapters/{chapter_id}/retry")

    async def async_start_chapters(self) -> list[ChapterStatus]:
        """Queue every chapter waiting for the overnight pipeline; answers those queued."""
        body = await self._client.request("POST", "chapters/start")
        return [self._client.parse(ChapterStatus, chapter) for chapter in body["chapters"]]
