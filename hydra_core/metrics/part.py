"""The metrics part: ``/api/v1/metrics`` for Prometheus, and the histograms behind it.

Built last, so every part with a ``service.timings`` (``StageTimings``: voice's speech-to-text
and first audio) is built before it and reports each stage into ``hydra_stage_duration_seconds``.
Task durations come from the event bus: each task that finishes is observed once, by kind and
final state. The histograms live in the part's own ``CollectorRegistry`` (never the global one:
a test process builds many workers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import functools
from typing import Self

from prometheus_client import CollectorRegistry, Histogram

from ..background import cancel
from ..events import EventBus, Subscription
from ..models import WorkerEvent
from ..scheduler.models import EVENT_TASK, FINISHED_TASK_STATES
from ..timings import StageTimings
from ..worker.part import BuildContext, Part
from .options import MetricsOptions

# Seconds: a maintenance run takes seconds, a chapter hours.
TASK_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, float("inf"))
# Seconds: a voice stage is felt past a few hundred milliseconds.
STAGE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, float("inf"))
METRICS_PATH = "/metrics"


class MetricsPart(Part):
    """Prometheus metrics of the worker and its parts."""

    name = "metrics"
    options = MetricsOptions
    disabled_code = "metrics_disabled"
    disabled_message = "This worker serves no metrics (its metrics option is off)"
    route_modules = ("routes",)  # ``/metrics``

    def __init__(
        self,
        *,
        bus: EventBus,
        timed: Mapping[str, StageTimings] | None = None,
        token: str | None = None,
    ) -> None:
        self._bus = bus
        self._token = token
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self.registry = CollectorRegistry()
        self.task_durations = Histogram(
            "hydra_task_duration_seconds",
            "How long finished tasks ran, from start to end, by kind and final state",
            ["kind", "state"],
            buckets=TASK_BUCKETS,
            registry=self.registry,
        )
        self.stage_durations = Histogram(
            "hydra_stage_duration_seconds",
            "How long each stage of a part's work took (voice: stt, tts_first_audio)",
            ["part", "stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        for part, timings in (timed or {}).items():
            timings.listen(functools.partial(self._observe_stage, part))

    @classmethod
    def build(cls, context: BuildContext) -> Self | None:
        """Off when the metrics option is false."""
        options = context.options(MetricsOptions)
        if not options.metrics:
            return None
        timed = {
            part.name: timings
            for part in context.built
            if isinstance(
                timings := getattr(getattr(part, "service", None), "timings", None), StageTimings
            )
        }
        return cls(bus=context.bus, timed=timed, token=options.metrics_token)

    def route_tokens(self) -> dict[str, str]:
        """The metrics token opens ``/metrics`` (and only it)."""
        return {METRICS_PATH: self._token} if self._token else {}

    async def async_start(self) -> None:
        """Follow the event bus for finished tasks."""
        self._subscription = self._bus.subscribe(internal=True)
        self._task = asyncio.create_task(self._follow(), name="hydra metrics")

    async def async_stop(self) -> None:
        """Stop following the bus."""
        await cancel(self._task)
        if self._subscription is not None:
            self._subscription.close()

    async def _follow(self) -> None:
        while self._subscription is not None:
            async for event in self._subscription:
                self._observe_task(event)
            # Cut off for falling behind a burst of events: listen again.
            self._subscription = self._bus.subscribe(internal=True)

    def _observe_task(self, event: WorkerEvent) -> None:
        if event.type == EVENT_TASK:
            task = event.data["task"]
            finished_now = (
                task["state"] in FINISHED_TASK_STATES and event.data["event"] == task["state"]
            )
            started, finished = task.get("started_at"), task.get("finished_at")
            if finished_now and started is not None and finished is not None:
                self.task_durations.labels(task["kind"], task["state"]).observe(
                    max(finished - started, 0.0)
                )

    def _observe_stage(self, part: str, stage: str, seconds: float) -> None:
        self.stage_durations.labels(part, stage).observe(seconds)
