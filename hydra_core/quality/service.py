"""The worker's quality service: scoring, the character registry, the review loop, learning.

Scoring needs torch and open_clip (``hydra-homelab[quality]``); without them, or while the
model cannot load, scoring and submitting answer ``QualityUnavailableError`` and the status
says why, while the registry, the review store and what was learnt keep working. Every input is
checked (character known, images decodable, within size) before the model is asked or anything
is written.

``EVENT_ASSET`` goes out when an asset is submitted or decided, ``EVENT_QUALITY`` whenever the
status changes: the pending count, what was learnt, or the model's state (loaded, unloaded when
idle, failed), which is looked at every ``watch_interval_s``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..background import cancel
from ..events import EventBus
from ..models import Actor
from ..wire import dump
from .characters import CharacterRegistry
from .engine import ClipEngine
from .errors import QualityError
from .files import StoredImage, check_image
from .images import ImageError
from .learning import LearningSettings, learn
from .models import (
    EVENT_ASSET,
    EVENT_QUALITY,
    Asset,
    Character,
    CharacterLearning,
    ImageScore,
    QualityStatus,
)
from .options import QualityOptions
from .review import ASSETS_DIR, DB_FILE, NewAsset, ReviewStore
from .scoring import QualityScorer

if TYPE_CHECKING:
    from PIL.Image import Image

_LOGGER = logging.getLogger(__name__)

MAX_BATCH = 32
# Decoded pixels of one request together (three images at decode_image's limit): 32 images
# that each compress well could otherwise decode to gigabytes.
MAX_BATCH_PIXELS = 120_000_000


@dataclass(frozen=True, slots=True)
class ImageInput:
    """One image of a scoring request: its bytes and an optional name."""

    data: bytes
    name: str | None = None


class QualityService:
    """The registry, the review store and the scorer behind ``/api/v1/quality`` and friends."""

    def __init__(
        self,
        options: QualityOptions,
        *,
        data_dir: Path,
        models_dir: Path,
        bus: EventBus | None = None,
        engine: ClipEngine | None = None,
        watch_interval_s: float = 2.0,
    ) -> None:
        """``engine`` replaces the one the options describe (tests)."""
        self.options = options
        self.engine = engine or ClipEngine(
            models_dir,
            model=options.quality_model,
            pretrained=options.quality_pretrained,
            device=options.quality_device,
            offline=options.quality_offline,
            idle_unload_s=options.quality_idle_unload,
            config_dir=options.quality_config_dir,
        )
        self.scorer = QualityScorer(self.engine)
        self.characters = CharacterRegistry(data_dir)
        self.store = ReviewStore(data_dir / DB_FILE, data_dir / ASSETS_DIR)
        self._bus = bus or EventBus()
        self._settings = LearningSettings(default_threshold=options.quality_threshold)
        self._watch_interval_s = watch_interval_s
        self._learning: dict[str | None, CharacterLearning] = {}
        self._published: dict[str, Any] | None = None
        # Held from a decision (or a change of characters) until what it taught is learnt, so
        # the status watcher never publishes the new pending count with the old learning.
        self._learning_lock = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None
        # Told of every decision a person makes (the creative pipeline redraws what is rejected).
        self.on_decided: list[Callable[[Asset], Awaitable[None]]] = []

    # Life cycle

    async def async_start(self) -> None:
        """Open the store and the registry, learn from the decisions kept, watch the model."""
        await self.store.async_open()
        await asyncio.to_thread(self.characters.load)
        await self._relearn(publish=False)
        self._published = dump(await self.async_status())
        self._watcher = asyncio.create_task(self._watch(), name="hydra quality watch")

    async def async_stop(self) -> None:
        """Stop watching, free the model, close the store."""
        await cancel(self._watcher)
        await self.engine.async_close()
        await self.store.async_close()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._watch_interval_s)
            async with self._learning_lock:
                await self._publish_status()

    # Status and learning

    async def async_status(self) -> QualityStatus:
        """Whether scoring can run, the model, the pending count, what was learnt."""
        pending = (await self.store.async_counts())["pending"]
        engine = self.engine
        return QualityStatus(
            available=engine.available,
            reason=engine.reason,
            model=engine.model,
            pretrained=engine.pretrained,
            device=engine.device,
            state=engine.state,
            default_threshold=self.options.quality_threshold,
            pending=pending,
            learning=tuple(self._learning.values()),
        )

    def learning(self) -> list[CharacterLearning]:
        """What the decisions taught: assets of no character first, then each character."""
        return list(self._learning.values())

    def threshold(self, character: str | None) -> float:
        """The auto-accept threshold a new asset of ``character`` is judged against."""
        known = self._learning.get(character)
        return self.options.quality_threshold if known is None else known.threshold

    async def _relearn(self, *, publish: bool = True) -> None:
        decisions = await self.store.async_decisions()
        keys = [None, *(character.id for character in self.characters.list())]
        learnt = learn(decisions, characters=keys, settings=self._settings)
        self._learning = {item.character: item for item in learnt}
        if publish:
            await self._publish_status()

    async def _publish_status(self) -> None:
        status = dump(await self.async_status())
        if status != self._published:
            self._published = status
            self._bus.publish(EVENT_QUALITY, status)

    # Scoring and submitting

    async def async_score(
        self,
        images: Sequence[ImageInput],
        *,
        prompt: str | None = None,
        character: str | None = None,
        style_prompt: str | None = None,
    ) -> list[ImageScore]:
        """Score images without keeping them; best first."""
        scored = await self.async_score_batch(
            images, prompt=prompt, character=character, style_prompt=style_prompt, keep=False
        )
        return [score for score, _ in scored]

    async def async_submit(
        self,
        image: ImageInput,
        *,
        prompt: str | None = None,
        character: str | None = None,
    ) -> Asset:
        """Score and keep an image: auto-accepted at or above its character's threshold, else
        pending review."""
        [(_, asset)] = await self.async_score_batch(
            [image], prompt=prompt, character=character, keep=True
        )
        assert asset is not None
        return asset

    async def async_score_batch(
        self,
        images: Sequence[ImageInput],
        *,
        prompt: str | None = None,
        character: str | None = None,
        style_prompt: str | None = None,
        keep: bool,
    ) -> list[tuple[ImageScore, Asset | None]]:
        """Score images, best first; with ``keep`` each becomes an asset (auto-accepted or
        pending review), stored only once every image was checked and scored."""
        if not images or len(images) > MAX_BATCH:
            raise QualityError(f"Send 1 to {MAX_BATCH} images")
        known = None if character is None else self.characters.get(character)
        checked = await asyncio.to_thread(_check_images, images)
        references: list[bytes] = []
        if known is not None:
            references = await asyncio.to_thread(self._reference_bytes, known)
            style_prompt = style_prompt or known.style_notes or None
        try:
            scores = await self.scorer.async_score(
                [picture for _, picture in checked],
                names=[image.name for image in images],
                prompt=prompt,
                references=references,
                style_prompt=style_prompt,
            )
        finally:
            await self._publish_status()
        if not keep:
            return [(score, None) for score in scores]
        threshold = self.threshold(character)
        assets = {}
        for score in sorted(scores, key=lambda score: score.index):
            assets[score.index] = asset = await self.store.async_add(
                NewAsset(
                    image=checked[score.index][0],
                    score=score,
                    threshold=threshold,
                    character=character,
                    prompt=prompt,
                    name=images[score.index].name,
                )
            )
            self._bus.publish(EVENT_ASSET, dump(asset))
        await self._publish_status()
        return [(score, assets[score.index]) for score in scores]

    async def async_keep(
        self,
        image: ImageInput,
        score: ImageScore,
        *,
        prompt: str | None = None,
        character: str | None = None,
    ) -> Asset:
        """Keep an image already scored (the best of a generator's tries) as an asset:
        auto-accepted at or above its character's threshold, else pending review."""
        [(stored, _)] = await asyncio.to_thread(_check_images, [image])
        async with self._learning_lock:
            asset = await self.store.async_add(
                NewAsset(
                    image=stored,
                    score=replace(score, index=0, rank=1),
                    threshold=self.threshold(character),
                    character=character,
                    prompt=prompt,
                    name=image.name,
                )
            )
            self._bus.publish(EVENT_ASSET, dump(asset))
            await self._publish_status()
        return asset

    async def async_references(self, character_id: str) -> list[bytes]:
        """The bytes of a character's reference images (CharacterNotFoundError)."""
        return await asyncio.to_thread(self._reference_bytes, self.characters.get(character_id))

    def _reference_bytes(self, character: Character) -> list[bytes]:
        found = []
        for name in character.references:
            path = self.characters.reference_path(character.id, name)
            try:
                found.append(path.read_bytes())
            except FileNotFoundError:
                _LOGGER.warning("Reference image %s of %s is missing", path, character.name)
        return found

    # Assets and review

    async def async_assets(self, *, state: str | None = None, limit: int = 100) -> list[Asset]:
        """Assets in ``state`` (pending: oldest first; else newest first)."""
        return await self.store.async_list(state=state, limit=limit)

    async def async_asset(self, asset_id: int) -> Asset:
        """One asset (AssetNotFoundError)."""
        return await self.store.async_get(asset_id)

    async def async_asset_image(self, asset_id: int) -> tuple[bytes, str]:
        """An asset's image bytes and content type."""
        path, content_type = await self.store.async_image_path(asset_id)
        return await asyncio.to_thread(path.read_bytes), content_type

    async def async_review(
        self, asset_id: int, decision: str, *, actor: Actor, reason: str | None = None
    ) -> Asset:
        """A person accepts or rejects an asset; learning takes the decision in at once."""
        async with self._learning_lock:
            asset = await self.store.async_decide(asset_id, decision, actor=actor, reason=reason)
            self._bus.publish(EVENT_ASSET, dump(asset))
            await self._relearn()
        for listener in self.on_decided:
            try:
                await listener(asset)
            except Exception:
                _LOGGER.exception("Acting on the decision on asset %d failed", asset.id)
        return asset

    # Characters

    async def async_create_character(self, fields: Mapping[str, Any]) -> Character:
        """Add a character (its id made from its name)."""
        async with self._learning_lock:
            character = await asyncio.to_thread(self.characters.create, fields)
            await self._relearn()
        return character

    async def async_update_character(
        self, character_id: str, fields: Mapping[str, Any]
    ) -> Character:
        """Change a character's name, style notes or voice."""
        return await asyncio.to_thread(self.characters.update, character_id, fields)

    async def async_delete_character(self, character_id: str) -> None:
        """Forget a character and its reference images; its assets and decisions stay."""
        async with self._learning_lock:
            await asyncio.to_thread(self.characters.delete, character_id)
            await self._relearn()

    async def async_add_reference(self, character_id: str, data: bytes) -> Character:
        """Check an image and keep it as one of the character's references."""
        self.characters.get(character_id)
        stored, _ = await asyncio.to_thread(check_image, data)
        return await asyncio.to_thread(self.characters.add_reference, character_id, stored)

    async def async_remove_reference(self, character_id: str, name: str) -> Character:
        """Stop using one of the character's reference images."""
        return await asyncio.to_thread(self.characters.remove_reference, character_id, name)


def _check_images(images: Sequence[ImageInput]) -> list[tuple[StoredImage, Image]]:
    """Decode every image (ImageError), within the request's pixel budget."""
    checked = []
    total = 0
    for image in images:
        stored, picture = check_image(image.data)
        total += stored.width * stored.height
        if total > MAX_BATCH_PIXELS:
            raise ImageError(
                "image_too_large",
                f"The images have more than {MAX_BATCH_PIXELS // 1_000_000} megapixels together;"
                " send fewer at a time",
            )
        checked.append((stored, picture))
    return checked
