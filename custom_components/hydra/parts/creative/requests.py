"""What Home Assistant asks of the worker's chapters, and how it shows the answer: the actions'
requests, and starting the chapters that wait for the overnight pipeline (Assist's "start the
overnight pipeline" and the bedtime step)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from hydra_core.creative.models import ChapterStatus

from ...helpers import async_worker_request
from .coordinator import HydraCreativeCoordinator

if TYPE_CHECKING:
    from ...data import HydraConfigEntry

# What the user reads when the worker fails a request about chapters.
FAILED_KEY = "chapter_request_failed"


async def async_chapter_request(
    creative: HydraCreativeCoordinator, request: Awaitable[ChapterStatus]
) -> ChapterStatus:
    """The worker's answer about a chapter, shown at once (and polled for too while nothing is
    pushed), or the error the user reads."""
    chapter = await async_worker_request(creative, request, failed_key=FAILED_KEY)
    creative.async_apply_chapter(chapter)
    if not creative.pushed:
        await creative.async_request_refresh()
    return chapter


async def async_start_waiting_chapters(entry: HydraConfigEntry) -> list[ChapterStatus] | None:
    """Queue the chapters that wait for the overnight pipeline; the ones queued, or None for a
    worker without the creative pipeline."""
    if (creative := entry.runtime_data.part(HydraCreativeCoordinator)) is None:
        return None
    chapters = await async_worker_request(
        creative, creative.api.async_start_chapters(), failed_key=FAILED_KEY
    )
    for chapter in chapters:
        creative.async_apply_chapter(chapter)
    if chapters and not creative.pushed:
        await creative.async_request_refresh()
    return chapters
