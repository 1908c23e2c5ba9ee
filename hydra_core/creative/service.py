"""The creative service: chapters in, their progress out, the folder it watches.

A chapter is parsed and planned when it arrives (``async_submit``): a chapter that does not
parse, names a character the registry does not know, or whose style book or graph templates are
wrong is refused whole, naming each problem, and nothing is kept or queued. A chapter accepted is
kept with its plan and one ``chapter_generation`` task is queued for it (at once, or when the
overnight pipeline starts); that task queues the chapter's assets (``tasks.py``).

Every change of a chapter goes out as a ``chapter`` event: ``queued``, ``started``,
``progress`` (an asset was made), ``stage`` (images → voices → package → done), ``finished``,
``failed``, ``cancelled``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
import contextlib
from dataclasses import replace
import json
import logging
from pathlib import Path
import re
import shutil
import time
from typing import TYPE_CHECKING

import aiohttp

from ..background import cancel
from ..errors import Refusal
from ..events import EventBus
from ..models import Actor
from ..quality.models import Asset, Character
from ..scheduler.models import Task
from ..scheduler.store import MAX_LIST as MAX_TASK_LIST, TaskQuery
from ..wire import dump
from .chapter import parse_chapter
from .comfyui import ComfyUIClient, ComfyUIError, GraphInvalidError, check_graph
from .graphs import load_template
from .models import (
    ASSET_KIND,
    CHAPTER_KIND,
    EVENT_CHAPTER,
    FINISHED_CHAPTER_STATES,
    PACKAGE_KIND,
    VOICE_KIND,
    Chapter,
    ChapterPlan,
    ChapterStatus,
    ImageAsset,
    Line,
    Progress,
    StyleBook,
    VoiceAsset,
)
from .options import CreativeOptions
from .plan import EXPRESSION, PORTRAIT, cast, plan_chapter
from .store import DB_FILE, MAX_LIST, ChapterRow, ChapterStore, MadeAsset
from .stylebook import StyleBookError, load_style_book, voice_blend

if TYPE_CHECKING:
    from ..quality.service import QualityService
    from ..scheduler.scheduler import Scheduler
    from ..voice.tts import TtsEngine

_LOGGER = logging.getLogger(__name__)

# The package's "address" among a chapter's tasks.
PACKAGE = "package"
STYLE_FILES = ("style.yaml", "style.yml", "style.json")
PROJECT = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
WATCH_INTERVAL_S = 5.0
# A file in the watched folder is read once it has not changed for this long.
WATCH_SETTLE_S = 2.0
# The images, as ComfyUI templates name them: (plan template, has references) -> template.
TEMPLATES = {"background": "background", PORTRAIT: "character", EXPRESSION: "expression"}


class ChapterNotFoundError(Refusal, code="chapter_not_found", status=404):
    """No chapter with that id."""


class ChapterStateError(Refusal, code="chapter_not_retryable", status=409):
    """The chapter is not in a state that allows this."""


class ComfyUINotConfiguredError(Refusal, code="comfyui_not_configured"):
    """Chapters need a ComfyUI server and the worker has none configured."""


def graph_values(
    image: ImageAsset, options: CreativeOptions, *, reference: str = "reference.png"
) -> dict[str, object]:
    """What an image's graph template is filled with (its first try)."""
    return {
        "checkpoint": image.model,
        "prompt": image.prompt,
        "negative": image.negative,
        "seed": image.seed,
        "steps": options.comfyui_steps,
        "width": image.width,
        "height": image.height,
        "reference": reference,
        "lora_name": image.lora.name if image.lora else "",
        "lora_strength": image.lora.strength if image.lora else 0.0,
        "ip_adapter_weight": image.ip_adapter_weight or 0.0,
    }


def template_for(image: ImageAsset) -> str:
    """The graph template that draws an image: a portrait without reference images is drawn
    from its prompt alone, as a background is."""
    if image.template == PORTRAIT and not image.references:
        return "background"
    return TEMPLATES[image.template]


def describe_asset(asset: ImageAsset | VoiceAsset) -> str:
    """An asset for people: ``background throne room night``, ``mira furious``, ``line 12``."""
    if isinstance(asset, VoiceAsset):
        return f"voice line {asset.line} ({asset.character})"
    if asset.kind == "background":
        return " ".join(part for part in ("background", asset.location, asset.time_of_day) if part)
    return f"{asset.character} {asset.expression}"


