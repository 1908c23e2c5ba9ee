"""A worker process for crash tests: the real app and queue, plus a slow task kind.

``python tests/worker/task_worker.py PORT DATA_DIR TOKEN``. The ``slow`` kind sleeps for its
payload's ``seconds`` (reporting progress), so a test can kill the process mid-task.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
import signal
import sys
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aiohttp import web

from hydra_core.events import EventBus
from hydra_core.gpu import NoGpuProbe
from hydra_core.models import WorkerInfo
from hydra_core.scheduler import (
    PayloadError,
    Scheduler,
    TaskContext,
    TaskHandler,
    TaskStore,
)
from hydra_core.scheduler.part import TasksPart
from hydra_core.worker.app import create_app


class Slow(TaskHandler):
    """Sleeps, a second at a time."""

    kind: ClassVar[str] = "slow"
    max_attempts: ClassVar[int] = 3

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(payload.get("seconds"), int | float):
            raise PayloadError("seconds must be a number")
        return payload

    async def run(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        steps = max(int(payload["seconds"] * 10), 1)
        for step in range(steps):
            await asyncio.sleep(0.1)
            await context.report_progress(100 * (step + 1) / steps)
        return {"slept": payload["seconds"], "attempt": context.attempt}


async def main(port: int, data_dir: Path, token: str) -> None:
    bus = EventBus()
    probe = NoGpuProbe()
    scheduler = Scheduler(
        TaskStore(data_dir / "tasks.db"),
        handlers=[Slow()],
        probe=probe,
        bus=bus,
        data_dir=data_dir,
        stop_timeout_s=0.5,
    )
    app = create_app(
        info=WorkerInfo(worker_id="crash", name="crash", version="0"),
        token=token,
        probe=probe,
        bus=bus,
        parts=[TasksPart(scheduler)],
    )
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]))
