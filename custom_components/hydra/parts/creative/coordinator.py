"""The worker's chapters: pushed by the event stream, polled slowly to fill gaps."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, override

from homeassistant.core import HomeAssistant, callback

from hydra_core.client import HydraClient, HydraError
from hydra_core.creative.client import CreativeClient
from hydra_core.creative.models import EVENT_CHAPTER, ChapterStatus
from hydra_core.models import WorkerEvent
from hydra_core.wire import load

from ...const import CHAPTER_LIST_LIMIT, CREATIVE_SCAN_INTERVAL
from ...coordinator import HydraPartCoordinator, raise_update_failed
from .events import async_chapter_event

if TYPE_CHECKING:
    from ...data import HydraConfigEntry


@dataclass(frozen=True, slots=True)
class HydraCreativeData:
    """The chapters Home Assistant shows: the newest, and every running one, newest first."""

    chapters: tuple[ChapterStatus, ...]

    def by_id(self) -> dict[int, ChapterStatus]:
        """The chapters by id."""
        return {chapter.id: chapter for chapter in self.chapters}


def _keep(chapters: dict[int, ChapterStatus]) -> HydraCreativeData:
    """The newest chapters, and running ones however old, newest first."""
    newest = sorted(chapters.values(), key=lambda chapter: chapter.id, reverse=True)
    older_running = [c for c in newest[CHAPTER_LIST_LIMIT:] if c.state == "running"]
    return HydraCreativeData(chapters=(*newest[:CHAPTER_LIST_LIMIT], *older_running))


class HydraCreativeCoordinator(HydraPartCoordinator[HydraCreativeData, CreativeClient]):
    """The worker's chapters: pushed by the event stream, polled every five minutes."""

    part = "creative"
    api_type = CreativeClient
    disabled = "creative_disabled"
    interval = CREATIVE_SCAN_INTERVAL

    def __init__(
        self, hass: HomeAssistant, entry: HydraConfigEntry, client: HydraClient, worker_id: str
    ) -> None:
        """Set up the coordinator for one worker's chapters."""
        super().__init__(hass, entry, client, worker_id)
        # Chapters pushed while a poll is under way, applied again on top of what it read.
        self._during_poll: list[ChapterStatus] | None = None

    @override
    async def async_fetch(self) -> HydraCreativeData:
        """Read the newest chapters and the running ones."""
        newest, running = await asyncio.gather(
            self.api.async_chapters(limit=CHAPTER_LIST_LIMIT),
            self.api.async_chapters(state="running"),
        )
        return _keep({chapter.id: chapter for chapter in (*running, *newest)})

    @override
    async def _async_update_data(self) -> HydraCreativeData:
        self._during_poll = []
        try:
            data = await self.async_fetch()
        except HydraError as err:
            raise_update_failed(err)
        finally:
            pushed, self._during_poll = self._during_poll, None
        chapters = data.by_id()
        chapters.update((chapter.id, chapter) for chapter in pushed)
        return _keep(chapters)

    @override
    async def async_handle_event(self, event: WorkerEvent) -> None:
        """Apply a pushed chapter; tell automations (and the notify targets) how it goes."""
        if event.type != EVENT_CHAPTER:
            return
        chapter = load(ChapterStatus, event.data["chapter"])
        self.async_apply_chapter(chapter)
        async_chapter_event(self.hass, self.config_entry, str(event.data["event"]), chapter)

    @override
    def diagnostics(self) -> dict[str, Any]:
        # A chapter's text and names are the user's; where each stands is enough to debug.
        return {
            **super().diagnostics(),
            "event_stream_connected": self.pushed,
            "chapters": [
                {
                    "id": chapter.id,
                    "state": chapter.state,
                    "stage": chapter.stage,
                    "percent": chapter.percent,
                    "error": chapter.error,
                }
                for chapter in self.data.chapters
            ],
        }

    @callback
    def async_apply_chapter(self, chapter: ChapterStatus) -> None:
        """A chapter as the worker just told it."""
        if self._during_poll is not None:
            self._during_poll.append(chapter)
        chapters = self.data.by_id()
        chapters[chapter.id] = chapter
        self.async_set_updated_data(_keep(chapters))
