"""The prune: free disk space without losing anything that matters.

What it removes, each removal audited (written as pending before, settled after):
- images no container uses, oldest first, through the engine API, never forced: an image a
  container uses (running or not, protected or not) is never asked for, and one a container
  takes in the meantime the engine refuses on its own;
- the engine's build cache, down to what the budget leaves (Docker; podman 4 has no endpoint);
- Hydra's own temporary files older than a day (half-written state files, unfinished downloads).
It also moves audit entries older than the retention into a gzip archive beside the log.

A byte budget bounds what one run removes; a dry run (the default of the route) answers what a
run would do and changes nothing. When the engine refuses a removal the prune stops there with
a clear error: what it removed before is audited, nothing else is touched.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
import os
from pathlib import Path
import time
from typing import Any, ClassVar

from ..audit import PENDING, AuditLog
from ..containers.engine import EngineClient, EngineError, EngineNotFoundError
from ..containers.policy import ProtectionPolicy
from ..errors import Refusal
from ..models import Actor
from ..scheduler.handlers import PayloadError, TaskContext, TaskHandler, require_keys
from ..wire import dump
from .models import PRUNE_IMAGES, PruneItem, PruneReport

ARCHIVE_FOLDER = "archive"
# Hydra's temporary files: state files being written (state_files.write_atomic) and downloads
# being received (voice.download); anything this old was left by a crash.
TEMP_SUFFIXES = (".tmp", ".part")
TEMP_MIN_AGE_S = 86400.0
_DAY_S = 86400.0
_NONE_TAG = "<none>:<none>"


class PruneRefusedError(Refusal, code="prune_refused", status=502):
    """The engine refused a removal; the prune stopped there."""


@dataclass(slots=True)
class Pruner:
    """Removes what the prune may remove, within a byte budget."""

    data_dir: Path
    audit: AuditLog
    engine: EngineClient | None = None
    policy: ProtectionPolicy = field(default_factory=ProtectionPolicy)
    budget_bytes: int = 20 * 10**9
    audit_retention_days: float = 90.0

    async def async_prune(
        self,
        *,
        actor: Actor,
        dry_run: bool = True,
        images: str = "unused",
        budget_bytes: int | None = None,
    ) -> PruneReport:
        """Prune (or, dry, say what a prune would remove)."""
        budget = self.budget_bytes if budget_bytes is None else budget_bytes
        run = _Run(actor=actor, dry_run=dry_run, budget=budget, audit=self.audit)
        if self.engine is not None:
            await self._images(run, images)
            await self._build_cache(run)
        await self._temp_files(run)
        await self._archive(run)
        return run.report()

    async def _images(self, run: _Run, mode: str) -> None:
        assert self.engine is not None
        try:
            containers = await self.engine.list_containers()
            listed = await self.engine.list_images()
        except EngineError as err:
            run.skipped.append(f"images: the engine cannot be read ({err})")
            return
        used = {item.get("ImageID") for item in containers}
        for item in containers:
            name = next(iter(item.get("Names") or ()), "").lstrip("/")
            if self.policy.is_protected(name, item.get("Labels")):
                run.protected.append(name)
        candidates = []
        for image in listed:
            if image.get("Id") in used:
                run.kept_in_use += 1
                continue
            tags = [tag for tag in image.get("RepoTags") or () if tag != _NONE_TAG]
            if mode == "dangling" and tags:
                continue
            candidates.append((image.get("Created") or 0, image, tags))
        for _created, image, tags in sorted(candidates, key=lambda item: item[0]):
            await self._image(run, image, tags)

    async def _image(self, run: _Run, image: dict[str, Any], tags: list[str]) -> None:
        assert self.engine is not None
        image_id = str(image["Id"])
        size = int(image.get("Size") or 0)
        name = tags[0] if tags else image_id.removeprefix("sha256:")[:12]
        if not run.fits(size):
            run.add("image", name, size, "kept", "over the budget of this run")
            return
        if run.dry_run:
            run.add("image", name, size, "would_remove")
            return
        pending = await run.begin(f"image:{name}", "remove_image", f"{size} bytes")
        try:
            # Each tag is removed by name (an image in several repositories cannot be removed by
            # id without force); the last one takes the image, an untagged one goes by id.
            for target in tags or [image_id]:
                await self.engine.remove_image(target)
        except EngineError as err:
            await self.audit.async_settle(pending, "failed", str(err))
            run.add("image", name, size, "failed", str(err))
            raise PruneRefusedError(
                f"The container engine refused to remove the image {name} ({err}); the prune"
                f" stopped there after freeing {run.freed} bytes"
            ) from err
        await self.audit.async_settle(pending, "ok", f"{size} bytes")
        run.add("image", name, size, "ok")

    async def _build_cache(self, run: _Run) -> None:
        assert self.engine is not None
        try:
            cache = int((await self.engine.system_df()).get("BuilderSize") or 0)
        except EngineError as err:
            run.skipped.append(f"build cache: the engine cannot say its size ({err})")
            return
        if cache == 0:
            return
        room = max(run.budget - run.freed, 0)
        size = min(cache, room)
        if size == 0:
            run.add("build_cache", "build cache", cache, "kept", "over the budget of this run")
            return
        if run.dry_run:
            run.add("build_cache", "build cache", size, "would_remove")
            return
        pending = await run.begin("build_cache", "prune_build_cache", f"up to {size} bytes")
        try:
            answer = await self.engine.prune_build_cache(keep_bytes=cache - size)
        except EngineNotFoundError:
            await self.audit.async_settle(pending, "failed", "no build cache endpoint")
            run.skipped.append("build cache: this engine has no build cache endpoint")
            return
        except EngineError as err:
            await self.audit.async_settle(pending, "failed", str(err))
            raise PruneRefusedError(
                f"The container engine refused to prune its build cache ({err}); the prune"
                f" stopped there after freeing {run.freed} bytes"
            ) from err
        freed = int(answer.get("SpaceReclaimed") or 0)
        await self.audit.async_settle(pending, "ok", f"{freed} bytes")
        run.add("build_cache", "build cache", freed, "ok")

    async def _temp_files(self, run: _Run) -> None:
        found = await asyncio.to_thread(_temp_files, self.data_dir, time.time() - TEMP_MIN_AGE_S)
        for path, size in found:
            name = str(path.relative_to(self.data_dir))
            if not run.fits(size):
                run.add("temp_file", name, size, "kept", "over the budget of this run")
                continue
            if run.dry_run:
                run.add("temp_file", name, size, "would_remove")
                continue
            pending = await run.begin(f"temp:{name}", "remove_temp", f"{size} bytes")
            try:
                await asyncio.to_thread(path.unlink, missing_ok=True)
            except OSError as err:
                await self.audit.async_settle(pending, "failed", str(err))
                run.add("temp_file", name, size, "failed", str(err))
                continue
            await self.audit.async_settle(pending, "ok", f"{size} bytes")
            run.add("temp_file", name, size, "ok")

    async def _archive(self, run: _Run) -> None:
        before = time.time() - self.audit_retention_days * _DAY_S
        count = await self.audit.async_count_before(before)
        if count == 0:
            return
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        path = self.data_dir / ARCHIVE_FOLDER / f"audit-{stamp}.jsonl.gz"
        name = str(path.relative_to(self.data_dir))
        detail = f"{count} entries older than {self.audit_retention_days:g} days"
        if run.dry_run:
            run.add("audit_archive", name, 0, "would_remove", detail)
            return
        pending = await run.begin("audit", "archive_audit", detail)
        try:
            moved = await self.audit.async_archive(before, path)
        except OSError as err:
            await self.audit.async_settle(pending, "failed", str(err))
            run.add("audit_archive", name, 0, "failed", str(err))
            return
        await self.audit.async_settle(pending, "ok", f"{moved} entries to {name}")
        run.add("audit_archive", name, 0, "ok", f"{moved} entries")


@dataclass(slots=True, kw_only=True)
class _Run:
    """One prune's bookkeeping."""

    actor: Actor
    dry_run: bool
    budget: int
    audit: AuditLog
    freed: int = 0
    items: list[PruneItem] = field(default_factory=list)
    kept_in_use: int = 0
    protected: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def fits(self, size: int) -> bool:
        return self.freed + size <= self.budget

    def add(self, kind: Any, name: str, size: int, result: str, detail: str | None = None) -> None:
        self.items.append(PruneItem(kind=kind, name=name, bytes=size, result=result, detail=detail))
        if result in ("ok", "would_remove"):
            self.freed += size

    async def begin(self, target: str, action: str, detail: str) -> Any:
        return await self.audit.async_record(
            actor=self.actor,
            container=target,
            action=action,
            result=PENDING,
            reason="prune",
            detail=detail,
        )

    def report(self) -> PruneReport:
        return PruneReport(
            dry_run=self.dry_run,
            budget_bytes=self.budget,
            freed_bytes=self.freed,
            items=tuple(self.items),
            kept_in_use=self.kept_in_use,
            protected=tuple(sorted(set(self.protected))),
            skipped=tuple(self.skipped),
        )


