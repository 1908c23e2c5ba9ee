"""A real worker process for the cluster tests and benchmark, with GPU-hungry test task kinds.

``python tests/cluster/cluster_worker.py [hydra-worker options]`` runs ``hydra-worker``'s own
entry point with one more part whose kinds append what they do to ``DATA_DIR/runs.log`` (one
``write`` per line on an ``O_APPEND`` descriptor, so a kill -9 leaves whole lines): the tests
count runs on each node by the handler's side effects.

Every kind logs ``start <id> <attempt>`` and, when its work is done, ``done <id> <attempt>``;
the work is ``ms`` milliseconds, or (``hold``) until ``DATA_DIR/release/<id>`` exists on the
node that runs it. ``big`` asks for 12,000 MB of VRAM, ``small``, ``medium`` and ``hold``
6,000, ``huge`` 100,000 (more than any node), ``chat`` none (routing rules send it to a label),
``tiny`` none (the benchmark's small task).

``occupy`` is queued on a node's own worker (no rule routes it): it takes ``mb`` of the node's
simulated GPU 0, as a model server's load does, until ``DATA_DIR/release/<id>`` exists. The
simulated card is still here (no drift): its free memory is what ``occupy`` leaves.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
import sys
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hydra_core.gpu import GpuProbe, SimulatedProbe, create_probe
from hydra_core.scheduler import PayloadError, TaskContext, TaskHandler
from hydra_core.worker import __main__ as worker_main
from hydra_core.worker.part import BuildContext
from hydra_core.worker.parts import PARTS
from tests.worker.task_worker import RELEASE_DIR, RUNS_LOG, KindsTestPart, RunsLog

WORKER = Path(__file__)
_MIB = 1024**2


def runs(data_dir: Path) -> list[tuple[str, int, int]]:
    """The handler's log on one node: (event, task id, attempt)."""
    try:
        text = (data_dir / RUNS_LOG).read_text()
    except FileNotFoundError:
        return []
    return [
        (event, int(task_id), int(attempt))
        for event, task_id, attempt in (line.split() for line in text.splitlines())
    ]


class Work(TaskHandler):
    """Logs its start, works ``ms`` milliseconds (or until released), logs its end."""

    kind: ClassVar[str] = "work"
    needs_gpu = True
    hold: ClassVar[bool] = False

    def __init__(self, data_dir: Path, probe: GpuProbe) -> None:
        self._log = RunsLog(data_dir)
        self._release = data_dir / RELEASE_DIR
        self._probe = probe

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        if set(payload) - {"ms", "mb"} or not all(isinstance(v, int) for v in payload.values()):
            raise PayloadError("the payload is {ms: whole number, mb: whole number}")
        return payload

    async def run(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        self._log.write("start", context.task_id, context.attempt)
        owner = f"occupy {context.task_id}"
        if payload.get("mb") and isinstance(self._probe, SimulatedProbe):
            self._probe.allocate(0, owner, payload["mb"] * _MIB)
        try:
            await self._work(payload, context)
        finally:
            if isinstance(self._probe, SimulatedProbe):
                self._probe.release(0, owner)
        self._log.write("done", context.task_id, context.attempt)
        return {"attempt": context.attempt, "pid": os.getpid()}

    async def _work(self, payload: dict[str, Any], context: TaskContext) -> None:
        if self.hold:
            await context.report_progress(10, "holding")
            while not (self._release / str(context.task_id)).exists():
                context.check_cancelled()
                await asyncio.sleep(0.02)
        elif payload.get("ms"):
            await asyncio.sleep(payload["ms"] / 1000)
        context.check_cancelled()


class Big(Work):
    kind: ClassVar[str] = "big"
    vram_gb: ClassVar[float] = 12000 / 1024


class Small(Work):
    kind: ClassVar[str] = "small"
    vram_gb: ClassVar[float] = 6000 / 1024


class Hold(Small):
    kind: ClassVar[str] = "hold"
    hold: ClassVar[bool] = True


class Huge(Work):
    kind: ClassVar[str] = "huge"
    vram_gb: ClassVar[float] = 100_000 / 1024


class Medium(Small):
    kind: ClassVar[str] = "medium"


class Chat(Work):
    kind: ClassVar[str] = "chat"
    needs_gpu = False


class Tiny(Chat):
    kind: ClassVar[str] = "tiny"


class Occupy(Chat):
    kind: ClassVar[str] = "occupy"
    hold: ClassVar[bool] = True


class ClusterTestPart(KindsTestPart):
    """The cluster tests' kinds."""

    name = "clustertest"

    @classmethod
    def kinds(cls, context: BuildContext) -> list[TaskHandler]:
        kinds = (Big, Small, Medium, Hold, Huge, Chat, Tiny, Occupy)
        return [kind(context.data_dir, context.probe) for kind in kinds]


def _still_probe(backend: str, *, simulated_count: int = 2) -> GpuProbe:
    """The worker's probe, with a simulated card whose memory moves only with ``occupy``."""
    if backend == "simulated":
        return SimulatedProbe(simulated_count, drift=False)
    return create_probe(backend, simulated_count=simulated_count)


if __name__ == "__main__":
    worker_main.create_probe = _still_probe
    sys.exit(worker_main.main(sys.argv[1:], parts=(ClusterTestPart, *PARTS)))
