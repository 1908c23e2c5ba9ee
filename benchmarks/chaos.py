"""Chaos: tasks through a real worker process killed with SIGKILL at random moments.

Run: .venv-worker/bin/python -m benchmarks.chaos [--tasks 1000] [--kills 20] [--seed 1]

The worker is ``hydra-worker``'s own entry point (``tests/worker/task_worker.py``: the real
data-dir lock, start-up recovery, queue and API) with the test kind ``effect``: it logs
``start <id> <attempt>`` when a run begins, works 20-120 ms, then applies its effect once per
task id (``effect <id>``; ``skip <id>`` when an earlier run already applied it). Every line is one
``O_APPEND`` write, so a kill leaves whole lines. All tasks are queued first; then the worker is
killed at a random moment 0.2-1.5 s after each start, and restarted, until every task has
finished (and at least ``--kills`` times). The figures come from that log, not from the queue's
own counters:

- lost: a task whose effect was never applied;
- run twice: a task whose effect was applied more than once (what a user would see twice);
- re-runs: tasks whose handler started again after a kill (at-least-once delivery), and how
  many of those found their effect already applied: the kill landed after the effect and before
  the queue committed the success. No queue can make that window empty (the effect and the
  commit are not one transaction), so handlers are idempotent by task id.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from pathlib import Path
import random
import signal
import subprocess
import tempfile
import time

import aiohttp

from hydra_core.client import HydraClient, HydraError
from hydra_core.models import Actor
from hydra_core.scheduler.client import TasksClient
from tests.worker.task_worker import runs, task_worker_command
from tests.worker.test_cli import free_port, worker_env

TOKEN = "chaos-benchmark-token-0123456789"  # noqa: S105 - a test token
_IN_FLIGHT = 50
_UNFINISHED = ("queued", "waiting", "running")


class Worker:
    """The worker process, started again after each kill."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir = data_dir
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.start_s: list[float] = []

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.port = free_port()
        with self.log.open("ab") as output:
            return subprocess.Popen(
                task_worker_command(self.port, self.data_dir, TOKEN),
                env=worker_env(),
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    async def start(self, http: aiohttp.ClientSession) -> TasksClient:
        """Start the worker; its task calls once it answers."""
        began = time.monotonic()
        self.process = self._spawn()
        tasks = TasksClient(HydraClient(http, f"http://127.0.0.1:{self.port}", TOKEN))
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise SystemExit(f"The worker exited with {code}; see {self.log}")
            try:
                await tasks.async_scheduler()
                break
            except HydraError:
                await asyncio.sleep(0.02)
        self.start_s.append(time.monotonic() - began)
        return tasks

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=30)


async def _unfinished(tasks: TasksClient) -> int:
    counts = (await tasks.async_scheduler()).counts
    return sum(counts.get(state, 0) for state in _UNFINISHED)


async def _run(count: int, min_kills: int, seed: int, folder: Path) -> None:
    rng = random.Random(seed)  # noqa: S311 - kill moments, not security
    worker = Worker(folder / "data", folder / "worker.log")
    actor = Actor(type="api", name="chaos")
    async with aiohttp.ClientSession() as http:
        tasks = await worker.start(http)
        await tasks.async_update_scheduler(max_concurrent=2)
        queued: list[int] = []
        for first in range(0, count, _IN_FLIGHT):
            batch = await asyncio.gather(
                *(
                    tasks.async_queue_task("effect", {"ms": rng.randint(20, 120)}, actor=actor)
                    for _ in range(first, min(first + _IN_FLIGHT, count))
                )
            )
            queued.extend(task.id for task in batch)
        kills = 0
        began = time.monotonic()
        while True:
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            if kills >= min_kills and await _unfinished(tasks) == 0:
                break
            worker.kill()
            kills += 1
            tasks = await worker.start(http)
        elapsed = time.monotonic() - began
        failed = len(await tasks.async_tasks(state="failed", limit=1000))
        worker.stop()

    log = runs(worker.data_dir)
    effects = Counter(task_id for event, task_id, _ in log if event == "effect")
    starts = Counter(task_id for event, task_id, _ in log if event == "start")
    skipped = {task_id for event, task_id, _ in log if event == "skip"}
    lost = [task_id for task_id in queued if effects[task_id] == 0]
    twice = [task_id for task_id in queued if effects[task_id] > 1]
    rerun = [task_id for task_id in queued if starts[task_id] > 1]
    print(f"tasks: {len(queued)}   (goal 1,000)")
    print(f"kills: {kills} SIGKILL in {elapsed:.0f} s   (goal >= 20)")
    print(f"lost: {len(lost)}   (goal 0)")
    print(f"run twice: {len(twice)}   (goal 0)")
    print(f"tasks failed by the queue: {failed}   (goal 0)")
    print(
        f"re-runs after a kill: {len(rerun)} tasks started again; {len(skipped)} of them found"
        " their effect already applied (killed between the effect and the commit) and skipped it"
    )
    print(
        f"worker start after a kill: median {sorted(worker.start_s)[len(worker.start_s) // 2]:.2f}"
        f" s, max {max(worker.start_s):.2f} s"
    )


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(_run(args.tasks, args.kills, args.seed, Path(folder)))


if __name__ == "__main__":
    main()
