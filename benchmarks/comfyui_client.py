"""The ComfyUI client's own cost per image, against the ComfyUI stand-in on loopback.

Run: .venv-worker/bin/python -m benchmarks.comfyui_client [--count 100]

Each render is a whole round as the pipeline will do it: pick the server (``GET /prompt``),
check the graph against the cached ``/object_info``, open ``/ws``, ``POST /prompt``, follow the
seven nodes and four sampler steps, read ``/history`` and fetch the PNG through ``/view``. The
stand-in samples instantly and draws a 64x48 PNG, so the time is the client's overhead plus the
stand-in's (an upper bound on the client's share). Goal: under 50 ms per image, the pipeline's
budget for everything but generation.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import aiohttp

from hydra_core.creative.comfyui import ComfyUIClient
from hydra_core.creative.graphs import load_template
from tests.comfyui_standin import ComfyUIStandIn

_CHECKPOINT = "sd_xl_base_1.0.safetensors"
_GOAL_MS = 50.0


async def _measure(count: int) -> list[float]:
    template = load_template("background")
    times = []
    async with ComfyUIStandIn([_CHECKPOINT]) as comfy, aiohttp.ClientSession() as session:
        client = ComfyUIClient(session, [comfy.url])
        for seed in range(count + 5):
            graph = template.fill(
                checkpoint=_CHECKPOINT, prompt="a throne room at night", negative="blurry",
                seed=seed, steps=4, width=64, height=48,
            )  # fmt: skip
            started = time.perf_counter()
            await client.render(graph)
            if seed >= 5:  # the first renders warm up connections and the object_info cache
                times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    times = asyncio.run(_measure(parser.parse_args().count))
    p95 = statistics.quantiles(times, n=20)[-1]
    print(f"renders: {len(times)}")
    print(f"per image, median: {statistics.median(times):.1f} ms (goal < {_GOAL_MS:g} ms)")
    print(f"per image, p95:    {p95:.1f} ms (goal < {_GOAL_MS:g} ms)")


if __name__ == "__main__":
    main()
