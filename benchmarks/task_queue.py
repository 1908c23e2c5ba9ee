"""The task queue at 10,000 tasks: enqueue rate, dispatch decision time, queue file size.

Run: .venv-worker/bin/python -m benchmarks.task_queue [--count 10000]

The worker's real Scheduler and SQLite TaskStore on disk. Enqueue goes through the same path as
the API (validation, insert, event): half the tasks one after another (each waits for its
commit), half with 50 requests in flight (as when automations queue work at once). A dispatch
decision is one `Scheduler.async_dispatch()` with every task queued and every one held by the
GPU gate (there is no GPU here): the worst case, since the decision reads the best candidates,
checks each against the gate and starts none.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
import statistics
import tempfile
import time
from typing import Any, ClassVar

from hydra_core.events import EventBus
from hydra_core.gpu import NoGpuProbe
from hydra_core.models import Actor
from hydra_core.scheduler import Scheduler, TaskContext, TaskHandler, TaskStore
from hydra_core.scheduler.models import SchedulerSettings

_IN_FLIGHT = 50


class Render(TaskHandler):
    """A GPU task kind (never runs here: there is no GPU, so the gate holds it)."""

    kind: ClassVar[str] = "render"
    needs_gpu: ClassVar[bool] = True

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    async def run(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        return {}


async def _run(count: int, folder: Path) -> None:
    store_path = folder / "tasks.db"
    scheduler = Scheduler(
        TaskStore(store_path),
        handlers=[Render()],
        probe=NoGpuProbe(),
        bus=EventBus(),
        data_dir=folder,
        settings=SchedulerSettings(paused=True),
    )
    await scheduler.async_start()
    actor = Actor(type="api")
    half = count // 2

    async def enqueue(number: int) -> None:
        await scheduler.async_enqueue(
            "render", {"scene": number}, actor=actor, priority=number % 100
        )

    started = time.perf_counter()
    for number in range(half):
        await enqueue(number)
    elapsed = time.perf_counter() - started
    print(
        f"enqueue {half} tasks one after another: {half / elapsed:.0f} per s "
        f"({1000 * elapsed / half:.3f} ms each)"
    )
    started = time.perf_counter()
    for first in range(half, count, _IN_FLIGHT):
        await asyncio.gather(*(enqueue(n) for n in range(first, min(first + _IN_FLIGHT, count))))
    elapsed = time.perf_counter() - started
    print(
        f"enqueue {count - half} tasks, {_IN_FLIGHT} requests in flight: "
        f"{(count - half) / elapsed:.0f} per s"
    )

    await scheduler.async_update_settings(paused=False)
    decisions = []
    for _ in range(200):
        began = time.perf_counter()
        await scheduler.async_dispatch()
        decisions.append(time.perf_counter() - began)
    decisions.sort()
    print(
        f"dispatch decision with {count} queued, every task held by the GPU gate: "
        f"median {1000 * statistics.median(decisions):.3f} ms, "
        f"p95 {1000 * decisions[int(0.95 * len(decisions))]:.3f} ms"
    )
    await scheduler.async_stop()


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(_run(args.count, Path(folder)))
        size = sum(path.stat().st_size for path in Path(folder).glob("tasks.db*"))
    print(f"queue file size: {size / 1024**2:.1f} MiB ({size / args.count:.0f} bytes per task)")


if __name__ == "__main__":
    main()
