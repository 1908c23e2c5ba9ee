"""The ``quality_scoring`` task: score images from the outputs folder, and keep them for review.

Payload: ``images``, paths relative to the outputs folder (they may not leave it);
``prompt`` and/or ``character`` to score against; ``submit`` (default true) keeps each image as
an asset, auto-accepted or pending review. The result ranks the images best first, each score
named by its path and carrying its ``asset_id`` (None when not submitted).
"""

from __future__ import annotations

import asyncio
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from ..scheduler.handlers import (
    PayloadError,
    PermanentTaskError,
    TaskContext,
    TaskHandler,
    require_keys,
)
from ..wire import dump
from .engine import missing_packages
from .errors import QualityError, QualityUnavailableError
from .service import MAX_BATCH, ImageInput, QualityService


class QualityScoringHandler(TaskHandler):
    """Scores (and submits) generated images; runs on the GPU unless scoring is on the CPU."""

    kind: ClassVar[str] = "quality_scoring"
    vram_gb: ClassVar[float] = 2.0
    max_attempts: ClassVar[int] = 3

    def __init__(
        self, service: QualityService, outputs_dir: Path, *, needs_gpu: bool = True
    ) -> None:
        """``needs_gpu`` False lets the tasks run without waiting for a GPU (a CPU device)."""
        self.service = service
        self.outputs_dir = outputs_dir
        # Decided per worker rather than per kind: scoring on the CPU waits for no GPU.
        self.needs_gpu = needs_gpu

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``images`` (1 to 32 relative paths), ``prompt``, ``character``, ``submit``."""
        require_keys(payload, {"images": list, "prompt": str, "character": str, "submit": bool})
        images = payload.get("images")
        if not images or len(images) > MAX_BATCH:
            raise PayloadError(f"images must list 1 to {MAX_BATCH} paths in the outputs folder")
        for image in images:
            self._path(image, PayloadError)
        prompt = (payload.get("prompt") or "").strip() or None
        character = payload.get("character")
        if prompt is None and character is None:
            raise PayloadError("give a prompt or a character to score the images against")
        if character is not None:
            try:
                self.service.characters.get(character)
            except QualityError as err:
                raise PayloadError(err.message) from err
        return {
            "images": list(images),
            "prompt": prompt,
            "character": character,
            "submit": payload.get("submit", True),
        }

    async def run(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        """Read, score, keep; returns the ranked scores."""
        paths = [self._path(image, PermanentTaskError) for image in payload["images"]]
        try:
            datas = await asyncio.to_thread(lambda: [path.read_bytes() for path in paths])
        except OSError as err:
            raise PermanentTaskError(f"Cannot read {err.filename}: {err.strerror}") from err
        await context.report_progress(10, f"read {len(paths)} images")
        context.check_cancelled()
        try:
            scored = await self.service.async_score_batch(
                [
                    ImageInput(data, name)
                    for data, name in zip(datas, payload["images"], strict=True)
                ],
                prompt=payload["prompt"],
                character=payload["character"],
                keep=payload["submit"],
            )
        except QualityUnavailableError as err:
            if missing_packages():
                raise PermanentTaskError(err.message) from err
            raise  # the model may load on a later attempt (a download, memory)
        except QualityError as err:
            raise PermanentTaskError(f"{err.code}: {err.message}") from err
        await context.report_progress(100, "scored")
        return {
            "scores": [
                {**dump(score), "asset_id": None if asset is None else asset.id}
                for score, asset in scored
            ],
            "auto_accepted": sum(
                asset is not None and asset.state == "auto_accepted" for _, asset in scored
            ),
            "pending": sum(asset is not None and asset.state == "pending" for _, asset in scored),
        }

    def _path(self, relative: object, error: type[Exception]) -> Path:
        """The file ``relative`` names inside the outputs folder; ``error`` if it leaves it."""
        if not isinstance(relative, str) or not relative.strip():
            raise error("each image must be a path relative to the outputs folder")
        candidate = PurePosixPath(relative)
        root = self.outputs_dir.resolve()
        path = (root / candidate).resolve()
        if candidate.is_absolute() or ".." in candidate.parts or not path.is_relative_to(root):
            raise error(f"{relative!r} is not inside the outputs folder")
        return path
