"""The ``maintenance`` task: disk usage of the worker's folders, and old outputs removed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import os
from pathlib import Path
import shutil
import time
from typing import Any, ClassVar

from .handlers import PayloadError, TaskContext, TaskHandler, require_keys

DEFAULT_RETENTION_DAYS = 30
_DAY_S = 86400


@dataclass(slots=True)
class MaintenanceHandler(TaskHandler):
    """Measures the data dir and configured paths; removes outputs older than the retention."""

    data_dir: Path
    outputs_dir: Path
    extra_paths: tuple[Path, ...] = ()
    retention_days: float = DEFAULT_RETENTION_DAYS

    kind: ClassVar[str] = "maintenance"
    max_attempts: ClassVar[int] = 2

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``retention_days`` (number > 0) and ``dry_run`` (bool) are optional."""
        require_keys(payload, {"retention_days": (int, float), "dry_run": bool})
        retention = payload.get("retention_days", self.retention_days)
        if retention <= 0:
            raise PayloadError("retention_days must be more than 0")
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
        removed, freed = await asyncio.to_thread(
            _remove_older, self.outputs_dir, cutoff, dry_run=payload["dry_run"]
        )
        await context.report_progress(100, "done")
        return {
            "disk": usage,
            "outputs_dir": str(self.outputs_dir),
            "retention_days": payload["retention_days"],
            "dry_run": payload["dry_run"],
            "removed_files": removed,
            "freed_bytes": freed,
        }


def _usage(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"exists": False}
    files = (entry for entry in path.rglob("*") if entry.is_file() and not entry.is_symlink())
    used = sum(entry.stat().st_size for entry in files)
    disk = shutil.disk_usage(path)
    return {"exists": True, "bytes": used, "disk_total": disk.total, "disk_free": disk.free}


def _remove_older(folder: Path, cutoff: float, *, dry_run: bool) -> tuple[int, int]:
    removed = freed = 0
    if not folder.is_dir():
        return removed, freed
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(root, name)
            stat = path.lstat()
            if stat.st_mtime < cutoff:
                removed += 1
                freed += stat.st_size
                if not dry_run:
                    path.unlink()
    return removed, freed
