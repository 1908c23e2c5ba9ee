"""A progress sensor per chapter, from when it is sent until a day after it ends.

A chapter's sensor appears as soon as Home Assistant hears of the chapter and shows its percent
done, with the stage and counts as attributes. Once the chapter has ended it stays for
CHAPTER_KEEP (24 h: the morning after an overnight run still shows how it went), and the newest
chapter keeps its sensor until another is sent, so a dashboard is never left with nothing; then
the sensor is removed from Home Assistant (its history stays in the recorder). Removed rather
than left unavailable: chapters never come back (a retried one gets its sensor back), so
unavailable sensors would only pile up, one per chapter, for the user to delete by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
import dataclasses
from typing import Any, override

from homeassistant.components.sensor import SensorEntity, SensorEntityDescription
from homeassistant.const import PERCENTAGE
from homeassistant.core import callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from hydra_core.creative.models import ChapterStatus

from ...const import CHAPTER_KEEP, LOGGER
from ...data import HydraConfigEntry
from ...entity import HydraWorkerPartEntity
from .coordinator import HydraCreativeCoordinator, HydraCreativeData
from .describe import chapter_name

# Each chapter's sensor is this description with its own key and name.
CHAPTER_PROGRESS = SensorEntityDescription(
    key="chapter",
    translation_key="chapter_progress",
    native_unit_of_measurement=PERCENTAGE,
    suggested_display_precision=0,
)


def shown_chapters(data: HydraCreativeData, now: float) -> list[ChapterStatus]:
    """The chapters that have a sensor: unfinished ones, ones that ended less than CHAPTER_KEEP
    ago, and the newest."""
    keep = CHAPTER_KEEP.total_seconds()
    newest = max((chapter.id for chapter in data.chapters), default=None)
    return [
        chapter
        for chapter in data.chapters
        if not chapter.finished
        or chapter.id == newest
        or (chapter.finished_at is not None and now - chapter.finished_at < keep)
    ]


@callback
def async_setup_sensors(
    entry: HydraConfigEntry,
    coordinator: HydraCreativeCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """A progress sensor per chapter shown, now and as chapters come and go."""
    prefix = f"{coordinator.worker_id}_{CHAPTER_PROGRESS.key}_"
    registry = er.async_get(coordinator.hass)
    known: set[int] = set()

    @callback
    def follow() -> None:
        if not coordinator.last_update_success:
            # What the worker has is not known: nothing is removed meanwhile.
            return
        shown = {
            chapter.id: chapter
            for chapter in shown_chapters(coordinator.data, dt_util.utcnow().timestamp())
        }
        if new := [chapter for chapter_id, chapter in shown.items() if chapter_id not in known]:
            known.update(chapter.id for chapter in new)
            async_add_entities(HydraChapterSensor(coordinator, chapter) for chapter in new)
        for entity in _chapter_entities(registry, entry, prefix):
            chapter_id = int(entity.unique_id.removeprefix(prefix))
            if chapter_id not in shown:
                LOGGER.debug("Removing %s: its chapter ended long ago", entity.entity_id)
                registry.async_remove(entity.entity_id)
        known.intersection_update(shown)

    follow()
    entry.async_on_unload(coordinator.async_add_listener(follow))


def _chapter_entities(
    registry: er.EntityRegistry, entry: HydraConfigEntry, prefix: str
) -> Iterable[er.RegistryEntry]:
    """The entry's chapter sensors in the entity registry (also those of earlier runs)."""
    return [
        entity
        for entity in er.async_entries_for_config_entry(registry, entry.entry_id)
        if entity.unique_id.startswith(prefix) and entity.unique_id[len(prefix) :].isdecimal()
    ]


class HydraChapterSensor(HydraWorkerPartEntity[HydraCreativeCoordinator], SensorEntity):
    """How far one chapter is, in percent; its stage, counts, package and error as attributes."""

    def __init__(self, coordinator: HydraCreativeCoordinator, chapter: ChapterStatus) -> None:
        """Describe the chapter's sensor, named after the chapter."""
        super().__init__(
            coordinator,
            dataclasses.replace(
                CHAPTER_PROGRESS,
                key=f"{CHAPTER_PROGRESS.key}_{chapter.id}",
                translation_placeholders={"chapter": chapter_name(chapter)},
            ),
        )
        self.chapter_id = chapter.id

    @property
    def chapter(self) -> ChapterStatus | None:
        """The chapter as last told; None once Home Assistant no longer keeps it."""
        return next((c for c in self.coordinator.data.chapters if c.id == self.chapter_id), None)

    @property
    @override
    def available(self) -> bool:
        return super().available and self.chapter is not None

    @property
    @override
    def native_value(self) -> float | None:
        chapter = self.chapter
        return None if chapter is None else round(chapter.percent, 1)

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any]:
        if (chapter := self.chapter) is None:
            return {}
        return {
            "chapter_id": chapter.id,
            "title": chapter.title,
            "project": chapter.project,
            "state": chapter.state,
            "stage": chapter.stage,
            "images_done": chapter.images.done,
            "images_total": chapter.images.total,
            "voices_done": chapter.voices.done,
            "voices_total": chapter.voices.total,
            "auto_accepted": chapter.auto_accepted,
            "pending_review": chapter.pending_review,
            "failed_assets": len(chapter.failed_assets),
            "package": chapter.package,
            "error": chapter.error,
        }
