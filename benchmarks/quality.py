"""CLIP quality scoring speed: images per second at batch 1 and 8, load time and peak memory.

Run: .venv-worker/bin/python -m benchmarks.quality [--repeat 5] [--images 32] [--device auto]

The real engine and scorer (hydra_core.quality ClipEngine / QualityScorer) with open_clip's
ViT-B-32 and random weights (``--pretrained none``, the default: no weights can be downloaded
here, and random weights run the same code at the same speed). Each round scores ``--images``
synthetic 768 x 768 pictures against a prompt, two character references (cached after the
warm-up, as a character's are) and a style prompt: decoding is not included, preprocessing
(resize, crop, normalise) and the text encoding of the prompts are. ``--device auto`` uses a
GPU when torch sees one; give ``--pretrained laion2b_s34b_b79k`` on a machine with the weights.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
import resource
import statistics
import sys
import tempfile
import time

import numpy as np
from PIL import Image

from hydra_core.quality.engine import ClipEngine
from hydra_core.quality.scoring import QualityScorer

PROMPT = "a knight in silver armour standing in a misty forest, oil painting"
STYLE = "oil painting, muted colours"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pictures(count: int, size: int) -> list[Image.Image]:
    """Distinct synthetic RGB pictures (smooth noise, so no two are alike)."""
    rng = np.random.default_rng(0)
    result = []
    for _ in range(count):
        coarse = rng.integers(0, 256, (size // 32, size // 32, 3), dtype=np.uint8)
        result.append(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC))
    return result


def encoded(image: Image.Image) -> bytes:
    from io import BytesIO  # noqa: PLC0415

    buffer = BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


async def run(args: argparse.Namespace, models_dir: Path) -> None:
    started = time.perf_counter()
    import open_clip  # noqa: PLC0415, F401
    import torch  # noqa: PLC0415

    import_s = time.perf_counter() - started
    engine = ClipEngine(
        models_dir,
        model=args.model,
        pretrained=args.pretrained,
        device=args.device,
        offline=args.pretrained in (None, "none") or args.offline,
        idle_unload_s=0,
    )
    started = time.perf_counter()
    await engine.async_load()
    load_s = time.perf_counter() - started
    device = engine.device or "?"
    gpu = f" ({torch.cuda.get_device_name(0)})" if device.startswith("cuda") else ""
    print(
        f"CPU cores: {len(os.sched_getaffinity(0))}, torch threads {torch.get_num_threads()}, "
        f"Python {sys.version.split()[0]}, torch {torch.__version__}, device {device}{gpu}"
    )
    print(
        f"model {engine.name}: import torch + open_clip {import_s:.2f} s, "
        f"load {load_s:.2f} s, peak RSS after load {peak_rss_mb():.0f} MB"
    )

    images = pictures(args.images, args.size)
    references = [encoded(image) for image in pictures(2, args.size)]
    request = {"prompt": PROMPT, "references": references, "style_prompt": STYLE}
    scorers = {size: QualityScorer(engine, batch_size=size) for size in args.batch}
    for scorer in scorers.values():
        await scorer.async_score(images[:8], **request)  # warm-up, references cached
    # Rounds alternate between the batch sizes, so that load from other processes on a shared
    # machine falls on all of them alike.
    scoring: dict[int, list[float]] = {size: [] for size in args.batch}
    embedding: dict[int, list[float]] = {size: [] for size in args.batch}
    for _ in range(args.repeat):
        for size, scorer in scorers.items():
            started = time.perf_counter()
            scores = await scorer.async_score(images, **request)
            scoring[size].append(len(scores) / (time.perf_counter() - started))
            started = time.perf_counter()
            await engine.async_embed_images(images, batch_size=size)
            embedding[size].append(len(images) / (time.perf_counter() - started))
    await engine.async_close()

    print(f"\n{args.images} images of {args.size} x {args.size}, {args.repeat} rounds each")
    print("| batch | scoring, images/s: median (min-max) | image embedding only, images/s |")
    print("|---|---|---|")
    for size in args.batch:
        rates, embed = scoring[size], embedding[size]
        print(
            f"| {size} | {statistics.median(rates):.1f} ({min(rates):.1f}-{max(rates):.1f}) "
            f"| {statistics.median(embed):.1f} ({min(embed):.1f}-{max(embed):.1f}) |"
        )
    print(f"\npeak RSS: {peak_rss_mb():.0f} MB")
    if device.startswith("cuda"):
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    print("command: .venv-worker/bin/python -m benchmarks.quality " + " ".join(sys.argv[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--pretrained", default="none")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--offline", action="store_true", help="never download weights")
    parser.add_argument(
        "--models-dir", type=Path, help="keep downloaded weights here (default: a temporary one)"
    )
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--size", type=int, default=768)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hydra-quality-bench-") as folder:
        asyncio.run(run(args, args.models_dir or Path(folder)))


if __name__ == "__main__":
    main()
