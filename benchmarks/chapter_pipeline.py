"""The creative pipeline's own cost, besides generation, through a real worker process.

Run: .venv-worker/bin/python -m benchmarks.chapter_pipeline [--lines 2]

Three chapters, each through a fresh worker process (``python -m hydra_core.worker`` with the
creative part, the tiny CLIP with random weights, Kokoro's real int8 weights from the voice
tests, ``--comfyui-steps 1``, ``--quality-threshold 0`` so every image passes its first try, the
queue's default of 3 tasks at once) against the ComfyUI stand-in on loopback (``step_delay`` 0:
an image costs it a Pillow drawing). The 8 characters get a reference image each through the
API and a style book (``DATA_DIR/creative/default/style.yaml``) with small images (128x72
backgrounds, 64x96 characters) and a Kokoro voice each. The benchmark listens on
``/api/v1/events`` as Home Assistant does, and polls nothing while a chapter runs.

1. Overhead: ``benchmarks.chapter_plan``'s 30-scene chapter, 10 lines a scene (8 characters,
   12 backgrounds, 48 character images, 300 voice lines, then the package). Its voice lines are
   already in the voice cache (``VoiceLineCache``'s files, written before the worker starts), so
   each ``voice_line`` task runs whole (dispatch, plan, cache look-up, the asset's row, the
   queue's bookkeeping) but synthesises nothing. Generation is what the ComfyUI stand-in spent
   on each prompt (from ``POST /prompt`` to the end of its execution) and the CLIP scoring; the
   rest is overhead, from the worker's own task records. With generation free, three tasks at
   once share the worker's event loop and the 2 cores far more than they would with a GPU
   drawing for seconds, so:
1b. the same chapter again with the queue running one task at a time (``max_concurrent`` 1).
2. Whole pipeline: the same generator with ``--lines`` lines a scene (default 2: 60 voice
   lines, 28 images) and real Kokoro synthesis, timed by stage.

The worker process runs this module with ``--as-worker``: it wraps a few functions (the
render, the scoring, the synthesis, the chapter's status and the coordinator's report) to write
when each began and ended, one JSON line each, then runs the worker's own ``main``.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
import functools
import itertools
import json
from pathlib import Path
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import aiohttp
from aiohttp import web

from benchmarks.chapter_plan import CHARACTERS, SCENES, chapter_text
from tests.comfyui_standin import ComfyUIStandIn
from tests.creative.pipeline import reference_png
from tests.quality.conftest import tiny_worker_command
from tests.voice.weights import VoiceWeights, assemble_weights, install_kokoro
from tests.worker.test_cli import free_port, worker_env

TOKEN = "chapter-pipeline-benchmark-0123456789"  # noqa: S105 - a test token
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
ROOT = Path(__file__).resolve().parents[1]
OVERHEAD_GOAL_MS = 50.0
CHAPTER_TIMEOUT_S = 420.0
# The voices of the test weights (Japanese Kokoro voices; they speak English with en-us).
VOICES = ("jf_alpha", "jf_nezumi", "jm_kumo", "jf_gongitsune", "jf_tebukuro")
CHILD_KINDS = ("asset_generation", "voice_line", "chapter_package")


def style_book() -> str:
    """The style book: small images, and a Kokoro voice for each of the 8 characters."""
    lines = [
        "style: oil painting, muted palette",
        "model: sd_xl_base_1.0.safetensors",
        "background_size: {width: 128, height: 72}",
        "character_size: {width: 64, height: 96}",
        "characters:",
    ]
    for number, character in enumerate(CHARACTERS):
        lines += [
            f"  {character.id}:",
            f"    appearance: queen number {number}, a crown of glass",
            f"    voice: {{voice: {VOICES[number % len(VOICES)]}, speed: 1.0}}",
        ]
    return "\n".join(lines) + "\n"


# --- inside the worker process ------------------------------------------------------------------


def _instrument(path: Path) -> None:
    """Wrap what the benchmark subtracts or counts; each call appends one JSON line."""
    from hydra_core.creative import tasks  # noqa: PLC0415
    from hydra_core.creative.service import CreativeService  # noqa: PLC0415
    from hydra_core.voice.tts import TtsEngine  # noqa: PLC0415

    out = path.open("a", buffering=1, encoding="utf-8")

    def timed(
        owner: type, name: str, what: str, extra: Callable[[tuple[Any, ...], Any], dict] | None
    ) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.time()
            result = await original(*args, **kwargs)
            record = {"what": what, "start": began, "end": time.time()}
            if extra is not None:
                record.update(extra(args, result))
            out.write(json.dumps(record) + "\n")
            return result

        setattr(owner, name, wrapper)

    timed(
        tasks.AssetHandler,
        "_render",
        "render",
        lambda args, result: {"address": args[1], "prompt_id": result.prompt_id},
    )
    timed(tasks.AssetHandler, "_score", "score", lambda args, _: {"address": args[2].address})
    timed(TtsEngine, "speak", "speak", None)
    timed(CreativeService, "status", "status", None)
    timed(CreativeService, "async_tasks_of", "tasks_of", None)
    timed(tasks._Follow, "report", "report", None)


def _as_worker(timings: str, argv: list[str]) -> int:
    _instrument(Path(timings))
    from hydra_core.worker.__main__ import main  # noqa: PLC0415

    return main(argv)


# --- the benchmark's side -----------------------------------------------------------------------


class TimedStandIn(ComfyUIStandIn):
    """The stand-in, noting when each prompt was posted and when its execution began and ended."""

    def __init__(self) -> None:
        super().__init__(step_delay=0.0)
        self.posted: dict[str, float] = {}
        self.ran: dict[str, tuple[float, float]] = {}

    async def _post_prompt(self, request: web.Request) -> web.Response:
        began = time.time()
        response = await super()._post_prompt(request)
        if response.status == 200:
            assert isinstance(response.body, bytes)
            self.posted[json.loads(response.body)["prompt_id"]] = began
        return response

    async def _execute(self, prompt_id: str, *args: Any) -> bool:
        began = time.time()
        success = await super()._execute(prompt_id, *args)
        self.ran[prompt_id] = (began, time.time())
        return success


@dataclass
class Run:
    """What one chapter's run left to analyse."""

    submitted: float = 0.0
    chapter: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[float, str, str | None]] = field(default_factory=list)
    tasks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    posted: dict[str, float] = field(default_factory=dict)
    ran: dict[str, tuple[float, float]] = field(default_factory=dict)
    peak_rss_kb: int = 0
    # Before the chapter: started, the characters cast, nothing scored or spoken yet.
    start_rss_kb: int = 0


