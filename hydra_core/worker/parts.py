"""The parts a worker can run, in the order they are built, started and documented.

A part built later may use the ones before it (the task queue runs the handlers of the parts
listed before it; the creative part, which queues tasks itself, adds its own to the queue and
shares the voice part's Kokoro; metrics, last, hears every part's stage timings); they stop in
reverse order. So what the queue's tasks use stops after the queue: the voice part comes
before it, or a stop would close Kokoro under a chapter's voice lines (each then failed an
attempt instead of going back to the queue).
"""

from __future__ import annotations

from ..arbiter.part import ModelsPart
from ..cluster.part import ClusterPart
from ..containers.part import ContainersPart
from ..creative.part import CreativePart
from ..forecasts.part import ForecastsPart
from ..gpu.part import GpuPart
from ..knowledge.part import KnowledgePart
from ..metrics.part import MetricsPart
from ..power.part import PowerPart
from ..quality.part import QualityPart
from ..scheduler.part import TasksPart
from ..voice.part import VoicePart
from .part import Part

PARTS: tuple[type[Part], ...] = (
    GpuPart,
    PowerPart,
    ContainersPart,
    ForecastsPart,
    QualityPart,
    KnowledgePart,
    VoicePart,
    TasksPart,
    CreativePart,
    ModelsPart,
    ClusterPart,
    MetricsPart,
)
