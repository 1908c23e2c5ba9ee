"""A real worker process for the cluster tests and benchmark, with GPU-hungry test task kinds.

``python tests/cluster/cluster_worker.py [hydra-worker options]`` runs ``hydra-worker``'s own
entry point with one more part whose kinds append what they do to ``DATA_DIR/runs.log`` (one
``write`` per line on an ``O_APPEND`` descriptor, so a kill -9 leaves whole lines): the tests
count runs on each node by the handler's side effects.

Every kind logs ``start <id> <attempt>`` and, when its work is done, ``done <id> <attempt>``;
the work is ``ms`` milliseconds, or (``hold``) until ``DATA_DIR/release/<id>`` exists on the
node that runs it. ``big`` asks for 12,000 MB of VRAM, ``small`` and ``hold`` 6,000, ``huge``
100,000 (more than any node), ``chat`` none (routing rules send it to a label), ``tiny`` none
(the benchmark's small task).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import os
from pathlib import Path
import sys
from typing import Any, ClassVar, Self

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hydra_core.scheduler import PayloadError, TaskContext, TaskHandler
from hydra_core.worker.__main__ import main
from hydra_core.worker.part import BuildContext, Part
from hydra_core.worker.parts import PARTS

RUNS_LOG = "runs.log"
RELEASE_DIR = "release"
WORKER = Path(__file__)


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

    def __init__(self, data_dir: Path) -> None:
        self._log = data_dir / RUNS_LOG
        self._release = data_dir / RELEASE_DIR

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        if set(payload) - {"ms"} or not isinstance(payload.get("ms", 0), int):
            raise PayloadError("the payload is {ms: whole number}")
        return payload

    def _write(self, *fields: object) -> None:
        descriptor = os.open(self._log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(descriptor, (" ".join(map(str, fields)) + "\n").encode())
        finally:
            os.close(descriptor)

    async def run(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        self._write("start", context.task_id, context.attempt)
        if self.hold:
            while not (self._release / str(context.task_id)).exists():
                context.check_cancelled()
                await asyncio.sleep(0.02)
        elif payload.get("ms"):
            await asyncio.sleep(payload["ms"] / 1000)
        context.check_cancelled()
        self._write("done", context.task_id, context.attempt)
        return {"attempt": context.attempt, "pid": os.getpid()}


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


class Chat(Work):
    kind: ClassVar[str] = "chat"
    needs_gpu = False


class Tiny(Chat):
    kind: ClassVar[str] = "tiny"


@dataclass(frozen=True, slots=True)
class _NoOptions:
    """The test part has no options."""


class ClusterTestPart(Part):
    """Hands the queue the test task kinds."""

    name = "clustertest"
    options = _NoOptions
    disabled_code = "clustertest_disabled"
    disabled_message = "This worker runs no test task kinds"

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir

    @classmethod
    def build(cls, context: BuildContext) -> Self:
        return cls(context.data_dir)

    def task_handlers(self) -> list[TaskHandler]:
        return [kind(self._data_dir) for kind in (Big, Small, Hold, Huge, Chat, Tiny)]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], parts=(ClusterTestPart, *PARTS)))
