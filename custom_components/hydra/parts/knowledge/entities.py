"""The knowledge base's sensors: the chunks of text it holds (memories, feeds, the model and the
store as attributes), the documents they came from, the research findings made today, and when
it last took something in.

Chunks, not pages: a page, a feed entry or a mail becomes one chunk or more, and the chunks are
what the store searches and what its size warning counts (local mode is good to about 20,000).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, override

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.core import callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from hydra_core.knowledge.models import KnowledgeStatus

from ...data import HydraConfigEntry
from ...entity import HydraWorkerPartEntity
from .coordinator import HydraKnowledgeCoordinator


@dataclass(frozen=True, kw_only=True)
class HydraKnowledgeSensorDescription(SensorEntityDescription):
    """A sensor of the knowledge base's status; ``today`` counts only what happened since
    midnight."""

    value_fn: Callable[[KnowledgeStatus], float | int | datetime | None]
    attributes_fn: Callable[[KnowledgeStatus], dict[str, Any]] = lambda _status: {}
    today: bool = False


def _last_ingestion(status: KnowledgeStatus) -> datetime | None:
    if status.last_ingestion is None:
        return None
    return dt_util.utc_from_timestamp(status.last_ingestion)


KNOWLEDGE_SENSORS: tuple[HydraKnowledgeSensorDescription, ...] = (
    HydraKnowledgeSensorDescription(
        key="knowledge_chunks",
        translation_key="knowledge_chunks",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda status: status.chunks,
        attributes_fn=lambda status: {
            "memories": status.memories,
            "feeds": status.feeds,
            "backend": status.backend,
            "model": status.model,
            "model_state": status.model_state,
            "summariser": status.summariser,
            "available": status.available,
            "reason": status.reason,
            "warning": status.warning,
        },
    ),
    HydraKnowledgeSensorDescription(
        key="knowledge_documents",
        translation_key="knowledge_documents",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda status: status.documents,
    ),
    HydraKnowledgeSensorDescription(
        key="findings_today",
        translation_key="findings_today",
        state_class=SensorStateClass.TOTAL,
        today=True,
        value_fn=lambda status: status.findings_today,
    ),
    HydraKnowledgeSensorDescription(
        key="last_ingestion",
        translation_key="last_ingestion",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=_last_ingestion,
    ),
)


@callback
def async_setup_sensors(
    entry: HydraConfigEntry,
    coordinator: HydraKnowledgeCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The knowledge base's sensors."""
    async_add_entities(
        HydraKnowledgeSensor(coordinator, description) for description in KNOWLEDGE_SENSORS
    )


class HydraKnowledgeSensor(HydraWorkerPartEntity[HydraKnowledgeCoordinator], SensorEntity):
    """One figure of the worker's knowledge base."""

    entity_description: HydraKnowledgeSensorDescription

    @property
    @override
    def native_value(self) -> float | int | datetime | None:
        return self.entity_description.value_fn(self.coordinator.data.status)

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any]:
        return self.entity_description.attributes_fn(self.coordinator.data.status)

    @property
    @override
    def last_reset(self) -> datetime | None:
        return dt_util.start_of_local_day() if self.entity_description.today else None