class CreativeService:
    """Chapters: accepted, queued, followed, and the folder watched for them."""

    def __init__(
        self,
        options: CreativeOptions,
        *,
        data_dir: Path,
        outputs_dir: Path,
        scheduler: Scheduler,
        quality: QualityService | None,
        tts: TtsEngine,
        bus: EventBus,
        owns_tts: bool = False,
        watch_interval_s: float = WATCH_INTERVAL_S,
    ) -> None:
        self.options = options
        self.folder = options.creative_dir or data_dir / "creative"
        self.outputs_dir = outputs_dir
        self.scheduler = scheduler
        self.quality = quality
        self.tts = tts
        self.store = ChapterStore(data_dir / DB_FILE)
        self._bus = bus
        self._owns_tts = owns_tts
        self._watch_interval_s = watch_interval_s
        self._plans: dict[int, tuple[Chapter, ChapterPlan]] = {}
        self._made: dict[str, MadeAsset] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._comfyui: ComfyUIClient | None = None
        self._watcher: asyncio.Task[None] | None = None

    # Life cycle

    async def async_start(self) -> None:
        """Open the store, and watch the folder when one is set."""
        await self.store.async_open()
        if self.options.chapter_watch_dir is not None:
            self._watcher = asyncio.create_task(self._watch(), name="hydra chapter watch")

    async def async_stop(self) -> None:
        """Stop watching the folder; the rest closes once the queue stopped (``async_close``)."""
        await cancel(self._watcher)

    async def async_close(self) -> None:
        """Close the ComfyUI session, Kokoro (when the part loaded its own) and the store: run
        once the task queue stopped, since its tasks use them to the end."""
        if self._session is not None:
            await self._session.close()
        if self._owns_tts:
            await self.tts.close()
        await self.store.async_close()

    @property
    def comfyui(self) -> ComfyUIClient:
        """The ComfyUI client (ComfyUINotConfiguredError without a server)."""
        if not self.options.comfyui_urls:
            raise ComfyUINotConfiguredError(
                "No ComfyUI server is configured: set the worker option comfyui_urls "
                "(http://host:8188)"
            )
        if self._comfyui is None:
            self._session = aiohttp.ClientSession()
            self._comfyui = ComfyUIClient(
                self._session,
                self.options.comfyui_urls,
                render_timeout=self.options.comfyui_timeout,
            )
        return self._comfyui

    @property
    def templates_dir(self) -> Path:
        """Where a user's graph templates override the shipped ones."""
        return self.folder / "templates"

    @property
    def images_dir(self) -> Path:
        """Where the images made are kept, by address."""
        return self.folder / "images"

    @property
    def voices_dir(self) -> Path:
        """Where the voice lines made are kept."""
        return self.folder / "voices"

    # Chapters in

    def characters(self) -> list[Character]:
        """The registry's characters (none without the quality part)."""
        return [] if self.quality is None else self.quality.characters.list()

    def style_book(self, project: str) -> StyleBook:
        """The project's style book, or the defaults when it has none."""
        for name in STYLE_FILES:
            path = self.folder / project / name
            if path.is_file():
                return load_style_book(path)
        return StyleBook()

    def prepare(self, text: str, project: str) -> tuple[Chapter, ChapterPlan]:
        """Parse and plan a chapter, checking all it needs (ChapterError, StyleBookError,
        TemplateError); nothing is kept."""
        book = self.style_book(project)
        characters = self.characters()
        chapter = parse_chapter(text, cast(characters, book))
        plan = plan_chapter(chapter, book, characters)
        for image in (*plan.backgrounds, *plan.character_images):
            load_template(template_for(image), self.templates_dir)
        self._check_voices(plan)
        return chapter, plan

    def _check_voices(self, plan: ChapterPlan) -> None:
        known = set(self.tts.voices())
        if not known:
            return  # Kokoro is not installed yet; it is downloaded with its voices
        problems = []
        for voice in plan.voices:
            missing = [name for name, _ in voice_blend(voice.voice) if name not in known]
            if missing:
                problems.append(
                    f"characters.{voice.character}.voice: Kokoro has no voice "
                    f"{', '.join(missing)} (it has {', '.join(sorted(known))})"
                )
        if problems:
            raise StyleBookError("; ".join(dict.fromkeys(problems)))

    async def async_submit(
        self,
        text: str,
        *,
        project: str = "default",
        name: str | None = None,
        start: str = "now",
        regenerate: bool = False,
        actor: Actor,
    ) -> ChapterStatus:
        """Accept a chapter and queue it (``start`` now) or keep it for the overnight
        pipeline; refused whole when anything in it is wrong."""
        self.comfyui  # noqa: B018 - refuses a chapter when no ComfyUI server is configured
        if not PROJECT.fullmatch(project):
            raise Refusal(
                f"A project name is 1 to 64 lower-case letters, digits, - and _, not {project!r}",
                code="invalid_project",
            )
        chapter, plan = await asyncio.to_thread(self.prepare, text, project)
        await self._check_graphs(plan)
        row = await self.store.async_add(
            chapter=chapter,
            plan=plan,
            project=project,
            name=name,
            state="waiting" if start == "overnight" else "queued",
            regenerate=regenerate,
            actor=actor,
        )
        self._plans[row.id] = (chapter, plan)
        if row.state == "queued":
            row = await self._enqueue(row)
        return await self.publish("queued", row)

    async def _check_graphs(self, plan: ChapterPlan) -> None:
        """Refuse the chapter now if ComfyUI cannot run its graphs (a node type it lacks, a
        checkpoint it does not have); when no server can be reached, the chapter is taken and
        its images wait for one."""
        try:
            server = await self.comfyui.pick()
            object_info = await server.object_info(refresh=True)
        except ComfyUIError as err:
            _LOGGER.info("Graphs not checked, ComfyUI is not answering: %s", err.message)
            return
        seen: set[str] = set()
        for image in (*plan.backgrounds, *plan.character_images):
            name = template_for(image)
            if name in seen:
                continue
            seen.add(name)
            graph = load_template(name, self.templates_dir).fill(
                **graph_values(image, self.options)
            )
            # The reference image is uploaded when the image is drawn, so ComfyUI's list of
            # input files cannot hold it yet: any name passes here.
            info = dict(object_info)
            for node in graph.values():
                if node.get("class_type") == "LoadImage" and "LoadImage" in info:
                    loader = json.loads(json.dumps(info["LoadImage"]))
                    loader.setdefault("input", {}).setdefault("required", {})["image"] = [
                        "STRING",
                        {},
                    ]
                    info["LoadImage"] = loader
            try:
                check_graph(graph, info, server.name)
            except GraphInvalidError as err:
                raise GraphInvalidError(
                    f"Graph template {name} cannot run: {err.message}",
                    node_id=err.node_id,
                    input_name=err.input_name,
                ) from None

    async def _enqueue(self, row: ChapterRow) -> ChapterRow:
        task = await self.scheduler.async_enqueue(
            CHAPTER_KIND, {"chapter_id": row.id}, actor=row.actor
        )
        return await self.store.async_update(
            row.id, task_id=task.id, state="queued", error=None, finished_at=None
        )

    async def async_start_waiting(self) -> list[ChapterStatus]:
        """Queue every chapter kept for the overnight pipeline, oldest first."""
        waiting = sorted(await self.store.async_list(state="waiting", limit=500), key=_id)
        started = []
        for row in waiting:
            started.append(await self.publish("queued", await self._enqueue(row)))
        return started

    async def _watch(self) -> None:
        folder = self.options.chapter_watch_dir
        assert folder is not None
        while True:
            try:
                await self._collect(folder)
            except Exception:
                _LOGGER.exception("Looking for chapters in %s failed", folder)
            await asyncio.sleep(self._watch_interval_s)

    async def _collect(self, folder: Path) -> None:
        """Queue each settled ``*.fountain`` of the folder (or a project folder in it)."""
        found = await asyncio.to_thread(_settled_chapters, folder)
        for path, project in found:
            try:
                text = await asyncio.to_thread(path.read_text, encoding="utf-8-sig")
                status = await self.async_submit(
                    text,
                    project=project,
                    name=path.stem,
                    actor=Actor(type="api", name="watched folder"),
                )
            except (Refusal, UnicodeDecodeError, OSError) as err:
                message = getattr(err, "message", None) or str(err)
                _LOGGER.warning("Chapter %s refused: %s", path, message)
                await asyncio.to_thread(_move, path, folder / "refused", message)
            else:
                _LOGGER.info("Chapter %s queued as chapter %d", path, status.id)
                await asyncio.to_thread(_move, path, folder / "queued", None)

    # Chapters out

    async def async_plan(self, chapter_id: int) -> tuple[Chapter, ChapterPlan]:
        """A chapter's parsed text and plan (kept in memory once read)."""
        found = self._plans.get(chapter_id)
        if found is None:
            try:
                found = await self.store.async_plan(chapter_id)
            except KeyError:
                raise ChapterNotFoundError(f"No chapter {chapter_id}") from None
            self._plans[chapter_id] = found
        return found

    async def async_row(self, chapter_id: int) -> ChapterRow:
        """One chapter as kept (ChapterNotFoundError)."""
        row = await self.store.async_get(chapter_id)
        if row is None:
            raise ChapterNotFoundError(f"No chapter {chapter_id}")
        return row

    async def async_chapter(self, chapter_id: int) -> ChapterStatus:
        """One chapter and how far it is."""
        return await self.status(await self.async_row(chapter_id))

    async def async_chapters(self, *, state: str | None, limit: int) -> list[ChapterStatus]:
        """Chapters, newest first."""
        rows = await self.store.async_list(state=state, limit=limit)
        return [await self.status(row) for row in rows]

    async def status(self, row: ChapterRow, tasks: dict[str, Task] | None = None) -> ChapterStatus:
        """What a chapter is at: counts from its plan, the assets made and its tasks (``tasks``:
        those just read, by address)."""
        chapter, plan = await self.async_plan(row.id)
        images = [image.address for image in (*plan.backgrounds, *plan.character_images)]
        voices = [voice.address for voice in plan.voices]
        made = await self.async_made([*images, *voices])
        if tasks is None:
            tasks = await self.async_tasks_of(row.id)
        failed: list[str] = []
        if tasks:
            assets = {asset.address: asset for asset in _assets(plan)}
            failed = [
                describe_asset(assets[address])
                for address, task in tasks.items()
                if address in assets and address not in made and task.state == "failed"
            ]
        reviews = [made[address].review_state for address in images if address in made]
        images_done = sum(address in made for address in images)
        voices_done = sum(address in made for address in voices)
        packaged = row.package is not None and row.state == "succeeded"
        total = len(images) + len(voices) + 1
        return ChapterStatus(
            id=row.id,
            title=row.title,
            project=row.project,
            name=row.name,
            state=row.state,
            stage=row.stage,
            percent=round(100.0 * (images_done + voices_done + packaged) / total, 1),
            scenes=len(chapter.scenes),
            lines=sum(isinstance(beat, Line) for scene in chapter.scenes for beat in scene.beats),
            images=Progress(done=images_done, total=len(images)),
            voices=Progress(done=voices_done, total=len(voices)),
            auto_accepted=reviews.count("auto_accepted"),
            pending_review=reviews.count("pending"),
            retried=sum(made[address].tries > 1 for address in images if address in made),
            failed_assets=tuple(failed),
            task_id=row.task_id,
            package=row.package,
            error=row.error,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
        )

    async def publish(
        self, event: str, row: ChapterRow, *, status: ChapterStatus | None = None
    ) -> ChapterStatus:
        """Tell the event stream about a chapter; answers its status (``status``: the row's,
        already computed)."""
        if status is None:
            status = await self.status(row)
        self._bus.publish(EVENT_CHAPTER, {"event": event, "chapter": dump(status)})
        return status

    # Requests on a chapter

    async def async_cancel(self, chapter_id: int) -> ChapterStatus:
        """Stop a chapter: its task and its assets' unfinished tasks; what is made stays."""
        row = await self.async_row(chapter_id)
        if row.state in FINISHED_CHAPTER_STATES:
            raise ChapterStateError(
                f"Chapter {chapter_id} has already {row.state}; nothing to cancel",
                code="chapter_finished",
            )
        if row.task_id is not None:
            with contextlib.suppress(Refusal):
                await self.scheduler.async_cancel(row.task_id)
        await self.cancel_assets(chapter_id)
        row = await self.store.async_update(
            chapter_id, state="cancelled", finished_at=time.time(), error="cancelled"
        )
        return await self.publish("cancelled", row)

    async def cancel_assets(self, chapter_id: int) -> None:
        """Cancel the chapter's asset tasks that have not finished: those it recorded, and any
        queued as it was cancelled, before it could record them."""
        tasks = await self.store.async_tasks(chapter_id)
        unfinished = {
            task.id for task in (await self.scheduler.async_states(tasks.values())).values()
        }
        for kind in (ASSET_KIND, VOICE_KIND, PACKAGE_KIND):
            for state in ("queued", "waiting", "running"):
                listed = await self.scheduler.async_list(
                    TaskQuery(state=state, kind=kind, limit=MAX_TASK_LIST)
                )
                unfinished.update(
                    task.id for task in listed if task.payload.get("chapter_id") == chapter_id
                )
        for task in (await self.scheduler.async_states(unfinished)).values():
            if not task.finished:
                with contextlib.suppress(Refusal):
                    await self.scheduler.async_cancel(task.id)

    async def async_retry(self, chapter_id: int) -> ChapterStatus:
        """Run a failed or cancelled chapter again: what was made is not made again."""
        row = await self.async_row(chapter_id)
        if row.state not in ("failed", "cancelled"):
            raise ChapterStateError(
                f"Chapter {chapter_id} is {row.state}; only a failed or cancelled chapter can "
                "be retried"
            )
        return await self.publish("queued", await self._enqueue(row))

    async def async_decided(self, asset: Asset) -> None:
        """A person decided one of the pipeline's images: keep the decision; a rejected image
        is drawn again (new seeds, with what the rejection taught) by every chapter that uses
        it, queued now, so the package is made again with the new one."""
        address = await self.store.async_review_decided(asset.id, asset.state)
        if address is None:
            return
        made = await self._made_assets()
        if address in made:
            made[address] = replace(made[address], review_state=asset.state)
        if asset.state != "rejected":
            return
        for row in await self.store.async_list(limit=MAX_LIST):
            if row.state not in FINISHED_CHAPTER_STATES:
                continue
            _, plan = await self.async_plan(row.id)
            if any(image.address == address for image in plan.character_images) or any(
                image.address == address for image in plan.backgrounds
            ):
                _LOGGER.info("Chapter %d draws a rejected image again", row.id)
                await self.publish("queued", await self._enqueue(row))

    async def async_free_comfyui(self) -> None:
        """Ask each ComfyUI server to unload its models (``POST /free``) when no image is
        queued or being drawn, so the VRAM goes back to whatever runs next."""
        for state in ("queued", "waiting", "running"):
            if await self.scheduler.async_list(TaskQuery(state=state, kind=ASSET_KIND, limit=1)):
                return
        for server in self.comfyui.servers:
            try:
                await server.free()
            except ComfyUIError as err:
                _LOGGER.info("ComfyUI at %s did not free its memory: %s", server.name, err.message)

    async def async_tasks_of(self, chapter_id: int) -> dict[str, Task]:
        """The latest task of each of the chapter's assets, by address."""
        tasks = await self.store.async_tasks(chapter_id)
        states = await self.scheduler.async_states(tasks.values())
        return {address: states[task_id] for address, task_id in tasks.items() if task_id in states}

    async def _made_assets(self) -> dict[str, MadeAsset]:
        # Every asset made, read once and kept up to date by ``async_record``: a chapter looks
        # at its assets each time one of its tasks finishes.
        if self._made is None:
            self._made = await self.store.async_assets(None)
        return self._made

    async def async_made(self, addresses: Iterable[str]) -> dict[str, MadeAsset]:
        """The assets made among ``addresses``."""
        made = await self._made_assets()
        return {address: made[address] for address in addresses if address in made}

    async def async_record(self, asset: MadeAsset) -> None:
        """Keep an asset made (replacing the one it was made again for)."""
        asset = replace(asset, made_at=asset.made_at or time.time())
        await self.store.async_made(asset)
        (await self._made_assets())[asset.address] = asset


