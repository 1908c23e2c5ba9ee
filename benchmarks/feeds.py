"""What polling one feed costs the worker: an unchanged feed (304), a feed with one new entry,
and a first poll of a feed with 20 entries, each embedded and stored.

Run: .venv-worker/bin/python -m benchmarks.feeds

The worker's own knowledge service polls the feed (``KnowledgeService.async_poll_feeds``: the
conditional GET, feedparser, the per-feed state, each new entry kept, embedded by the real
model and stored in Qdrant local mode in a temporary folder), from an RSS file served on
127.0.0.1. Wall time and the process's CPU time per poll, median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
import statistics
import tempfile
import time

from aiohttp import web

from hydra_core.events import EventBus
from hydra_core.knowledge.embeddings import EmbeddingEngine
from hydra_core.knowledge.options import KnowledgeOptions
from hydra_core.knowledge.service import KnowledgeService

UNCHANGED_GOAL_MS = 50.0
ENTRIES = 20


def rss(items: int, start: int = 0) -> bytes:
    """An RSS 2.0 feed of ``items`` entries with realistic titles and summaries."""
    entries = "".join(
        f"<item><title>Home lab news {number}: a new GPU driver and a faster NAS</title>"
        f"<link>http://127.0.0.1/news/{number}</link><guid>news-{number}</guid>"
        "<pubDate>Mon, 07 Dec 2026 06:00:00 GMT</pubDate>"
        f"<description>Item {number}. The driver release brings better power management for "
        "consumer cards, and the NAS firmware speeds up small-file transfers over SMB. Owners "
        "of older boards should update the BIOS first.</description></item>"
        for number in range(start, start + items)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Bench feed</title><link>http://127.0.0.1/</link>{entries}</channel></rss>"
    ).encode()


class FeedServer:
    """One feed on 127.0.0.1 with an ETag that changes with its content."""

    def __init__(self) -> None:
        self.body = rss(ENTRIES)
        self.version = 1
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        etag = f'"v{self.version}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304)
        return web.Response(
            body=self.body, content_type="application/rss+xml", headers={"ETag": etag}
        )


async def _poll(service: KnowledgeService) -> tuple[float, float, int]:
    """One poll of every feed, as the worker's timer does; (wall ms, CPU ms, new entries)."""
    feeds = await service.store.async_feeds()
    wall, cpu = time.perf_counter(), time.process_time()
    new = 0
    for feed in feeds:
        new += await service._poll(feed)
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000, new


async def main(repeat: int) -> None:
    server = FeedServer()
    app = web.Application()
    app.router.add_get("/feed.xml", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/feed.xml"
    figures: dict[str, list[tuple[float, float]]] = {"first": [], "unchanged": [], "one new": []}
    with tempfile.TemporaryDirectory() as folder:
        for run in range(repeat):
            data = Path(folder) / f"run{run}"
            options = KnowledgeOptions(research_allow_private=True)
            service = KnowledgeService(
                options,
                data_dir=data,
                embedder=EmbeddingEngine(data / "models", idle_unload_s=0),
                bus=EventBus(),
                poll_feeds=False,
            )
            await service.async_start()
            await service.embedder.load()
            await service.async_add_feed(url, None, 50)
            server.body, server.version = rss(ENTRIES), server.version + 1
            wall, cpu, new = await _poll(service)
            assert new == ENTRIES, new
            figures["first"].append((wall, cpu))
            wall, cpu, new = await _poll(service)
            assert new == 0
            figures["unchanged"].append((wall, cpu))
            server.body, server.version = rss(ENTRIES, start=1), server.version + 1
            wall, cpu, new = await _poll(service)
            assert new == 1, new
            figures["one new"].append((wall, cpu))
            await service.async_stop()
    await runner.cleanup()
    print(f"polling one feed, median of {repeat} runs (wall / CPU of the worker process):")
    goals = {"unchanged": f"(goal < {UNCHANGED_GOAL_MS:.0f} ms)", "first": "", "one new": ""}
    labels = {
        "first": f"first poll, {ENTRIES} new entries embedded and stored",
        "unchanged": "unchanged feed (304 Not Modified)",
        "one new": "one new entry among 20",
    }
    for key, values in figures.items():
        wall = statistics.median(value[0] for value in values)
        cpu = statistics.median(value[1] for value in values)
        print(f"  {labels[key]}: {wall:.1f} ms / {cpu:.1f} ms CPU  {goals[key]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    asyncio.run(main(parser.parse_args().repeat))
