"""ClipEngine: real open_clip code on a tiny CLIP built locally (random weights, fixed seed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
from PIL import Image
import pytest
import torch

from hydra_core.quality.engine import RANDOM_WEIGHTS_REASON, ClipEngine, cached_weights
from hydra_core.quality.errors import QualityUnavailableError
from tests.quality.conftest import KINDS, picture, tiny_engine, wait_until


async def test_embeddings_are_unit_length_float32(engine: ClipEngine) -> None:
    images = await engine.async_embed_images([picture(kind) for kind in KINDS])
    texts = await engine.async_embed_texts(["a red disc", "stripes", ""])
    assert (images.shape, texts.shape) == ((5, 64), (3, 64))
    assert images.dtype == texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert engine.embed_dim == 64
    assert (await engine.async_embed_images([])).shape == (0, 64)


async def test_status_of_random_weights(engine: ClipEngine) -> None:
    assert (engine.state, engine.device, engine.available) == ("not_loaded", None, True)
    assert engine.random_weights
    # Scoring works, but the status must say its numbers mean nothing.
    assert engine.reason == RANDOM_WEIGHTS_REASON
    await engine.async_load()
    assert (engine.state, engine.device) == ("loaded", "cpu")  # "auto" without a GPU
    assert engine.name == "Hydra-Tiny-ViT (random weights)"
    assert not ClipEngine(Path(), pretrained="none").pretrained


async def test_embeddings_are_deterministic(engine: ClipEngine, tmp_path: Path) -> None:
    images = [picture(kind) for kind in KINDS]
    one_by_one = await engine.async_embed_images(images, batch_size=1)
    batched = await engine.async_embed_images(images, batch_size=8)
    np.testing.assert_allclose(one_by_one, batched, atol=1e-5)
    same_seed = tiny_engine(tmp_path / "a")
    other_seed = tiny_engine(tmp_path / "b", seed=1)
    try:
        np.testing.assert_allclose(await same_seed.async_embed_images(images), batched, atol=1e-5)
        assert not np.allclose(await other_seed.async_embed_images(images), batched, atol=1e-3)
    finally:
        await same_seed.async_close()
        await other_seed.async_close()
    # Building the random model leaves the process's own random numbers alone.
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fresh = tiny_engine(tmp_path / "c")
    await fresh.async_load()
    assert torch.equal(torch.rand(3), expected)
    await fresh.async_close()


async def test_lazy_load_and_idle_unload(tmp_path: Path) -> None:
    engine = tiny_engine(tmp_path, idle_unload_s=0.3)
    try:
        assert engine.state == "not_loaded"
        first = await engine.async_embed_texts(["a castle at night"])
        assert (engine.state, engine.lazy.load_count) == ("loaded", 1)
        await wait_until(lambda: engine.state == "not_loaded")
        assert not engine.lazy.loaded
        # The next use loads it again, with the same weights.
        again = await engine.async_embed_texts(["a castle at night"])
        assert (engine.state, engine.lazy.load_count) == ("loaded", 2)
        np.testing.assert_allclose(first, again, atol=1e-6)
    finally:
        await engine.async_close()
    with pytest.raises(QualityUnavailableError, match="closed"):
        await engine.async_embed_texts(["x"])


async def test_concurrent_first_uses_load_once(engine: ClipEngine) -> None:
    results = await asyncio.gather(*(engine.async_embed_images([picture(kind)]) for kind in KINDS))
    assert engine.lazy.load_count == 1
    assert [result.shape for result in results] == [(1, 64)] * 5


async def test_long_thin_images_are_cut_before_resizing(engine: ClipEngine) -> None:
    """A panorama gives what the model's own preprocessing gives (the centre crop) without the
    shortest-side resize blowing the long side up first."""
    wide = picture("gradient", (1000, 100))
    embedded = await engine.async_embed_images([wide])
    async with engine.lazy.use() as clip:
        with torch.inference_mode():
            direct = clip.model.encode_image(clip.preprocess(wide)[None], normalize=True)
    np.testing.assert_allclose(embedded, direct.numpy(), atol=1e-5)
    # 1 x 40000 would otherwise be resized to 64 x 2,560,000 pixels.
    line = Image.new("RGB", (40000, 1), (200, 10, 10))
    assert (await engine.async_embed_images([line, line.rotate(90, expand=True)])).shape == (2, 64)


async def test_offline_without_cached_weights_says_where(tmp_path: Path) -> None:
    engine = ClipEngine(tmp_path / "models", pretrained="laion2b_s34b_b79k", offline=True)
    try:
        assert engine.reason is None  # not known before the first try
        with pytest.raises(QualityUnavailableError) as caught:
            await engine.async_embed_texts(["a cat"])
        folder = tmp_path / "models" / "clip"
        expected = (
            f"The CLIP weights ViT-B-32 / laion2b_s34b_b79k are not in {folder} and offline mode"
            " is on: turn offline mode off to download them there, or copy them in"
        )
        assert caught.value.message == expected
        assert caught.value.code == "quality_unavailable"
        assert (engine.state, engine.available, engine.reason) == ("error", False, expected)
        assert not (tmp_path / "models").exists()  # nothing was downloaded or created
    finally:
        await engine.async_close()


async def test_unknown_model_or_tag(tmp_path: Path) -> None:
    engine = ClipEngine(tmp_path, pretrained="no-such-tag", offline=True)
    with pytest.raises(QualityUnavailableError, match="no pretrained weights 'no-such-tag'"):
        await engine.async_load()
    assert "laion2b_s34b_b79k" in (engine.reason or "")
    await engine.async_close()
    engine = ClipEngine(tmp_path, model="ViT-Nonexistent", pretrained=None)
    with pytest.raises(QualityUnavailableError, match="Could not load CLIP ViT-Nonexistent"):
        await engine.async_load()
    await engine.async_close()


async def test_weights_from_a_file(tmp_path: Path) -> None:
    """``pretrained`` may be a weights file: here the tiny model's seed-1 weights."""
    source = tiny_engine(tmp_path / "a", seed=1)
    images = [picture(kind) for kind in KINDS]
    expected = await source.async_embed_images(images)
    weights = tmp_path / "tiny.pt"
    async with source.lazy.use() as clip:
        torch.save(clip.model.state_dict(), weights)
    await source.async_close()

    engine = tiny_engine(tmp_path / "b", pretrained=str(weights))
    try:
        assert not engine.random_weights
        np.testing.assert_allclose(await engine.async_embed_images(images), expected, atol=1e-5)
        assert engine.reason is None
    finally:
        await engine.async_close()


def test_cached_weights_are_found_in_a_hugging_face_cache(tmp_path: Path) -> None:
    """The layout huggingface_hub (open_clip's downloader) leaves behind."""
    tag = {"hf_hub": "laion/CLIP-ViT-B-32-laion2B-s34B-b79K/", "url": ""}
    assert cached_weights(tag, tmp_path) is None
    repo = tmp_path / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    (snapshot / "open_clip_pytorch_model.bin").write_bytes(b"weights")
    assert cached_weights(tag, tmp_path) == str(snapshot / "open_clip_pytorch_model.bin")
    # open_clip prefers the safetensors file when both are there.
    (snapshot / "open_clip_model.safetensors").write_bytes(b"weights")
    assert cached_weights(tag, tmp_path) == str(snapshot / "open_clip_model.safetensors")
    # Weights published by URL are cached as the file itself.
    by_url = {"hf_hub": "", "url": "https://example.org/weights/vit.pt"}
    assert cached_weights(by_url, tmp_path) is None
    (tmp_path / "vit.pt").write_bytes(b"weights")
    assert cached_weights(by_url, tmp_path) == str(tmp_path / "vit.pt")
