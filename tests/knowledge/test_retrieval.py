"""Retrieval quality: the real embedding model and real Qdrant local mode on a labelled set.

``retrieval/chunks.jsonl`` holds 220 short passages on 22 topics (home lab, AI, smart home and
everyday subjects, ten each, so every question has near misses beside its answer);
``retrieval/questions.jsonl`` holds 75 questions, paraphrased rather than copied, each with the
passage ids that answer it. Both were written for Hydra (see ``retrieval/README.md``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
import json
from pathlib import Path
import re

import pytest
from qdrant_client import QdrantClient, models

from hydra_core.knowledge.embeddings import EmbeddingEngine

SET = Path(__file__).parent / "retrieval"
COLLECTION = "chunks"
#: The goal the issue sets, and a floor under which MRR would be a visible regression.
RECALL_AT_5_GOAL = 0.9
MRR_FLOOR = 0.85


@dataclass(frozen=True)
class Question:
    text: str
    answers: frozenset[str]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def load_set() -> tuple[list[dict[str, str]], list[Question]]:
    chunks = [json.loads(line) for line in (SET / "chunks.jsonl").read_text().splitlines()]
    questions = [
        Question(item["question"], frozenset(item["answers"]))
        for item in map(json.loads, (SET / "questions.jsonl").read_text().splitlines())
    ]
    return chunks, questions


def test_the_labelled_set_is_sound() -> None:
    chunks, questions = load_set()
    ids = [chunk["id"] for chunk in chunks]
    assert len(ids) == len(set(ids)) >= 200
    assert len(questions) >= 40
    assert all(question.answers <= set(ids) for question in questions)
    texts = [chunk["text"] for chunk in chunks]
    assert len(set(texts)) == len(texts)
    # Paraphrased: no question shares a run of five words with its answer.
    by_id = {chunk["id"]: words(chunk["text"]) for chunk in chunks}
    for question in questions:
        asked = words(question.text)
        runs = {" ".join(asked[n : n + 5]) for n in range(len(asked) - 4)}
        for answer in question.answers:
            assert not [run for run in runs if run in " ".join(by_id[answer])], question.text


@pytest.fixture
def qdrant(tmp_path: Path) -> Iterator[QdrantClient]:
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    yield client
    client.close()


async def test_recall_at_5_and_mrr(
    tmp_path: Path, qdrant: QdrantClient, capsys: pytest.CaptureFixture[str]
) -> None:
    chunks, questions = load_set()
    engine = EmbeddingEngine(tmp_path)
    try:
        vectors = await engine.embed([chunk["text"] for chunk in chunks], kind="passage")
        queries = await engine.embed([question.text for question in questions], kind="query")
    finally:
        await engine.close()
    qdrant.create_collection(
        COLLECTION,
        vectors_config=models.VectorParams(size=vectors.shape[1], distance=models.Distance.COSINE),
    )
    qdrant.upsert(
        COLLECTION,
        points=[
            models.PointStruct(id=number, vector=vector.tolist(), payload={"chunk": chunk["id"]})
            for number, (chunk, vector) in enumerate(zip(chunks, vectors, strict=True))
        ],
    )
    hits_at_5 = 0
    reciprocal_ranks = []
    misses = []
    for question, query in zip(questions, queries, strict=True):
        found = qdrant.query_points(COLLECTION, query=query.tolist(), limit=10).points
        ranked = [point.payload["chunk"] for point in found if point.payload]
        rank = next((n for n, chunk in enumerate(ranked, 1) if chunk in question.answers), None)
        hits_at_5 += rank is not None and rank <= 5
        reciprocal_ranks.append(1 / rank if rank else 0.0)
        if rank != 1:
            misses.append(f"  rank {rank or '>10'}: {question.text} -> {ranked[:3]}")
    recall_at_5 = hits_at_5 / len(questions)
    mrr = sum(reciprocal_ranks) / len(questions)
    with capsys.disabled():
        print(
            f"\nretrieval ({engine.model}, Qdrant local mode, cosine): {len(chunks)} chunks, "
            f"{len(questions)} questions: recall@5 {recall_at_5:.3f} "
            f"(goal >= {RECALL_AT_5_GOAL}), MRR@10 {mrr:.3f}"
        )
        print("\n".join(misses))
    assert recall_at_5 >= RECALL_AT_5_GOAL
    assert mrr >= MRR_FLOOR