def _id(row: ChapterRow) -> int:
    return row.id


def _assets(plan: ChapterPlan) -> list[ImageAsset | VoiceAsset]:
    return [*plan.backgrounds, *plan.character_images, *plan.voices]


def _settled_chapters(folder: Path) -> list[tuple[Path, str]]:
    """The ``*.fountain`` files of the folder (project ``default``) and of its project
    folders, each unchanged for ``WATCH_SETTLE_S``."""
    if not folder.is_dir():
        return []
    now = time.time()
    found = []
    candidates = [(path, "default") for path in folder.glob("*.fountain")]
    for sub in folder.iterdir():
        if sub.is_dir() and sub.name not in ("queued", "refused"):
            candidates.extend((path, sub.name.lower()) for path in sub.glob("*.fountain"))
    for path, project in sorted(candidates):
        with contextlib.suppress(OSError):
            if path.is_file() and now - path.stat().st_mtime >= WATCH_SETTLE_S:
                found.append((path, project))
    return found


def _move(path: Path, folder: Path, error: str | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    number = 1
    while target.exists():
        number += 1
        target = folder / f"{path.stem}-{number}{path.suffix}"
    shutil.move(path, target)
    if error is not None:
        target.with_suffix(".error.txt").write_text(error + "\n", encoding="utf-8")
