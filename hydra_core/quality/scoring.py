"""Scoring images against a prompt, a character's reference images and a style, with CLIP.

Each component is on 0-100, from cosine similarities of CLIP embeddings:

- prompt: CLIPScore = 2.5 * max(cos(image, prompt), 0) (Hessel et al., 2021), reported as is
  (0 to 2.5); the component is 100 * min(CLIPScore, 1). Real CLIP models rarely give an image
  and a text a cosine above about 0.4, which is where CLIPScore reaches 1 (the scale of the
  paper's w = 2.5): a text match gets the whole range, not its lowest third.
- character: the cosine to each of the character's reference images; the best and the mean are
  reported, the component is 100 * max(best, 0) (image to image cosines use the whole range).
- style: 100 * max(cos, 0) to the closest style reference image, or 100 * min(CLIPScore, 1) to
  the style prompt (a text, as above); the mean of the two when both are given.

``overall`` is the weighted mean of the components that could be scored, with the weights
renormalised over them (and reported). With nothing to score against (no prompt, no reference
images, no style) the call is refused with ``nothing_to_score``: a CLIP embedding alone says
nothing about quality. The images of a call are ranked by ``overall`` (rank 1 is the best; ties
keep their order).

Reference images are passed as their encoded bytes (as the worker keeps them); their embeddings
are cached by the bytes' sha256, so a character's references are decoded and embedded once.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
import hashlib
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import QualityError
from .images import DEFAULT_MAX_PIXELS, decode_image
from .models import ImageScore

if TYPE_CHECKING:
    from PIL.Image import Image

    from .engine import ClipEngine

#: CLIPScore's w (Hessel et al., 2021).
CLIP_SCORE_WEIGHT = 2.5
COMPONENTS = ("prompt", "character", "style")


class NothingToScoreError(QualityError, code="nothing_to_score"):
    """No prompt, reference image or style to score the images against, or only ones whose
    weight is 0."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoreWeights:
    """How much each component counts in ``overall`` (renormalised over those scored)."""

    prompt: float = 0.4
    character: float = 0.4
    style: float = 0.2

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"The {item.name} weight must be a number >= 0, not {value}")

    def over(self, components: Sequence[str]) -> dict[str, float]:
        """The weights of ``components``, scaled to sum to 1 (zero weights left out)."""
        chosen = {name: getattr(self, name) for name in components if getattr(self, name) > 0}
        total = sum(chosen.values())
        if not total:
            raise NothingToScoreError(
                f"Every component given ({', '.join(components)}) has weight 0"
            )
        return {name: value / total for name, value in chosen.items()}


class QualityScorer:
    """Scores and ranks images with a ClipEngine."""

    def __init__(
        self,
        engine: ClipEngine,
        weights: ScoreWeights | None = None,
        *,
        batch_size: int = 8,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        cache_size: int = 512,
    ) -> None:
        """``max_pixels`` applies to reference images; ``cache_size`` reference embeddings are
        kept (the least recently used go first)."""
        self.engine = engine
        self.weights = weights or ScoreWeights()
        self.batch_size = batch_size
        self.max_pixels = max_pixels
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    @property
    def cached_references(self) -> int:
        """How many reference embeddings are cached."""
        return len(self._cache)

    async def async_score(
        self,
        images: Sequence[Image],
        *,
        names: Sequence[str | None] | None = None,
        prompt: str | None = None,
        references: Sequence[bytes] = (),
        style_prompt: str | None = None,
        style_references: Sequence[bytes] = (),
        weights: ScoreWeights | None = None,
    ) -> list[ImageScore]:
        """Score RGB ``images`` (see ``decode_image``); best first.

        ``references`` are the character's reference images and ``style_references`` the
        style's, as PNG, JPEG or WebP bytes. Raises NothingToScoreError, ImageError (a
        reference that does not decode), QualityUnavailableError (the model).
        """
        if names is not None and len(names) != len(images):
            raise ValueError(f"{len(names)} names for {len(images)} images")
        prompt = (prompt or "").strip() or None
        style_prompt = (style_prompt or "").strip() or None
        present = [
            name
            for name, given in zip(
                COMPONENTS,
                (prompt, references, style_prompt or style_references),
                strict=True,
            )
            if given
        ]
        if not present:
            raise NothingToScoreError(
                "Nothing to score against: give a prompt, a character with reference images, "
                "or a style (a style prompt or style reference images)"
            )
        used = (weights or self.weights).over(present)
        if not images:
            return []

        texts = [text for text in (prompt, style_prompt) if text]
        text_vectors = (
            dict(zip(texts, await self.engine.async_embed_texts(texts), strict=True))
            if texts
            else {}
        )
        character_vectors = await self._references(references)
        style_vectors = await self._references(style_references)
        vectors = await self.engine.async_embed_images(images, batch_size=self.batch_size)

        scores: list[tuple[float, ImageScore]] = []
        for index, vector in enumerate(vectors):
            components: dict[str, float] = {}
            values: dict[str, float] = {}
            if prompt:
                cosine = float(vector @ text_vectors[prompt])
                clip_score = CLIP_SCORE_WEIGHT * max(cosine, 0.0)
                values["prompt_clip_score"] = round(clip_score, 4)
                components["prompt"] = _text_component(cosine)
            if len(character_vectors):
                similarities = character_vectors @ vector
                best = float(similarities.max())
                values["character_best"] = round(best, 4)
                values["character_mean"] = round(float(similarities.mean()), 4)
                components["character"] = 100 * max(best, 0.0)
            style_parts = []
            if len(style_vectors):
                style_parts.append(100 * max(float((style_vectors @ vector).max()), 0.0))
            if style_prompt:
                style_parts.append(_text_component(float(vector @ text_vectors[style_prompt])))
            if style_parts:
                components["style"] = sum(style_parts) / len(style_parts)
            overall = sum(components[name] * weight for name, weight in used.items())
            # The optional measures ImageScore has, each a float of this image's.
            rounded: dict[str, Any] = values | {
                name: round(value, 2) for name, value in components.items()
            }
            score = ImageScore(
                index=index,
                name=None if names is None else names[index],
                overall=round(overall, 2),
                **rounded,
                weights=dict(used),
            )
            scores.append((overall, score))
        scores.sort(key=lambda item: (-item[0], item[1].index))
        return [replace(score, rank=rank) for rank, (_, score) in enumerate(scores, start=1)]

    async def _references(self, images: Sequence[bytes]) -> np.ndarray:
        """Embeddings of encoded reference images, from the cache where it has them."""
        if not images:
            return np.zeros((0, 0), dtype=np.float32)
        model = self.engine.name
        keys = [(model, hashlib.sha256(data).hexdigest()) for data in images]
        missing = {
            key: data for key, data in zip(keys, images, strict=True) if key not in self._cache
        }
        if missing:
            decoded = await asyncio.to_thread(
                lambda: [
                    decode_image(data, max_pixels=self.max_pixels) for data in missing.values()
                ]
            )
            vectors = await self.engine.async_embed_images(decoded, batch_size=self.batch_size)
            for key, vector in zip(missing, vectors, strict=True):
                self._cache[key] = vector
        for key in keys:
            self._cache.move_to_end(key)
        rows = np.stack([self._cache[key] for key in keys])
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return rows


def _text_component(cosine: float) -> float:
    """An image's match with a text on 0-100: 100 * min(CLIPScore, 1)."""
    return 100 * min(CLIP_SCORE_WEIGHT * max(cosine, 0.0), 1.0)
