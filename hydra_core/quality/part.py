"""The quality part: CLIP scoring, the character registry and the review loop."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

from ..gpu.options import GpuOptions
from ..scheduler.handlers import TaskHandler
from ..scheduler.part import outputs_dir
from ..worker.part import BuildContext, RunningPart
from .models import EVENT_ASSET, EVENT_QUALITY
from .options import QualityOptions
from .service import QualityService
from .task import QualityScoringHandler


class QualityPart(RunningPart[QualityService]):
    """Scores images, keeps them for review and learns from the decisions."""

    name = "quality"
    options = QualityOptions
    event_types = (EVENT_ASSET, EVENT_QUALITY)
    disabled_code = "quality_disabled"
    disabled_message = "This worker does not score images"
    route_modules = ("routes",)  # ``/quality``, ``/characters`` and ``/assets``

    def __init__(self, service: QualityService, *, scoring: TaskHandler | None = None) -> None:
        """``scoring``: the quality_scoring task handler, when the worker runs a task queue."""
        super().__init__(service)
        self._scoring = scoring
        # Requests carrying images being handled now (routes.MAX_IMAGE_REQUESTS at most).
        self.image_requests = 0

    @classmethod
    def build(cls, context: BuildContext) -> Self | None:
        """Off when the quality option is false."""
        options = context.options(QualityOptions)
        if not options.quality:
            return None
        service = QualityService(
            options, data_dir=context.data_dir, models_dir=context.models_dir, bus=context.bus
        )
        # Scoring on the CPU, or on a worker that does not look at its GPUs, waits for none.
        on_gpu = (
            options.quality_device != "cpu" and context.options(GpuOptions).gpu_backend != "none"
        )
        return cls(
            service,
            scoring=QualityScoringHandler(service, outputs_dir(context), needs_gpu=on_gpu),
        )

    def task_handlers(self) -> Sequence[TaskHandler]:
        """quality_scoring."""
        return () if self._scoring is None else (self._scoring,)

    def capabilities(self) -> tuple[str, ...]:
        """Whether images can be scored here (the review loop works without it)."""
        return ("scoring",) if self.service.engine.available else ()
