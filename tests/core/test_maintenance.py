"""The maintenance task's clean-up: it removes only old files inside the outputs folder, audits
each removal first, lists what a dry run would remove, refuses a retention under a day, and the
worker refuses an outputs folder whose clean-up could reach its state or its models."""

from __future__ import annotations

from collections.abc import AsyncIterator
import os
from pathlib import Path
import time

import pytest

from hydra_core.audit import AuditLog, AuditQuery
from hydra_core.scheduler import MaintenanceHandler, TaskContext
from hydra_core.scheduler.handlers import PayloadError
from hydra_core.scheduler.maintenance import ACTION_REMOVE
from hydra_core.worker.__main__ import main
from hydra_core.worker.config import ConfigError, load_config

TWO_MONTHS_S = 60 * 86400


def _file(path: Path, size: int, *, age_s: float = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    if age_s:
        then = time.time() - age_s
        os.utime(path, (then, then), follow_symlinks=False)
    return path


def _context(task_id: int = 7) -> TaskContext:
    async def report(_percent: float, _message: str | None) -> None:
        return None

    return TaskContext(task_id, 1, report, lambda: False, lambda: None)


@pytest.fixture
async def audit(tmp_path: Path) -> AsyncIterator[AuditLog]:
    log = AuditLog(tmp_path / "audit.db")
    await log.async_open()
    yield log
    await log.async_close()


async def test_each_removal_is_audited_and_only_old_outputs_go(
    tmp_path: Path, audit: AuditLog
) -> None:
    outputs = tmp_path / "outputs"
    old = _file(outputs / "chapter-1" / "bg.png", 100, age_s=TWO_MONTHS_S)
    also_old = _file(outputs / "voice.wav", 50, age_s=TWO_MONTHS_S)
    new = _file(outputs / "new.png", 10)
    # A link inside the outputs to a folder elsewhere: what it points at is never touched.
    elsewhere = _file(tmp_path / "elsewhere" / "keep.png", 10, age_s=TWO_MONTHS_S)
    (outputs / "linked").symlink_to(elsewhere.parent, target_is_directory=True)
    handler = MaintenanceHandler(tmp_path, outputs, audit=audit)

    result = await handler.run(handler.validate({"retention_days": 30}), _context(7))

    assert (result["removed_files"], result["freed_bytes"]) == (2, 150)
    assert not old.exists()
    assert not also_old.exists()
    assert new.exists()
    assert elsewhere.exists()
    entries = await audit.async_query(AuditQuery(action=ACTION_REMOVE))
    assert sorted(entry.container for entry in entries) == [
        "outputs/chapter-1/bg.png",
        "outputs/voice.wav",
    ]
    assert {(entry.actor.type, entry.actor.id, entry.result) for entry in entries} == {
        ("task", "7", "ok")
    }
    assert {entry.reason for entry in entries} == {"older than 30 days"}


async def test_a_dry_run_lists_what_would_go_and_removes_nothing(
    tmp_path: Path, audit: AuditLog
) -> None:
    outputs = tmp_path / "outputs"
    old = _file(outputs / "old.png", 100, age_s=TWO_MONTHS_S)
    handler = MaintenanceHandler(tmp_path, outputs, audit=audit)

    result = await handler.run(
        handler.validate({"retention_days": 30, "dry_run": True}), _context()
    )

    assert result["would_remove"] == ["old.png"]
    assert (result["removed_files"], result["freed_bytes"]) == (1, 100)
    assert old.exists()
    assert await audit.async_query(AuditQuery(action=ACTION_REMOVE)) == []


@pytest.mark.parametrize("days", [1e-9, 0.5, 0, -1, float("nan")])
def test_retention_under_a_day_is_refused(tmp_path: Path, days: float) -> None:
    handler = MaintenanceHandler(tmp_path, tmp_path / "outputs")
    with pytest.raises(PayloadError, match="at least 1"):
        handler.validate({"retention_days": days})


def test_a_day_is_allowed(tmp_path: Path) -> None:
    handler = MaintenanceHandler(tmp_path, tmp_path / "outputs")
    assert handler.validate({"retention_days": 1})["retention_days"] == 1


@pytest.mark.parametrize(
    ("outputs", "models", "expected"),
    [
        ("data", None, "is or holds the data dir"),
        (".", None, "is or holds the data dir"),
        ("data/models", None, "is or holds the models folder"),
        ("data/models/clip", None, "inside the models folder"),
        ("data/assets", None, "inside the data dir"),
        ("elsewhere", "elsewhere/models", "is or holds the models folder"),
    ],
)
def test_outputs_that_could_reach_the_workers_state_are_refused(
    tmp_path: Path, outputs: str, models: str | None, expected: str
) -> None:
    argv = ["--data-dir", str(tmp_path / "data"), "--outputs-dir", str(tmp_path / outputs)]
    if models is not None:
        argv += ["--models-dir", str(tmp_path / models)]
    with pytest.raises(ConfigError, match=expected):
        load_config(argv, environ={})


@pytest.mark.parametrize("outputs", [None, "data/outputs", "share/outputs"])
def test_outputs_of_their_own_are_accepted(tmp_path: Path, outputs: str | None) -> None:
    argv = ["--data-dir", str(tmp_path / "data")]
    if outputs is not None:
        argv += ["--outputs-dir", str(tmp_path / outputs)]
    load_config(argv, environ={})


def test_the_worker_will_not_start_on_its_own_data_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    assert main(["--data-dir", str(data), "--outputs-dir", str(data)]) == 2
    assert "outputs_dir" in capsys.readouterr().err
    assert not data.exists()