class Worker:
    """The instrumented worker process of one run."""

    def __init__(self, folder: Path, comfyui_url: str) -> None:
        self.folder = folder
        self.data_dir = folder / "data"
        self.timings = folder / "timings.jsonl"
        self.log = folder / "worker.log"
        self.comfyui_url = comfyui_url
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.http = aiohttp.ClientSession()
        # Set once the benchmark listens on the worker's event stream.
        self.listening = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    async def start(self) -> None:
        """Start it and wait until it answers."""
        command = tiny_worker_command(sys.executable, self.port, TOKEN, self.data_dir)[3:]
        command += [
            *("--models-dir", str(self.folder / "models"), "--voice-offline", "true"),
            *("--outputs-dir", str(self.folder / "outputs"), "--comfyui-urls", self.comfyui_url),
            *("--comfyui-steps", "1", "--retry-backoff", "0.2", "--quality-threshold", "0"),
        ]
        argv = [sys.executable, "-m", "benchmarks.chapter_pipeline", "--as-worker"]
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block
                [*argv, str(self.timings), *command],
                cwd=ROOT,
                env=worker_env(),
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"The worker exited with {self.process.returncode}; {self.log}")
            try:
                async with self.http.get(f"{self.url}/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise SystemExit(f"The worker did not answer within 60 s; see {self.log}")

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """One API call; its JSON answer (a refusal ends the benchmark)."""
        async with self.http.request(
            method, f"{self.url}/{path}", json=body, headers=HEADERS
        ) as response:
            answer = await response.json()
            if response.status >= 300:
                raise SystemExit(f"{method} {path}: {response.status} {answer}")
            return answer

    def peak_rss_kb(self) -> int:
        """VmHWM of the worker process, in kB."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0

    async def stop(self) -> None:
        """SIGTERM, and wait for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            await asyncio.to_thread(self.process.wait, 60)
        await self.http.close()


def _warm_voice_cache(data_dir: Path, text: str) -> int:
    """Put a voice file where the worker's voice cache looks for each line of the chapter."""
    import numpy as np  # noqa: PLC0415

    from hydra_core.creative.chapter import parse_chapter  # noqa: PLC0415
    from hydra_core.creative.plan import cast, plan_chapter  # noqa: PLC0415
    from hydra_core.creative.stylebook import load_style_book  # noqa: PLC0415
    from hydra_core.creative.voicelines import (  # noqa: PLC0415
        VoiceLineCache,
        VoiceProfile,
        voice_file,
    )

    book = load_style_book(data_dir / "creative" / "default" / "style.yaml")
    chapter = parse_chapter(text, cast(CHARACTERS, book))
    plan = plan_chapter(chapter, book, CHARACTERS)
    seconds = np.arange(24_000 * 3 // 2) / 24_000
    data = voice_file((0.2 * np.sin(2 * np.pi * 220 * seconds)).astype(np.float32))

    async def unused(text: str, profile: VoiceProfile) -> bytes:
        raise AssertionError("the benchmark never synthesises")

    cache = VoiceLineCache(data_dir / "creative" / "voices", unused)
    cache.folder.mkdir(parents=True, exist_ok=True)
    for voice in plan.voices:
        cache.path(voice.text, VoiceProfile(voice=voice.voice, speed=voice.speed)).write_bytes(data)
    return len(plan.voices)


async def _listen(worker: Worker, run: Run, done: asyncio.Event) -> None:
    """The chapter events, as Home Assistant would receive them."""
    url = f"ws://127.0.0.1:{worker.port}/api/v1/events"
    async with worker.http.ws_connect(url, headers=HEADERS, max_msg_size=0) as socket:
        done.clear()
        async for message in socket:
            event = json.loads(message.data)
            if event["type"] == "hello":
                worker.listening.set()
            if event["type"] != "chapter":
                continue
            data = event["data"]
            run.events.append((event["time"], data["event"], data["chapter"]["stage"]))
            if data["event"] in ("finished", "failed", "cancelled"):
                done.set()


async def run_chapter(
    folder: Path, weights: VoiceWeights, *, lines: int, warm: bool, at_once: int | None = None
) -> Run:
    """One chapter through a fresh worker (``at_once``: the queue's ``max_concurrent``, else
    its default); what it left to analyse."""
    run = Run()
    text = chapter_text(SCENES, lines)
    install_kokoro(folder / "models", weights)
    style = folder / "data" / "creative" / "default" / "style.yaml"
    style.parent.mkdir(parents=True, exist_ok=True)
    style.write_text(style_book(), encoding="utf-8")
    if warm:
        _warm_voice_cache(folder / "data", text)
    async with TimedStandIn() as comfy:
        worker = Worker(folder, comfy.url)
        try:
            await worker.start()
            for number, character in enumerate(CHARACTERS):
                made = await worker.call("POST", "characters", {"name": character.name})
                assert made["id"] == character.id, made
                color = (40 * number % 256, 90, 200 - 20 * number)
                reference = {"data": reference_png(color)}
                await worker.call("POST", f"characters/{character.id}/references", reference)
            run.start_rss_kb = worker.peak_rss_kb()
            done = asyncio.Event()
            listener = asyncio.create_task(_listen(worker, run, done))
            await asyncio.wait_for(worker.listening.wait(), 10)
            if at_once is not None:
                await worker.call("PUT", "scheduler", {"max_concurrent": at_once})
            run.submitted = time.time()
            body = {"text": text, "name": f"benchmark {lines} lines", "start": "now"}
            queued = await worker.call("POST", "chapters", body)
            try:
                await asyncio.wait_for(done.wait(), CHAPTER_TIMEOUT_S)
            except TimeoutError:
                raise SystemExit(f"The chapter did not finish in time; see {worker.log}") from None
            listener.cancel()
            run.chapter = await worker.call("GET", f"chapters/{queued['id']}")
            if run.chapter["state"] != "succeeded":
                raise SystemExit(f"The chapter {run.chapter['state']}: {run.chapter['error']}")
            for kind in ("chapter_generation", *CHILD_KINDS):
                run.tasks[kind] = (await worker.call("GET", f"tasks?kind={kind}&limit=1000"))[
                    "tasks"
                ]
            run.peak_rss_kb = worker.peak_rss_kb()
        finally:
            await worker.stop()
        run.posted, run.ran = comfy.posted, comfy.ran
    run.records = [json.loads(line) for line in worker.timings.read_text().splitlines()]
    return run


# --- figures ------------------------------------------------------------------------------------


def _ms(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"median {statistics.median(ordered) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
        f"max {ordered[-1] * 1000:.1f} ms (n={len(ordered)})"
    )


def _union(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def _by(records: list[dict[str, Any]], what: str) -> list[dict[str, Any]]:
    return [record for record in records if record["what"] == what]


def _run_s(task: dict[str, Any]) -> float:
    return float(task["finished_at"] - task["started_at"])


def _dispatch_gaps(children: list[dict[str, Any]]) -> list[float]:
    """For each child that finished while another waited, the time until the next one started."""
    gaps = []
    starts = sorted(task["started_at"] for task in children)
    for task in children:
        finished = task["finished_at"]
        waiting = any(other["created_at"] <= finished < other["started_at"] for other in children)
        if waiting:
            following = [start for start in starts if start >= finished]
            if following:
                gaps.append(following[0] - finished)
    return gaps


def _stages(run: Run) -> str:
    """The chapter's stages as its events told them: how long each lasted."""
    marks: list[tuple[float, str]] = []
    for moment, event, stage in run.events:
        if event == "started":
            marks.append((moment, "images"))
        elif event == "stage" and stage and (not marks or marks[-1][1] != stage):
            marks.append((moment, stage))
        elif event == "finished":
            marks.append((moment, "done"))
    return ", ".join(
        f"{name} {following - moment:.1f} s"
        for (moment, name), (following, _) in itertools.pairwise(marks)
    )


def _activity(run: Run) -> str:
    """When each kind of child task actually ran: first start to last finish."""
    parts = []
    for kind, label in zip(CHILD_KINDS, ("images", "voices", "package"), strict=True):
        tasks = run.tasks[kind]
        if tasks:
            first = min(task["started_at"] for task in tasks) - run.submitted
            last = max(task["finished_at"] for task in tasks) - run.submitted
            parts.append(f"{label} {first:.1f} to {last:.1f} s")
    return ", ".join(parts)


def _image_overhead(run: Run) -> dict[str, list[float]]:
    """Per image task: its run minus the time in ComfyUI and in scoring, and the parts."""
    renders = {record["address"]: record for record in _by(run.records, "render")}
    scores = {record["address"]: record for record in _by(run.records, "score")}
    parts: dict[str, list[float]] = {"overhead": [], "client": [], "rest": [], "score": []}
    for task in run.tasks["asset_generation"]:
        address = task["payload"]["address"]
        prompt = renders[address]["prompt_id"]
        in_comfyui = run.ran[prompt][1] - run.posted[prompt]
        score = scores[address]["end"] - scores[address]["start"]
        render = renders[address]["end"] - renders[address]["start"]
        parts["overhead"].append(_run_s(task) - in_comfyui - score)
        parts["client"].append(render - in_comfyui)
        parts["rest"].append(_run_s(task) - render - score)
        parts["score"].append(score)
    return parts


def report_overhead(run: Run, *, detail: bool = True) -> None:
    """The overhead figures of a chapter whose voice lines are cached."""
    chapter, records = run.chapter, run.records
    images, voices = run.tasks["asset_generation"], run.tasks["voice_line"]
    [package] = run.tasks["chapter_package"]
    children = [*images, *voices, package]
    wall = chapter["finished_at"] - run.submitted
    spoken = _by(records, "speak")
    generation = list(run.ran.values())
    generation += [(record["start"], record["end"]) for record in _by(records, "score")]
    generation += [(record["start"], record["end"]) for record in spoken]
    busy = _union(generation)
    parts = _image_overhead(run)
    goal = f"(goal < {OVERHEAD_GOAL_MS:.0f} ms)"
    if detail:
        print(
            f"chapter: {chapter['scenes']} scenes, {chapter['lines']} lines, "
            f"{chapter['images']['total']} images, {chapter['voices']['total']} voice lines "
            f"(found in the voice cache: {len(spoken)} synthesised), 1 package"
        )
    print(
        f"submission → succeeded: {wall:.1f} s, of which generating (ComfyUI executing or CLIP "
        f"scoring, the first score loading the model) {busy:.1f} s"
    )
    print(
        "chapter wall time not spent generating, per asset: "
        f"{(wall - busy) / len(children) * 1000:.1f} ms ({wall - busy:.1f} s / {len(children)} "
        f"tasks)  {goal}"
    )
    print(
        f"image task minus its time in ComfyUI (posted → executed) and scoring: "
        f"{_ms(parts['overhead'])}  {goal}"
    )
    print(f"  of which the ComfyUI client round (ws, /history, /view): {_ms(parts['client'])}")
    print(f"  of which the rest (plan, references, review asset, file, rows): {_ms(parts['rest'])}")
    print(
        f"voice line task, cached (all of it overhead): {_ms([_run_s(t) for t in voices])}  {goal}"
    )
    print(
        f"queue dispatch, a child finished → the next waiting one started: "
        f"{_ms(_dispatch_gaps(children))}"
    )
    if detail:
        print(f"  (subtracted: scoring {_ms(parts['score'])})")
        _report_coordinator(run)


def _report_coordinator(run: Run) -> None:
    """How quickly the chapter's coordinator reacts, and what its looks cost."""
    images, voices = run.tasks["asset_generation"], run.tasks["voice_line"]
    [package] = run.tasks["chapter_package"]
    [coordinator] = run.tasks["chapter_generation"]
    children = [*images, *voices, package]
    last_voice = max(task["id"] for task in voices)
    variants = [task for task in images if task["id"] > last_voice]
    first_wave = [task for task in images if task["id"] < last_voice]
    first_child = min(task["created_at"] for task in children)
    print(
        "coordinator: submission → its task started "
        f"{_gap(run.submitted, coordinator['started_at'])} → first child queued "
        f"{_gap(coordinator['started_at'], first_child)}"
    )
    if variants:
        queued = min(task["created_at"] for task in variants)
        before = max(t["finished_at"] for t in first_wave if t["finished_at"] <= queued)
        print(
            f"coordinator: last portrait done → its {len(variants)} expression variants queued "
            f"{_gap(before, queued)}"
        )
    last_child = max(task["finished_at"] for task in [*images, *voices])
    print(
        f"coordinator: last asset done → package queued {_gap(last_child, package['created_at'])};"
        f" package done → chapter succeeded "
        f"{_gap(package['finished_at'], run.chapter['finished_at'])}"
    )
    status = [record["end"] - record["start"] for record in _by(run.records, "status")]
    reports = [record["end"] - record["start"] for record in _by(run.records, "report")]
    tasks_of = [record["end"] - record["start"] for record in _by(run.records, "tasks_of")]
    looked = sum(reports) + sum(tasks_of)
    print(f"coordinator: the chapter's status(), {_ms(status)}")
    print(f"coordinator: {len(reports)} looks at its tasks; reading them {_ms(tasks_of)}")
    print(f"  then reporting {_ms(reports)}")
    print(
        f"coordinator: time spent looking, per child task: {looked / len(children) * 1000:.1f} ms "
        f"({looked:.1f} s in all)"
    )


def _gap(before: float, after: float) -> str:
    text = f"{(after - before) * 1000:.1f} ms"
    if after - before > 1.0:
        text += " (slept through the finish until its 5 s poll)"
    return text


def report_pipeline(run: Run) -> None:
    """The whole-pipeline figures of the second chapter."""
    chapter, records = run.chapter, run.records
    wall = chapter["finished_at"] - run.submitted
    spoken = [record["end"] - record["start"] for record in _by(records, "speak")]
    [package] = run.tasks["chapter_package"]
    print(
        f"chapter: {chapter['scenes']} scenes, {chapter['lines']} lines, "
        f"{chapter['images']['total']} images, {chapter['voices']['total']} voice lines, 1 package"
    )
    print(f"submission → succeeded: {wall:.1f} s")
    print(f"stages as the chapter's events tell them: {_stages(run)}")
    print(f"when each kind of task ran (from submission): {_activity(run)}")
    voices = run.tasks["voice_line"]
    last_voice = max(task["id"] for task in voices)
    variants = [task for task in run.tasks["asset_generation"] if task["id"] > last_voice]
    if variants:
        queued = min(task["created_at"] for task in variants) - run.submitted
        started = min(task["started_at"] for task in variants) - run.submitted
        print(
            f"the {len(variants)} expression variants: queued at {queued:.1f} s, the first "
            f"started at {started:.1f} s (behind the voice lines queued before them)"
        )
    print(f"voice synthesis (Kokoro int8, CPU): {_ms(spoken)}; {sum(spoken):.1f} s in all")
    print(f"image tasks: {_ms([_run_s(task) for task in run.tasks['asset_generation']])}")
    print(f"package task: {_run_s(package) * 1000:.0f} ms")


def _rss(run: Run) -> str:
    return (
        f"{run.peak_rss_kb / 1024:.0f} MiB at the end ({run.start_rss_kb / 1024:.0f} MiB before "
        "the chapter)"
    )


async def _main(lines: int, keep: Path | None) -> None:
    with tempfile.TemporaryDirectory() as temporary:
        folder = keep or Path(temporary)
        (folder / "weights").mkdir(parents=True, exist_ok=True)
        weights = assemble_weights(folder / "weights")
        started = time.monotonic()
        overhead = await run_chapter(folder / "overhead", weights, lines=10, warm=True)
        print("== 1. pipeline overhead: 30 scenes, 10 lines a scene, voice lines cached ==")
        report_overhead(overhead)
        print(f"peak worker RSS (VmHWM): {_rss(overhead)}; Kokoro never loaded")
        single = await run_chapter(folder / "single", weights, lines=10, warm=True, at_once=1)
        print("== 1b. the same chapter, the queue running 1 task at a time ==")
        report_overhead(single, detail=False)
        whole = await run_chapter(folder / "whole", weights, lines=lines, warm=False)
        print(f"== 2. whole pipeline: 30 scenes, {lines} lines a scene, Kokoro speaking ==")
        report_pipeline(whole)
        print(f"peak worker RSS (VmHWM): {_rss(whole)}")
        print(f"(benchmark took {time.monotonic() - started:.0f} s)")


def main() -> None:
    """Print the figures."""
    if len(sys.argv) > 2 and sys.argv[1] == "--as-worker":
        sys.exit(_as_worker(sys.argv[2], sys.argv[3:]))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=2, help="lines a scene of chapter 2")
    parser.add_argument("--keep", type=Path, help="keep the workers' folders (logs) here")
    args = parser.parse_args()
    asyncio.run(_main(args.lines, args.keep))


if __name__ == "__main__":
    main()
