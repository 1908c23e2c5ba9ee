"""The worker's state files: a corrupt one is set aside and the worker starts; every one is
written whole and synced."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
import sqlite3
import stat
from typing import Any

import aiohttp
import pytest

from hydra_core.client import HydraClient
from hydra_core.models import Actor
from hydra_core.scheduler.client import TasksClient
from hydra_core.scheduler.models import SchedulerState
from hydra_core.settings_file import save_settings
from hydra_core.worker.config import CoreOptions, ensure_token, ensure_worker_id

from .task_worker import runs
from .test_cli import QUIET_VOICE, request
from .worker_processes import TOKEN, WorkerProcesses

USER = Actor(type="user", id="u1", name="Ada")
NOT_A_DATABASE = b"These bytes were a database once. " * 200


def _runs_a_task(port: int, data_dir: Path) -> None:
    """A task queued now runs to the end (the handler's log says so)."""

    async def queue_and_wait() -> int:
        async with aiohttp.ClientSession() as http:
            tasks = TasksClient(HydraClient(http, f"http://127.0.0.1:{port}", TOKEN))
            task = await tasks.async_queue_task("effect", {"ms": 0}, actor=USER)
            async with asyncio.timeout(10):
                while (await tasks.async_task(task.id)).state != "succeeded":
                    await asyncio.sleep(0.05)
        return task.id

    task_id = asyncio.run(queue_and_wait())
    assert ("effect", task_id, None) in runs(data_dir)


def _update_scheduler(port: int, **changes: Any) -> SchedulerState:
    async def update() -> SchedulerState:
        async with aiohttp.ClientSession() as http:
            tasks = TasksClient(HydraClient(http, f"http://127.0.0.1:{port}", TOKEN))
            return await tasks.async_update_scheduler(**changes)

    return asyncio.run(update())


def _damage_a_page(path: Path) -> None:
    """A database whose header is fine but one of whose table pages is garbage."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE filler (id INTEGER PRIMARY KEY, text TEXT)")
    db.executemany("INSERT INTO filler (text) VALUES (?)", [("x" * 200,)] * 500)
    db.commit()
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with path.open("r+b") as file:
        file.seek(page_size * 5)
        file.write(b"\xff" * page_size)


@pytest.mark.parametrize(
    ("name", "spoil"),
    [
        ("tasks.db", lambda path: path.write_bytes(NOT_A_DATABASE)),
        ("tasks.db", _damage_a_page),
        ("audit.db", lambda path: path.write_bytes(NOT_A_DATABASE)),
    ],
    ids=["queue-not-a-database", "queue-damaged-page", "audit-not-a-database"],
)
def test_a_corrupt_database_is_set_aside_and_the_worker_starts(
    worker_processes: WorkerProcesses, name: str, spoil: Any
) -> None:
    path = worker_processes.data_dir / name
    spoil(path)
    spoiled = path.read_bytes()

    _process, port, log = worker_processes.start()

    _runs_a_task(port, worker_processes.data_dir)
    [entry] = worker_processes.status(port)["set_aside"]
    assert entry["path"] == str(path)
    moved = Path(entry["moved_to"])
    assert moved.parent == worker_processes.data_dir
    assert moved.name.startswith(f"{name}.corrupt-")
    assert moved.read_bytes() == spoiled  # kept for the user, untouched
    assert "database" in entry["reason"]
    assert f"Set {path} aside as {moved.name}" in log.read_text()

    # The next start finds a sound database: nothing more is set aside.
    worker_processes.stop()
    _process, port, _log = worker_processes.start()
    assert worker_processes.status(port)["set_aside"] == []
    assert sorted(p.name for p in worker_processes.data_dir.glob(f"{name}.corrupt-*")) == [
        moved.name
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"max_concurrent": "lots"}', "max_concurrent"),
        ('{"max_concurrent": 0}', "max_concurrent must be between 1 and 64"),
        ('{"poll_interval_s": 5, "paused": "no"}', "paused"),
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
    ],
)
def test_unusable_queue_settings_are_set_aside_and_the_queue_runs(
    worker_processes: WorkerProcesses, text: str, says: str
) -> None:
    path = worker_processes.data_dir / "scheduler.json"
    path.write_text(text)

    _process, port, _log = worker_processes.start()

    _runs_a_task(port, worker_processes.data_dir)
    [entry] = worker_processes.status(port)["set_aside"]
    assert entry["path"] == str(path)
    assert says in entry["reason"]
    assert Path(entry["moved_to"]).read_text() == text
    status, scheduler = request(port, "/api/v1/scheduler", TOKEN)
    assert (status, scheduler["settings"]["max_concurrent"]) == (200, 3)
    # A change is saved in a fresh file; the one set aside stays as it was.
    _update_scheduler(port, max_concurrent=2)
    assert '"max_concurrent": 2' in path.read_text()
    assert Path(entry["moved_to"]).read_text() == text


def test_unusable_voice_and_power_settings_are_set_aside(worker_processes: WorkerProcesses) -> None:
    voice = worker_processes.data_dir / "voice.json"
    voice.write_text('{"wake_threshold": "high"}')
    power = worker_processes.data_dir / "power.json"
    power.write_text('{"gpus": {"GPU-0": {"profile": "eco"')

    _process, port, _log = worker_processes.start(
        "--gpu-backend", "simulated", "--voice", "true", *QUIET_VOICE
    )

    body = worker_processes.status(port)
    assert {"power", "voice"} <= set(body["parts"])
    reasons = {entry["path"]: entry["reason"] for entry in body["set_aside"]}
    assert set(reasons) == {str(voice), str(power)}
    assert "wake_threshold" in reasons[str(voice)]
    assert "not JSON" in reasons[str(power)]
    status, settings = request(port, "/api/v1/voice", TOKEN)
    assert status == 200
    assert settings["settings"]["wake_threshold"] == 0.5  # the option's default


class SyncSpy:
    """What the OS is asked to do with files: syncs (by path) and renames, in order.

    A power cut cannot be made here; what makes a file survive one is these calls, in this
    order: the data synced, then renamed into place, then the folder synced.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, ...]] = []
        fsync, replace = os.fsync, os.replace

        def spy_fsync(descriptor: int) -> None:
            self.calls.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
            fsync(descriptor)

        def spy_replace(source: Any, target: Any) -> None:
            self.calls.append(("replace", str(source), str(target)))
            replace(source, target)

        monkeypatch.setattr(os, "fsync", spy_fsync)
        monkeypatch.setattr(os, "replace", spy_replace)

    def written_safely(self, path: Path) -> bool:
        """Whether ``path`` was put in place by a rename of a synced file, its folder synced
        after."""
        for index, call in enumerate(self.calls):
            if call[0] == "replace" and call[2] == str(path):
                synced_before = ("fsync", call[1]) in self.calls[:index]
                return synced_before and ("fsync", str(path.parent)) in self.calls[index:]
        return False


@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("token", lambda data_dir: ensure_token(CoreOptions(data_dir=data_dir))),
        ("worker_id", ensure_worker_id),
        ("scheduler.json", lambda data_dir: save_settings(data_dir / "scheduler.json", {"a": 1})),
    ],
)
def test_state_files_are_written_whole_and_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, write: Any
) -> None:
    spy = SyncSpy(monkeypatch)

    write(tmp_path)

    assert spy.written_safely(tmp_path / name), spy.calls
    assert (tmp_path / name).read_text().strip()
    assert [path.name for path in tmp_path.iterdir()] == [name]  # no temporary file left


def test_the_token_is_private_from_its_first_byte(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("")
    (tmp_path / "token").chmod(0o644)

    token = ensure_token(CoreOptions(data_dir=tmp_path))

    assert (tmp_path / "token").read_text() == f"{token}\n"
    assert stat.S_IMODE((tmp_path / "token").stat().st_mode) == 0o600
