"""One box stays the default: no cluster part, no Ray, and a queue from before keeps working."""

from __future__ import annotations

from pathlib import Path
import sqlite3
import subprocess
import sys

import pytest

from hydra_core.cluster.options import ClusterOptions
from hydra_core.models import Actor
from hydra_core.scheduler.store import TaskStore
from hydra_core.worker.config import ConfigError, load_config

# Builds every part a default worker has, then says whether anything imported Ray.
_BUILD = """
import sys
from hydra_core.audit import AuditLog
from hydra_core.events import EventBus
from hydra_core.gpu import NoGpuProbe
from hydra_core.worker.__main__ import build_parts
from hydra_core.worker.config import load_config
from hydra_core.worker.part import BuildContext

config = load_config(sys.argv[1:], environ={})
parts = build_parts(
    BuildContext(config=config, probe=NoGpuProbe(), bus=EventBus(), audit=AuditLog(None))
)
print(",".join(part.name for part in parts), "ray" in sys.modules)
"""


def test_default_worker_has_no_cluster_and_never_imports_ray(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-c", _BUILD, "--data-dir", str(tmp_path), "--voice", "false"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    names, ray_imported = built.stdout.split()
    assert "tasks" in names.split(",")
    assert "cluster" not in names.split(",")
    assert ray_imported == "False"


def test_default_is_off() -> None:
    assert load_config([], environ={})[ClusterOptions].cluster == "off"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--cluster", "join"], "cluster: join needs cluster_address"),
        (["--cluster", "head", "--cluster-routes", "chat"], "'chat' is not KIND=LABEL"),
        (["--cluster", "both"], "must be one of off, head, join"),
    ],
)
def test_cluster_options_checked(options: list[str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_config(options, environ={})


async def test_queue_from_before_the_cluster_gains_the_node_column(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE tasks (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,"
        " payload TEXT NOT NULL, priority INTEGER NOT NULL, state TEXT NOT NULL,"
        " actor TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT"
        " NULL, next_attempt_at REAL, progress REAL NOT NULL DEFAULT 0, progress_message TEXT,"
        " waiting_reason TEXT, result TEXT, error TEXT, created_at REAL NOT NULL, started_at"
        " REAL, finished_at REAL);"
        "INSERT INTO tasks (kind, payload, priority, state, actor, max_attempts, created_at)"
        " VALUES ('maintenance', '{}', 50, 'succeeded', '{\"type\": \"api\"}', 3, 1.0);"
    )
    old.close()
    store = TaskStore(path)
    await store.async_open()
    try:
        before = await store.async_get(1)
        assert before is not None
        assert (before.kind, before.node) == ("maintenance", None)
        added = await store.async_add(
            kind="maintenance",
            payload={},
            priority=50,
            max_attempts=3,
            actor=Actor(type="api"),
            limit=10,
        )
        assert added is not None
        updated = await store.async_update(added.id, node="hydra-compute")
        assert updated.node == "hydra-compute"
    finally:
        await store.async_close()
