"""The creative pipeline's tasks in the worker's queue.

- ``chapter_generation`` (one per chapter, a coordinator: it takes no slot of the queue) queues
  a task per asset the chapter still lacks, in two waves (backgrounds, neutral portraits and
  voice lines; then the expression variants, drawn from their portraits), waits for them while
  it reports the chapter's stage and progress, then queues the package. An asset already made
  (found by its content address) is never queued again unless the chapter asks to regenerate;
  a task already queued for one is followed, not doubled, so a chapter that restarts after a
  crash picks up exactly what is left.
- ``asset_generation`` draws one image through ComfyUI, scores it with CLIP and, below the
  threshold, draws it again with a new seed and the terms the review decisions taught, up to
  ``creative_tries``; the best goes to the review loop (auto-accepted, or pending for a person:
  nothing waits for one, the package uses it meanwhile). A prompt ComfyUI took before the worker
  died is collected from its history rather than drawn again.
- ``voice_line`` speaks one line with Kokoro in the character's voice (cached per text + voice).
- ``chapter_package`` writes the Ren'Py package into the outputs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
import contextlib
from dataclasses import dataclass
import hashlib
import logging
from pathlib import Path
import re
import time
from typing import TYPE_CHECKING, Any

from ..errors import Refusal
from ..quality.errors import QualityUnavailableError
from ..quality.models import ImageScore
from ..quality.service import ImageInput
from ..scheduler.handlers import (
    PayloadError,
    PermanentTaskError,
    TaskCancelledError,
    TaskContext,
    TaskHandler,
    require_keys,
)
from ..scheduler.models import Task
from ..scheduler.scheduler import MAX_PRIORITY
from ..state_files import write_atomic
from ..voice.tts import TtsError
from . import renpy
from .comfyui import (
    ComfyUIError,
    ExecutionFailedError,
    GraphInvalidError,
    Progress,
    RenderResult,
)
from .graphs import TemplateError, load_template, reference_name
from .models import (
    ASSET_KIND,
    CHAPTER_KIND,
    NEUTRAL,
    PACKAGE_KIND,
    VOICE_KIND,
    Action,
    ChapterPlan,
    ImageAsset,
    Line,
    VoiceAsset,
)
from .plan import PORTRAIT
from .service import (
    PACKAGE,
    CreativeService,
    describe_asset,
    graph_values,
    template_for,
)
from .store import MadeAsset
from .stylebook import voice_blend
from .voicelines import VoiceLineCache, VoiceLineError, VoiceProfile

if TYPE_CHECKING:
    from .models import ChapterStatus
    from .store import ChapterRow

_LOGGER = logging.getLogger(__name__)

# How often a chapter looks at its tasks while none finishes (a finish wakes it at once).
_POLL_S = 5.0
# How often a task drawing an image looks whether the worker is stopping.
_STOP_CHECK_S = 0.25
_PALETTE = ("#e06c75", "#61afef", "#98c379", "#e5c07b", "#c678dd", "#56b6c2", "#d19a66")


def _chapter_id(
    payload: dict[str, Any], extra: dict[str, type | tuple[type, ...]]
) -> dict[str, Any]:
    require_keys(payload, {"chapter_id": int, **extra})
    if "chapter_id" not in payload or payload["chapter_id"] < 1:
        raise PayloadError("chapter_id is required: the id of a chapter")
    return dict(payload)


class ChapterHandler(TaskHandler):
    """``chapter_generation``: a chapter's assets queued, followed, and packaged."""

    kind = CHAPTER_KIND
    coordinator = True
    # Leased while the chapter runs, so no other load evicts ComfyUI's checkpoint under it.
    models = ("comfyui",)
    # Each restart after a crash counts an attempt; a chapter survives a few.
    max_attempts = 10

    def __init__(self, service: CreativeService, *, poll_s: float = _POLL_S) -> None:
        self.service = service
        self._poll_s = poll_s

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``{"chapter_id": N}``."""
        return _chapter_id(payload, {})

    async def run(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        """Queue what the chapter lacks, wait for it, package it."""
        service = self.service
        chapter_id = payload["chapter_id"]
        row = await service.store.async_get(chapter_id)
        if row is None:
            raise PermanentTaskError(f"No chapter {chapter_id}")
        try:
            return await self._run(row, context)
        except (asyncio.CancelledError, TaskCancelledError):
            if context.stopping:
                await service.store.async_update(chapter_id, state="queued")
            else:
                await service.cancel_assets(chapter_id)
                row = await service.store.async_update(
                    chapter_id, state="cancelled", finished_at=time.time(), error="cancelled"
                )
                await service.publish("cancelled", row)
            raise
        except PermanentTaskError as err:
            row = await service.store.async_update(
                chapter_id, state="failed", finished_at=time.time(), error=str(err)
            )
            await service.publish("failed", row)
            raise

    async def _run(self, row: ChapterRow, context: TaskContext) -> dict[str, Any]:
        service = self.service
        _, plan = await service.async_plan(row.id)
        row = await service.store.async_update(
            row.id,
            state="running",
            started_at=row.started_at or time.time(),
            finished_at=None,
            error=None,
        )
        await service.publish("started", row)
        portraits = [image.address for image in plan.character_images if image.template == PORTRAIT]
        variants = [image.address for image in plan.character_images if image.template != PORTRAIT]
        images = [image.address for image in plan.backgrounds] + portraits
        voices = [voice.address for voice in plan.voices]
        follow = _Follow(self, row, context, plan)
        await follow.queue(images, ASSET_KIND)
        await follow.queue(voices, VOICE_KIND)
        await follow.wait(portraits)
        await follow.queue(variants, ASSET_KIND)
        await follow.wait([*images, *variants, *voices])
        if row.regenerate:
            await service.store.async_update(row.id, regenerate=0)
        failed = await follow.failures()
        if failed:
            raise PermanentTaskError(
                f"{len(failed)} of the chapter's assets could not be made: " + "; ".join(failed)
            )
        await follow.stage("package")
        await follow.queue([PACKAGE], PACKAGE_KIND, always=True)
        tasks = await follow.wait([PACKAGE])
        package = tasks[PACKAGE]
        if package.state != "succeeded" or package.result is None:
            raise PermanentTaskError(f"The Ren'Py package could not be made: {package.error}")
        path = str(package.result["package"])
        row = await service.store.async_update(
            row.id, state="succeeded", stage="done", package=path, finished_at=time.time()
        )
        status = await service.publish("finished", row)
        return {
            "chapter_id": row.id,
            "package": path,
            "images": status.images.total,
            "voices": status.voices.total,
            "auto_accepted": status.auto_accepted,
            "pending_review": status.pending_review,
        }


@dataclass
class _Follow:
    """One run of a chapter: the tasks it queued, and what it last told the world."""

    handler: ChapterHandler
    row: ChapterRow
    context: TaskContext
    plan: ChapterPlan
    last_done: int = -1

    async def queue(self, addresses: list[str], kind: str, *, always: bool = False) -> None:
        """Queue a task for each address that is neither made nor being made."""
        service = self.handler.service
        images = {image.address: image for image in self.plan.character_images}
        portraits = {
            images[address].references[0]
            for address in addresses
            if address in images and images[address].template != PORTRAIT
        }
        made = {} if always else await service.async_made([*addresses, *portraits])
        existing = await service.async_tasks_of(self.row.id)
        for address in addresses:
            task = existing.get(address)
            if task is not None and not task.finished:
                continue  # queued before a restart: follow it
            # A person rejected it, or it is a variant of a portrait drawn again since: drawn
            # again, whatever the chapter asks.
            rejected = address in made and (
                made[address].review_state == "rejected"
                or _stale(images.get(address), made[address], made)
            )
            regenerate = (self.row.regenerate or rejected) and kind == ASSET_KIND
            if not always:
                if address in made and not regenerate:
                    continue
                if (
                    regenerate
                    and not rejected
                    and task is not None
                    and task.state == "succeeded"
                    and task.payload.get("regenerate")
                ):
                    continue  # made again already, before a restart
            payload: dict[str, Any] = {"chapter_id": self.row.id}
            if kind != PACKAGE_KIND:
                payload["address"] = address
            if regenerate:
                payload["regenerate"] = True
            # Images a step ahead of voice lines: ComfyUI's GPU never waits behind the CPU's
            # work, and the variants queued after the portraits start before the lines.
            priority = self.context.priority
            if kind == ASSET_KIND:
                priority = min(priority + 1, MAX_PRIORITY)
            queued = await service.scheduler.async_enqueue(
                kind, payload, actor=self.row.actor, priority=priority
            )
            await service.store.async_set_task(self.row.id, address, queued.id)

    async def wait(self, addresses: Iterable[str]) -> dict[str, Task]:
        """Until every task of these addresses finished; reports progress meanwhile."""
        wanted = set(addresses)
        service = self.handler.service
        while True:
            # Taken before looking, so a task finishing while this looks wakes it at once.
            settled = service.scheduler.settled
            self.context.check_cancelled()
            tasks = await service.async_tasks_of(self.row.id)
            await self.report(tasks)
            if all(address not in tasks or tasks[address].finished for address in wanted):
                return tasks
            await service.scheduler.async_wait_settled(self.handler._poll_s, settled)

    async def report(self, tasks: dict[str, Task]) -> None:
        """Tell the queue and the event stream how far the chapter is, when that changed."""
        service = self.handler.service
        row = await service.store.async_get(self.row.id)
        assert row is not None
        status = await service.status(row, tasks)
        stage = (
            "images"
            if status.images.done < status.images.total
            else "voices"
            if status.voices.done < status.voices.total
            else row.stage or "images"
        )
        if row.stage not in (stage, "package"):
            row, status = await self.stage(stage)
        done = status.images.done + status.voices.done
        if done != self.last_done:
            self.last_done = done
            await self.context.report_progress(
                status.percent,
                f"images {status.images.done}/{status.images.total}, "
                f"voices {status.voices.done}/{status.voices.total}",
            )
            await service.publish("progress", row, status=status)

    async def stage(self, stage: str) -> tuple[ChapterRow, ChapterStatus]:
        """Move the chapter to a new stage; its row and status at that stage. Past the
        images, ComfyUI gives its VRAM back."""
        service = self.handler.service
        row = await service.store.async_update(self.row.id, stage=stage)
        status = await service.publish("stage", row)
        if stage != "images":
            await service.async_free_comfyui()
        return row, status

    async def failures(self) -> list[str]:
        """What could not be made, each with why."""
        service = self.handler.service
        tasks = await service.async_tasks_of(self.row.id)
        assets = {asset.address: asset for asset in _all_assets(self.plan)}
        made = await service.async_made(assets)
        return [
            f"{describe_asset(assets[address])}: {task.error}"
            for address, task in tasks.items()
            if address in assets and address not in made and task.state != "succeeded"
        ]


def _stale(image: ImageAsset | None, asset: MadeAsset, made: dict[str, MadeAsset]) -> bool:
    """Whether an expression variant was drawn from an earlier picture of its portrait."""
    if image is None or image.template == PORTRAIT or not image.references:
        return False
    portrait = made.get(image.references[0])
    return portrait is not None and portrait.made_at > asset.made_at


def _all_assets(plan: ChapterPlan) -> list[ImageAsset | VoiceAsset]:
    return [*plan.backgrounds, *plan.character_images, *plan.voices]


def _find(plan: ChapterPlan, address: str) -> ImageAsset | VoiceAsset:
    for asset in _all_assets(plan):
        if asset.address == address:
            return asset
    raise PermanentTaskError(f"The chapter has no asset {address}")


def _join(*clauses: str) -> str:
    return ", ".join(dict.fromkeys(clause.strip() for clause in clauses if clause.strip()))


def retry_seed(seed: int, attempt: int) -> int:
    """The seed of an image's ``attempt``-th try: its own first, then new ones made from it."""
    if attempt == 1:
        return seed
    digest = hashlib.sha256(f"{seed}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class _Candidate:
    attempt: int
    data: bytes
    score: ImageScore | None
    prompt: str


class AssetHandler(TaskHandler):
    """``asset_generation``: one image, drawn, scored, tried again, kept for review."""

    kind = ASSET_KIND
    models = ("comfyui",)

    def __init__(self, service: CreativeService, *, needs_gpu: bool) -> None:
        self.service = service
        self.needs_gpu = needs_gpu

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``{"chapter_id": N, "address": sha256, "regenerate": bool}``."""
        clean = _chapter_id(payload, {"address": str, "regenerate": bool})
        if not re.fullmatch(r"[0-9a-f]{64}", clean.get("address", "")):
            raise PayloadError("address must be an asset's sha256 (64 hex digits)")
        return clean

    async def run(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        """Draw, score and keep the image (or find it made already)."""
        service = self.service
        address = payload["address"]
        made = (await service.async_made([address])).get(address)
        if made is not None and not payload.get("regenerate"):
            return {"address": address, "path": str(made.path), "made": False}
        _, plan = await service.async_plan(payload["chapter_id"])
        image = _find(plan, address)
        if not isinstance(image, ImageAsset):
            raise PermanentTaskError(f"Asset {address} is not an image")
        # Drawn again: the tries go on from the earlier ones, so every seed is new.
        earlier = made.tries if made is not None else 0
        try:
            candidate, tries = await self._draw(image, context, earlier)
            return await self._keep(image, candidate, earlier + tries)
        except (GraphInvalidError, TemplateError) as err:
            raise PermanentTaskError(err.message) from err
        except Refusal as err:
            if isinstance(err, ComfyUIError):
                raise
            raise PermanentTaskError(err.message) from err

    async def _references(self, image: ImageAsset) -> dict[str, bytes]:
        service = self.service
        if image.kind == "background":
            return {}
        if image.template == PORTRAIT:
            if not image.references or service.quality is None or image.character is None:
                return {}
            found = await service.quality.async_references(image.character)
            if not found:
                raise PermanentTaskError(
                    f"The reference images of {image.character} are missing from the registry"
                )
            return {reference_name(found[0]): found[0]}
        portrait = image.references[0]
        made = (await service.async_made([portrait])).get(portrait)
        if made is None:
            raise PermanentTaskError(f"{image.character}'s portrait could not be made")
        data = await asyncio.to_thread(made.path.read_bytes)
        return {reference_name(data): data}

    def _terms(self, character: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
        quality = self.service.quality
        if quality is None:
            return (), ()
        for learnt in quality.learning():
            if learnt.character == character:
                return learnt.negative_terms, learnt.emphasis_terms
        return (), ()

    async def _draw(
        self, image: ImageAsset, context: TaskContext, earlier: int = 0
    ) -> tuple[_Candidate, int]:
        service = self.service
        template = load_template(template_for(image), service.templates_dir)
        references = await self._references(image)
        negative_terms, emphasis = self._terms(image.character)
        threshold = None if service.quality is None else service.quality.threshold(image.character)
        tries = service.options.creative_tries
        candidates: list[_Candidate] = []
        for attempt in range(earlier + 1, earlier + tries + 1):
            context.check_cancelled()
            prompt = image.prompt if attempt == 1 else _join(image.prompt, *emphasis)
            values = graph_values(image, service.options, reference=next(iter(references), ""))
            if attempt > 1:
                values.update(
                    prompt=prompt,
                    negative=_join(image.negative, *negative_terms),
                    seed=retry_seed(image.seed, attempt),
                )
            graph = template.fill(**values)
            result = await self._render(image.address, attempt, graph, references, context)
            if not result.images:
                raise ComfyUIError(f"ComfyUI at {result.server} saved no image for the graph")
            data = result.images[0].data
            score = await self._score(data, image, prompt)
            candidates.append(_Candidate(attempt, data, score, prompt))
            if score is None or threshold is None or score.overall >= threshold:
                break
            _LOGGER.info(
                "%s scored %.1f (below %.1f) on try %d of %d",
                describe_asset(image),
                score.overall,
                threshold,
                attempt - earlier,
                tries,
            )
        best = max(candidates, key=lambda item: -1.0 if item.score is None else item.score.overall)
        return best, len(candidates)

    async def _render(
        self,
        address: str,
        attempt: int,
        graph: dict[str, Any],
        references: dict[str, bytes],
        context: TaskContext,
    ) -> RenderResult:
        service = self.service
        earlier = (await service.store.async_inflight(address)).get(attempt)
        if earlier is not None:
            try:
                result = await service.comfyui.resume(*earlier)
            except ExecutionFailedError:
                result = None  # it failed in ComfyUI: drawn again below
            if result is not None:
                _LOGGER.info("Collected prompt %s of %s from ComfyUI", earlier[1], address)
                return result
            await service.store.async_set_inflight(address, attempt, earlier[0], None)

        async def submitted(server: str, prompt_id: str) -> None:
            await service.store.async_set_inflight(address, attempt, server, prompt_id)

        async def progress(step: Progress) -> None:
            if step.value is not None and step.max:
                await context.report_progress(100.0 * step.value / step.max, f"try {attempt}")

        render = asyncio.ensure_future(
            service.comfyui.render(
                graph,
                images=references,
                on_progress=progress,
                on_submitted=submitted,
                keep_running=lambda: context.stopping,
            )
        )
        # The worker stopping does not wait for ComfyUI: the image goes on being drawn there
        # and is collected after the restart.
        try:
            while not render.done():
                await asyncio.wait({render}, timeout=_STOP_CHECK_S)
                if context.stopping and not render.done():
                    raise TaskCancelledError
            return render.result()
        finally:
            if not render.done():
                render.cancel()  # interrupted in ComfyUI, unless the worker is stopping
                with contextlib.suppress(asyncio.CancelledError):
                    await render

    async def _score(self, data: bytes, image: ImageAsset, prompt: str) -> ImageScore | None:
        quality = self.service.quality
        if quality is None:
            return None
        try:
            [score] = await quality.async_score(
                [ImageInput(data, describe_asset(image))], prompt=prompt, character=image.character
            )
        except QualityUnavailableError as err:
            _LOGGER.warning("Images are kept unscored: %s", err.message)
            return None
        return score

    async def _keep(self, image: ImageAsset, best: _Candidate, tries: int) -> dict[str, Any]:
        service = self.service
        review_id = review_state = threshold = None
        if service.quality is not None and best.score is not None:
            asset = await service.quality.async_keep(
                ImageInput(best.data, describe_asset(image)),
                best.score,
                prompt=best.prompt,
                character=image.character,
            )
            review_id, review_state, threshold = asset.id, asset.state, asset.threshold
        path = service.images_dir / f"{image.address}.png"
        await asyncio.to_thread(write_atomic, path, best.data)
        await service.async_record(
            MadeAsset(
                address=image.address,
                kind=image.kind,
                path=path,
                tries=tries,
                score=None if best.score is None else best.score.overall,
                threshold=threshold,
                review_asset_id=review_id,
                review_state=review_state,
            )
        )
        return {
            "address": image.address,
            "path": str(path),
            "made": True,
            "tries": tries,
            "score": None if best.score is None else best.score.overall,
            "review": review_state,
        }


class VoiceLineHandler(TaskHandler):
    """``voice_line``: one line in its character's voice."""

    kind = VOICE_KIND

    def __init__(self, service: CreativeService) -> None:
        self.service = service
        self.cache = VoiceLineCache(service.voices_dir, self._speak)

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``{"chapter_id": N, "address": sha256}``."""
        clean = _chapter_id(payload, {"address": str})
        if not re.fullmatch(r"[0-9a-f]{64}", clean.get("address", "")):
            raise PayloadError("address must be an asset's sha256 (64 hex digits)")
        return clean

    async def _speak(self, text: str, profile: VoiceProfile) -> bytes:
        return await self.service.tts.speak(text, voice_blend(profile.voice), profile.speed)

    async def run(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        """Speak the line (or find it spoken already)."""
        service = self.service
        address = payload["address"]
        made = (await service.async_made([address])).get(address)
        if made is not None:
            return {"address": address, "path": str(made.path), "made": False}
        _, plan = await service.async_plan(payload["chapter_id"])
        voice = _find(plan, address)
        if not isinstance(voice, VoiceAsset):
            raise PermanentTaskError(f"Asset {address} is not a voice line")
        try:
            path = await self.cache.line(
                voice.text, VoiceProfile(voice=voice.voice, speed=voice.speed)
            )
        except VoiceLineError as err:
            raise PermanentTaskError(err.message) from err
        except TtsError as err:
            if "Unknown voice" in str(err):
                raise PermanentTaskError(str(err)) from err
            raise
        await service.async_record(MadeAsset(address=address, kind="voice", path=path))
        return {"address": address, "path": str(path), "made": True}


class PackageHandler(TaskHandler):
    """``chapter_package``: the Ren'Py package of a chapter whose assets are made."""

    kind = PACKAGE_KIND
    max_attempts = 2

    def __init__(self, service: CreativeService) -> None:
        self.service = service

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``{"chapter_id": N}``."""
        return _chapter_id(payload, {})

    async def run(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        """Write the package into the outputs."""
        service = self.service
        row = await service.async_row(payload["chapter_id"])
        chapter, plan = await service.async_plan(row.id)
        made = await service.async_made(asset.address for asset in _all_assets(plan))
        story = story_of(chapter, plan, made, {c.id: c.name for c in service.characters()})
        output = service.outputs_dir / "chapters" / f"{_slug(row)}.zip"
        try:
            members = await asyncio.to_thread(renpy.write_package, story, output)
        except renpy.PackageError as err:
            raise PermanentTaskError(err.message) from err
        pending = [
            describe_asset(image)
            for image in (*plan.backgrounds, *plan.character_images)
            if (asset := made.get(image.address)) is not None and asset.review_state == "pending"
        ]
        return {"package": str(output), "files": len(members), "pending_review": pending}


def _slug(row: ChapterRow) -> str:
    words = re.findall(r"[a-z0-9]+", (row.name or row.title or "chapter").lower())
    return f"{'-'.join(words)[:60] or 'chapter'}-{row.id}"


def story_of(
    chapter: Any, plan: ChapterPlan, made: dict[str, MadeAsset], names: dict[str, str]
) -> renpy.Story:
    """The Ren'Py description of a planned chapter and its assets made."""
    images = {image.address: image for image in (*plan.backgrounds, *plan.character_images)}
    voices = {voice.address: voice for voice in plan.voices}
    by_line: dict[tuple[str, str], Path] = {}
    for address, voice in voices.items():
        if address in made:
            by_line[(voice.character, voice.text)] = made[address].path
    # One background per (setting, location, time): an exterior beside an interior of the
    # same place and time gets its own name.
    settings: dict[tuple[str, str], set[str | None]] = {}
    for image in plan.backgrounds:
        settings.setdefault((image.location or "", image.time_of_day or "day"), set()).add(
            image.setting
        )
    backgrounds: dict[tuple[str, str], Path] = {}
    sprites: dict[tuple[str, str], Path] = {}
    speakers: dict[str, None] = {}
    scenes = []
    for scene, scene_plan in zip(chapter.scenes, plan.scenes, strict=True):
        background = images[scene_plan.background]
        location = _location(background, settings)
        time_of_day = background.time_of_day or "day"
        if scene_plan.background in made:
            backgrounds[(location, time_of_day)] = made[scene_plan.background].path
        beats: list[renpy.Beat] = []
        showing: dict[str, str] = {}
        for beat in scene.beats:
            if isinstance(beat, Action):
                beats.append(renpy.Narration(beat.text))
                continue
            assert isinstance(beat, Line)
            speakers.setdefault(beat.speaker)
            if not beat.off_screen and showing.get(beat.speaker) != beat.expression:
                showing[beat.speaker] = beat.expression
                beats.append(renpy.Show(beat.speaker, beat.expression))
            beats.append(
                renpy.Line(beat.speaker, beat.text, by_line.get((beat.speaker, beat.text)))
            )
        scenes.append(
            renpy.Scene(
                label=f"scene {scene.number} {scene.location}",
                location=location,
                time=time_of_day,
                beats=tuple(beats),
            )
        )
    for image in plan.character_images:
        if image.address in made and image.character is not None:
            sprites[(image.character, image.expression or NEUTRAL)] = made[image.address].path
    characters = tuple(
        renpy.Character(
            key=key,
            name=names.get(key, key),
            color=_PALETTE[int(hashlib.sha256(key.encode()).hexdigest(), 16) % len(_PALETTE)],
        )
        for key in speakers
    )
    return renpy.Story(
        characters=characters, scenes=tuple(scenes), backgrounds=backgrounds, sprites=sprites
    )


def _location(image: ImageAsset, settings: dict[tuple[str, str], set[str | None]]) -> str:
    location = image.location or "place"
    if len(settings.get((location, image.time_of_day or "day"), ())) > 1 and image.setting:
        return f"{location} {image.setting.replace('/', ' ')}"
    return location
