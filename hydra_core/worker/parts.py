"""The parts a worker can run, in the order they are built, started and documented.

A part built later may use the ones before it (the task queue runs the handlers of the parts
listed before it; the creative part, which queues tasks itself, adds its own to the queue and
shares the voice part's Kokoro); they stop in reverse order.
"""

from __future__ import annotations

from ..arbiter.part import ModelsPart
from ..cluster.part import ClusterPart
from ..containers.part import ContainersPart
from ..creative.part import CreativePart
from ..gpu.part import GpuPart
from ..knowledge.part import KnowledgePart
from ..power.part import PowerPart
from ..quality.part import QualityPart
from ..scheduler.part import TasksPart
from ..voice.part import VoicePart
from .part import Part

PARTS: tuple[type[Part], ...] = (
    GpuPart,
    PowerPart,
    ContainersPart,
    QualityPart,
    KnowledgePart,
    TasksPart,
    VoicePart,
    CreativePart,
    ModelsPart,
    ClusterPart,
)
