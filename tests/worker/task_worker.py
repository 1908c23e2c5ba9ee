"""The real worker process for crash tests and the chaos benchmark, with test task kinds.

``python tests/worker/task_worker.py [hydra-worker options]`` runs ``hydra-worker``'s own entry
point (the data-dir lock, start-up recovery, the real queue and API) with one more part,
``crashtest``, whose task kinds write what they do to ``DATA_DIR/runs.log``: one line per event,
each appended by a single ``write`` on an ``O_APPEND`` descriptor, so a kill -9 leaves whole
lines and the tests count runs by what the handler did, not by the scheduler's own fields.

- ``gate``: logs ``start <id> <attempt>``, waits until ``DATA_DIR/release/<id>`` exists (giving
  up when the task is cancelled or the worker stops), then logs ``done <id> <attempt>``.
- ``effect``: logs ``start <id> <attempt>``, works for ``ms`` milliseconds, then applies its
  effect once per task id: ``effect <id>`` the first time, ``skip <id>`` when an earlier attempt
  already applied it and was killed before the queue recorded the success (at-least-once
  delivery made idempotent by task id, as every handler must be).
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


def task_worker_command(port: int, data_dir: Path, token: str, *options: str) -> list[str]:
    """The command line of a worker on 127.0.0.1 with only the queue (and these kinds), unless
    ``options`` (which win) switch more parts on."""
    return [
        sys.executable,
        str(WORKER),
        *("--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)),
        *("--token", token, "--gpu-backend", "none", "--docker-host", "none"),
        *("--voice", "false", "--quality", "false"),
        *options,
    ]


def runs(data_dir: Path) -> list[tuple[str, int, int | None]]:
    """The handler's log: (event, task id, attempt or None)."""
    try:
        text = (data_dir / RUNS_LOG).read_text()
    except FileNotFoundError:
        return []
    found: list[tuple[str, int, int | None]] = []
    for line in text.splitlines():
        event, task_id, *attempt = line.split()
        found.append((event, int(task_id), int(attempt[0]) if attempt else None))
    return found


class RunsLog:
    """Lines appended to DATA_DIR/runs.log, each in one write."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / RUNS_LOG
        self.effects = {task_id for event, task_id, _ in runs(data_dir) if event == "effect"}

    def write(self, *fields: object) -> None:
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(descriptor, (" ".join(map(str, fields)) + "\n").encode())
        finally:
            os.close(descriptor)


class Gate(TaskHandler):
    """Runs until the test lets it finish."""

    kind: ClassVar[str] = "gate"

    def __init__(self, log: RunsLog, release: Path) -> None:
        self._log = log
        self._release = release

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        if payload:
            raise PayloadError("gate takes no payload")
        return payload

    async def run(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        self._log.write("start", context.task_id, context.attempt)
        while not (self._release / str(context.task_id)).exists():
            context.check_cancelled()
            await asyncio.sleep(0.02)
        self._log.write("done", context.task_id, context.attempt)
        return {"attempt": context.attempt}


class Effect(TaskHandler):
    """Works a while, then applies its effect once per task id."""

    kind: ClassVar[str] = "effect"
    max_attempts: ClassVar[int] = 20

    def __init__(self, log: RunsLog) -> None:
        self._log = log

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(payload.get("ms"), int):
            raise PayloadError("ms must be a whole number")
        return payload

    async def run(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        self._log.write("start", context.task_id, context.attempt)
        await asyncio.sleep(payload["ms"] / 1000)
        if context.task_id in self._log.effects:
            self._log.write("skip", context.task_id)
        else:
            self._log.write("effect", context.task_id)
            self._log.effects.add(context.task_id)
        return {}


@dataclass(frozen=True, slots=True)
class _NoOptions:
    """A test part has no options."""


class KindsTestPart(Part):
    """Hands the queue a test's task kinds: a subclass names the part and makes its kinds."""

    options = _NoOptions
    disabled_message = "This worker runs no test task kinds"

    def __init__(self, handlers: list[TaskHandler]) -> None:
        self._handlers = handlers

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls.disabled_code = f"{cls.name}_disabled"

    @classmethod
    def build(cls, context: BuildContext) -> Self:
        return cls(cls.kinds(context))

    @classmethod
    def kinds(cls, context: BuildContext) -> list[TaskHandler]:
        """The task kinds this worker runs."""
        raise NotImplementedError

    def task_handlers(self) -> list[TaskHandler]:
        return self._handlers


class CrashTestPart(KindsTestPart):
    """The crash tests' kinds."""

    name = "crashtest"

    @classmethod
    def kinds(cls, context: BuildContext) -> list[TaskHandler]:
        log = RunsLog(context.data_dir)
        return [Gate(log, context.data_dir / RELEASE_DIR), Effect(log)]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], parts=(CrashTestPart, *PARTS)))