def _temp_files(data_dir: Path, cutoff: float) -> list[tuple[Path, int]]:
    """Hydra's temporary files under the data dir last changed before ``cutoff`` (links are
    neither followed nor removed)."""
    found: list[tuple[Path, int]] = []
    if not data_dir.is_dir():
        return found
    for root, _dirs, files in os.walk(data_dir):
        for name in files:
            if not name.endswith(TEMP_SUFFIXES):
                continue
            path = Path(root, name)
            stat = path.lstat()
            if path.is_symlink() or stat.st_mtime >= cutoff:
                continue
            found.append((path, stat.st_size))
    return sorted(found)


@dataclass(slots=True)
class PruneHandler(TaskHandler):
    """The ``prune`` task kind: a prune run from the queue (a dry run unless asked)."""

    pruner: Pruner

    kind: ClassVar[str] = "prune"
    max_attempts: ClassVar[int] = 1

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``dry_run`` (bool, default true), ``images`` (dangling or unused) and
        ``budget_bytes`` (a whole number, at least 0) are optional."""
        require_keys(payload, {"dry_run": bool, "images": str, "budget_bytes": int})
        images = payload.get("images", "unused")
        if images not in PRUNE_IMAGES:
            raise PayloadError(f"images must be one of {', '.join(PRUNE_IMAGES)}, not {images!r}")
        budget = payload.get("budget_bytes", self.pruner.budget_bytes)
        if budget < 0:
            raise PayloadError(f"budget_bytes must be at least 0, not {budget}")
        return {"dry_run": payload.get("dry_run", True), "images": images, "budget_bytes": budget}

    async def run(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        """Prune; returns the report."""
        report = await self.pruner.async_prune(
            actor=Actor(type="task", id=str(context.task_id), name="prune"), **payload
        )
        await context.report_progress(100, "done")
        return dump(report)
