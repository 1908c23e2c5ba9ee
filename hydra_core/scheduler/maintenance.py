"""The ``maintenance`` task: disk usage of the worker's folders, and old outputs removed.

Removal is fenced: only files inside the outputs folder, never following a link out of it, at
least a day old, each one audited before it goes; ``dry_run`` lists what would go and removes
nothing. The outputs folder itself is checked when the worker starts (``check_outputs_dir``), so
a mistyped option cannot point the clean-up at the worker's own state or its models.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import os
from pathlib import Path
import shutil
import time
from typing import Any, ClassVar

from ..audit import AuditLog
from ..models import Actor
from .handlers import PayloadError, TaskContext, TaskHandler, require_keys

DEFAULT_RETENTION_DAYS = 30
# Nothing younger than a day is ever removed, whatever a request asks.
MIN_RETENTION_DAYS = 1
# The default outputs folder, the one place inside the data dir that maintenance may clean.
OUTPUTS_FOLDER = "outputs"
# How many of the files a dry run would remove its report names.
MAX_LISTED = 100
ACTION_REMOVE = "remove_output"
_DAY_S = 86400


def check_outputs_dir(outputs: Path, *, data_dir: Path, models_dir: Path) -> None:
    """Refuse an outputs folder whose clean-up could reach the worker's state or models.

    It may not be the data dir or hold it, and may not be, hold or sit inside the models
    folder; inside the data dir only its own ``outputs`` folder is allowed (the default).
    """
    out, data, models = (path.resolve() for path in (outputs, data_dir, models_dir))
    for name, kept in (("the data dir", data), ("the models folder", models)):
        if out == kept or out in kept.parents:
            raise ValueError(
                f"outputs_dir {outputs} is or holds {name} ({kept}); old outputs are deleted"
                " there, so give it a folder of its own"
            )
    if models in out.parents:
        raise ValueError(f"outputs_dir {outputs} is inside the models folder ({models})")
    if data in out.parents and out != data / OUTPUTS_FOLDER:
        raise ValueError(
            f"outputs_dir {outputs} is inside the data dir ({data}), where the worker keeps"
            f" its state; use {data / OUTPUTS_FOLDER} or a folder outside it"
        )


@dataclass(slots=True)
class MaintenanceHandler(TaskHandler):
    """Measures the data dir and configured paths; removes outputs older than the retention."""

    data_dir: Path
    outputs_dir: Path
    extra_paths: tuple[Path, ...] = ()
    retention_days: float = DEFAULT_RETENTION_DAYS
    # Where each removal is recorded before it happens (None: not recorded, in tests of the
    # handler alone).
    audit: AuditLog | None = None

    kind: ClassVar[str] = "maintenance"
    max_attempts: ClassVar[int] = 2

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``retention_days`` (a number of days, at least 1) and ``dry_run`` (bool) are
        optional."""
        require_keys(payload, {"retention_days": (int, float), "dry_run": bool})
        retention = payload.get("retention_days", self.retention_days)
        if not retention >= MIN_RETENTION_DAYS:  # NaN too
            raise PayloadError(
                f"retention_days must be at least {MIN_RETENTION_DAYS} (days), not {retention:g}"
            )
        return {"retention_days": retention, "dry_run": payload.get("dry_run", False)}

    async def run(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        """Measure, then clean up; returns the report."""
        paths = [self.data_dir, *self.extra_paths]
        usage = {}
        for number, path in enumerate(paths):
            context.check_cancelled()
            usage[str(path)] = await asyncio.to_thread(_usage, path)
            await context.report_progress(50 * (number + 1) / len(paths), f"measured {path}")
        cutoff = time.time() - payload["retention_days"] * _DAY_S
        old = await asyncio.to_thread(_older, self.outputs_dir, cutoff)
        dry_run = payload["dry_run"]
        if not dry_run:
            actor = Actor(type="task", id=str(context.task_id), name="maintenance")
            reason = f"older than {payload['retention_days']:g} days"
            for path, size in old:
                context.check_cancelled()
                await self._remove(path, size, actor, reason)
        await context.report_progress(100, "done")
        result = {
            "disk": usage,
            "outputs_dir": str(self.outputs_dir),
            "retention_days": payload["retention_days"],
            "dry_run": dry_run,
            "removed_files": len(old),
            "freed_bytes": sum(size for _, size in old),
        }
        if dry_run:
            result["would_remove"] = [
                str(path.relative_to(self.outputs_dir)) for path, _ in old[:MAX_LISTED]
            ]
        return result

    async def _remove(self, path: Path, size: int, actor: Actor, reason: str) -> None:
        """Audit, then remove one output."""
        if self.audit is not None:
            await self.audit.async_record(
                actor=actor,
                container=f"{OUTPUTS_FOLDER}/{path.relative_to(self.outputs_dir)}",
                action=ACTION_REMOVE,
                result="ok",
                reason=reason,
                detail=f"{size} bytes",
            )
        await asyncio.to_thread(path.unlink, missing_ok=True)


def _usage(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"exists": False}
    files = (entry for entry in path.rglob("*") if entry.is_file() and not entry.is_symlink())
    used = sum(entry.stat().st_size for entry in files)
    disk = shutil.disk_usage(path)
    return {"exists": True, "bytes": used, "disk_total": disk.total, "disk_free": disk.free}


def _older(folder: Path, cutoff: float) -> list[tuple[Path, int]]:
    """Files (links included, never followed) under ``folder`` last changed before ``cutoff``,
    with their sizes."""
    found: list[tuple[Path, int]] = []
    if not folder.is_dir() or folder.is_symlink():
        return found
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(root, name)
            stat = path.lstat()
            if stat.st_mtime < cutoff:
                found.append((path, stat.st_size))
    return found
