"""QualityScorer: components, weights, ranking and the reference cache, on the tiny CLIP."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL.Image import Image
import pytest

from hydra_core.quality.engine import ClipEngine
from hydra_core.quality.images import ImageError, decode_image
from hydra_core.quality.models import ImageScore
from hydra_core.quality.scoring import NothingToScoreError, QualityScorer, ScoreWeights
from tests.quality.conftest import CONFIGS, KINDS, TINY_MODEL, encode, picture, tiny_engine


@pytest.fixture
def images() -> list[Image]:
    """Five different pictures, as the API hands them over (decoded from PNG)."""
    return [decode_image(encode(picture(kind))) for kind in KINDS]


def by_index(scores: Sequence[ImageScore]) -> list[ImageScore]:
    return sorted(scores, key=lambda score: score.index)


async def test_an_image_is_most_consistent_with_itself(
    engine: ClipEngine, images: list[Image]
) -> None:
    scorer = QualityScorer(engine)
    reference = encode(picture("checker"))
    scores = by_index(await scorer.async_score(images, references=[reference]))
    itself = scores[KINDS.index("checker")]
    assert itself.character_best == pytest.approx(1.0, abs=1e-4)
    assert itself.character == pytest.approx(100.0, abs=0.01)
    others = [score for score in scores if score is not itself]
    assert all(score.character_best < itself.character_best for score in others)
    # Only the character was scored, so it is the whole overall and ranks the images.
    assert itself.rank == 1
    assert itself.weights == {"character": 1.0}
    assert all(score.overall == score.character for score in scores)
    assert all(score.prompt is None and score.style is None for score in scores)


async def test_best_and_mean_over_several_references(
    engine: ClipEngine, images: list[Image]
) -> None:
    references = [encode(picture("disc")), encode(picture("noise"))]
    vectors = await engine.async_embed_images(images)
    reference_vectors = await engine.async_embed_images([decode_image(data) for data in references])
    scores = by_index(await QualityScorer(engine).async_score(images, references=references))
    for score, vector in zip(scores, vectors, strict=True):
        similarities = reference_vectors @ vector
        assert score.character_best == pytest.approx(similarities.max(), abs=1e-4)
        assert score.character_mean == pytest.approx(similarities.mean(), abs=1e-4)
        assert score.character == pytest.approx(100 * max(similarities.max(), 0), abs=0.01)


async def test_prompt_is_clip_score(engine: ClipEngine, images: list[Image]) -> None:
    prompt = "a knight in silver armour, oil painting"
    vectors = await engine.async_embed_images(images)
    (text,) = await engine.async_embed_texts([prompt])
    scores = by_index(await QualityScorer(engine).async_score(images, prompt=prompt))
    for score, vector in zip(scores, vectors, strict=True):
        cosine = float(vector @ text)
        assert score.prompt_clip_score == pytest.approx(2.5 * max(cosine, 0), abs=1e-4)
        assert score.prompt == pytest.approx(100 * min(2.5 * max(cosine, 0), 1), abs=0.01)
        assert score.prompt == pytest.approx(100 * min(score.prompt_clip_score, 1), abs=0.01)
        assert score.overall == score.prompt
        assert score.weights == {"prompt": 1.0}
        assert score.character_best is score.character is score.style is None


async def test_style_from_references_a_prompt_or_both(
    engine: ClipEngine, images: list[Image]
) -> None:
    scorer = QualityScorer(engine)
    style_references = [encode(picture("stripes")), encode(picture("gradient"))]
    vectors = await engine.async_embed_images(images)
    reference_vectors = await engine.async_embed_images(
        [decode_image(data) for data in style_references]
    )
    (text,) = await engine.async_embed_texts(["watercolour"])
    from_references = by_index(await scorer.async_score(images, style_references=style_references))
    from_prompt = by_index(await scorer.async_score(images, style_prompt="watercolour"))
    both = by_index(
        await scorer.async_score(
            images, style_prompt="watercolour", style_references=style_references
        )
    )
    for index, vector in enumerate(vectors):
        by_reference = 100 * max(float((reference_vectors @ vector).max()), 0)
        by_prompt = 100 * min(2.5 * max(float(vector @ text), 0), 1)
        assert from_references[index].style == pytest.approx(by_reference, abs=0.01)
        assert from_prompt[index].style == pytest.approx(by_prompt, abs=0.01)
        assert both[index].style == pytest.approx((by_reference + by_prompt) / 2, abs=0.01)
        assert both[index].weights == {"style": 1.0}
    assert from_references[KINDS.index("stripes")].style == pytest.approx(100, abs=0.01)


async def test_overall_is_the_renormalised_weighted_mean(
    engine: ClipEngine, images: list[Image]
) -> None:
    scorer = QualityScorer(engine)
    everything = await scorer.async_score(
        images,
        prompt="a castle",
        references=[encode(picture("disc"))],
        style_prompt="ink drawing",
    )
    for score in everything:
        assert score.weights == pytest.approx({"prompt": 0.4, "character": 0.4, "style": 0.2})
        expected = 0.4 * score.prompt + 0.4 * score.character + 0.2 * score.style
        assert score.overall == pytest.approx(expected, abs=0.02)
    # Without a style, prompt and character share its weight.
    two = await scorer.async_score(images, prompt="a castle", references=[encode(picture("disc"))])
    for score in two:
        assert score.weights == pytest.approx({"prompt": 0.5, "character": 0.5})
        assert score.overall == pytest.approx((score.prompt + score.character) / 2, abs=0.02)
    # Weights are an option, per scorer or per call; a zero weight leaves its component out.
    custom = ScoreWeights(prompt=3, character=1, style=0)
    weighted = await scorer.async_score(
        images,
        prompt="a castle",
        references=[encode(picture("disc"))],
        style_prompt="ink",
        weights=custom,
    )
    for score in weighted:
        assert score.weights == pytest.approx({"prompt": 0.75, "character": 0.25})
        assert score.style is not None
        assert score.overall == pytest.approx(
            0.75 * score.prompt + 0.25 * score.character, abs=0.02
        )


async def test_nothing_to_score_against(engine: ClipEngine, images: list[Image]) -> None:
    scorer = QualityScorer(engine)
    with pytest.raises(NothingToScoreError) as caught:
        await scorer.async_score(images, prompt="   ")
    assert caught.value.code == "nothing_to_score"
    assert caught.value.message == (
        "Nothing to score against: give a prompt, a character with reference images, or a "
        "style (a style prompt or style reference images)"
    )
    with pytest.raises(NothingToScoreError, match="has weight 0"):
        await scorer.async_score(images, style_prompt="ink", weights=ScoreWeights(style=0))
    with pytest.raises(ValueError, match="must be a number >= 0"):
        ScoreWeights(prompt=-1)
    assert engine.state == "not_loaded"  # refused before loading anything
    assert await scorer.async_score([], prompt="a castle") == []


async def test_batch_ranking_is_stable(tmp_path: Path, images: list[Image]) -> None:
    """Same order and scores when asked twice, and with another batch size."""
    request = {
        "names": [f"{kind}.png" for kind in KINDS],
        "prompt": "a red disc on a dark background",
        "references": [encode(picture("disc")), encode(picture("checker"))],
        "style_prompt": "flat colours",
    }
    engine = tiny_engine(tmp_path)
    try:
        first = await QualityScorer(engine).async_score(images, **request)
        second = await QualityScorer(engine).async_score(images, **request)
        one_at_a_time = await QualityScorer(engine, batch_size=1).async_score(images, **request)
    finally:
        await engine.async_close()
    assert first == second
    assert [score.index for score in one_at_a_time] == [score.index for score in first]
    for single, batched in zip(one_at_a_time, first, strict=True):
        assert single.overall == pytest.approx(batched.overall, abs=0.02)
    assert [score.rank for score in first] == [1, 2, 3, 4, 5]
    assert [score.name for score in first] == [KINDS[score.index] + ".png" for score in first]
    overalls = [score.overall for score in first]
    assert overalls == sorted(overalls, reverse=True)


async def test_ties_keep_their_order(engine: ClipEngine) -> None:
    twins = [decode_image(encode(picture("noise"))) for _ in range(3)]
    scores = await QualityScorer(engine).async_score(twins, prompt="static")
    assert len({score.overall for score in scores}) == 1
    assert [(score.index, score.rank) for score in scores] == [(0, 1), (1, 2), (2, 3)]


class CountingEngine(ClipEngine):
    """The real engine, counting the images it embeds."""

    embedded = 0

    async def async_embed_images(self, images: Sequence[Image], **options: int) -> np.ndarray:
        self.embedded += len(images)
        return await super().async_embed_images(images, **options)


async def test_reference_embeddings_are_cached(tmp_path: Path, images: list[Image]) -> None:
    engine = CountingEngine(
        tmp_path, model=TINY_MODEL, config_dir=CONFIGS, pretrained=None, idle_unload_s=0
    )
    references = [encode(picture("disc")), encode(picture("stripes"))]
    scorer = QualityScorer(engine, cache_size=3)
    try:
        first = await scorer.async_score(images, references=references)
        assert (engine.embedded, scorer.cached_references) == (5 + 2, 2)
        again = await scorer.async_score(images, references=references)
        assert engine.embedded == 7 + 5  # the images only, not the references again
        assert again == first
        # A new reference is embedded alone, and the same bytes twice only once.
        new = encode(picture("checker"))
        await scorer.async_score(images[:1], references=[*references, new, new])
        assert (engine.embedded, scorer.cached_references) == (12 + 1 + 1, 3)
        # Beyond cache_size the least recently used go.
        await scorer.async_score(images[:1], references=[encode(picture("noise"))])
        assert scorer.cached_references == 3
        with pytest.raises(ImageError):
            await scorer.async_score(images[:1], references=[b""])
    finally:
        await engine.async_close()


async def test_a_bad_reference_is_an_image_error(engine: ClipEngine, images: list[Image]) -> None:
    with pytest.raises(ImageError) as caught:
        await QualityScorer(engine).async_score(images, references=[encode(picture("disc"), "GIF")])
    assert caught.value.code == "unsupported_format"


async def test_names_must_match_the_images(engine: ClipEngine, images: list[Image]) -> None:
    with pytest.raises(ValueError, match="2 names for 5 images"):
        await QualityScorer(engine).async_score(images, names=["a", "b"], prompt="x")
