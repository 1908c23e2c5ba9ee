"""Wake word engine: CPU cost per stream, false fires, detection rate, concurrent streams.

Run: .venv-worker/bin/python -m benchmarks.wake [--quick] [--noise-dbfs -65]

All speech is synthesized here with espeak-ng + sox (see tests/voice/speech.py). Cost is CPU
seconds (time.process_time: every thread of the process) per second of audio for one stream, fed
in 64 ms chunks (2048 bytes, what Wyoming satellites send), and compared with pyopen-wakeword's own
classes (OpenWakeWordFeatures + OpenWakeWord, 80 ms chunks, after their first chunk so that their
0.5 s autofill is not counted). Streams:

* continuous speech: read sentences back to back (about 60 s);
* a room: quiet noise at --noise-dbfs RMS with an utterance every 25 s (about 10 % speech);
* negatives: 10 minutes of read sentences in six voices and three speeds (false fires);
* positives: "Hey Jarvis" in eight voices at three speeds (detection rate).
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
import time
from typing import Any

from hydra_core.voice.wake import WakeEngine, WakeStream
from tests.voice.speech import (
    CONFUSABLE,
    NEGATIVE_VOICES,
    POSITIVE_SPEEDS,
    POSITIVE_VOICES,
    SENTENCES,
    WAKE_PHRASE,
    chunks,
    espeak_clip,
    noise,
    overlay,
    seconds,
)

_CHUNK = 2048


def continuous_speech(target_s: float) -> bytes:
    parts: list[bytes] = []
    index = 0
    while seconds(b"".join(parts)) < target_s:
        voice = NEGATIVE_VOICES[index % len(NEGATIVE_VOICES)]
        parts.append(espeak_clip(SENTENCES[index % len(SENTENCES)], voice, 160, pad_s=0.2))
        index += 1
    return b"".join(parts)


def negative_speech(target_s: float) -> bytes:
    parts: list[bytes] = []
    total = 0.0
    for speed in (140, 170, 200):
        for voice in NEGATIVE_VOICES:
            for sentence in SENTENCES:
                clip = espeak_clip(sentence, voice, speed, pad_s=0.3)
                parts.append(clip)
                total += seconds(clip)
                if total >= target_s:
                    return b"".join(parts)
    return b"".join(parts)


def room_stream(length_s: float, noise_dbfs: float) -> tuple[bytes, int]:
    """Noise with an utterance every 25 s (every other one the wake word)."""
    audio = noise(length_s, noise_dbfs, seed=7)
    wakes = 0
    speech_s = 0.0
    for number, at in enumerate(range(5, int(length_s) - 5, 25)):
        voice = POSITIVE_VOICES[number % len(POSITIVE_VOICES)]
        if number % 2:
            clip = espeak_clip(WAKE_PHRASE, voice, 150, pad_s=0)
            wakes += 1
        else:
            clip = espeak_clip(SENTENCES[number % len(SENTENCES)], voice, 160, pad_s=0)
        speech_s += seconds(clip)
        audio = overlay(audio, clip, at)
    print(f"  room: {length_s:.0f} s, {100 * speech_s / length_s:.0f} % speech, {wakes} wake words")
    return audio, wakes


class Baseline:
    """pyopen-wakeword's own classes, as wyoming-openwakeword drives them."""

    def __init__(self) -> None:
        from pyopen_wakeword import Model, OpenWakeWord, OpenWakeWordFeatures  # noqa: PLC0415

        self.features = OpenWakeWordFeatures.from_builtin()
        self.model = OpenWakeWord.from_builtin(Model.HEY_JARVIS)
        self.scores(bytes(2560))  # the autofill: 8 s of zeros through the models

    def scores(self, audio: bytes) -> list[float]:
        found: list[float] = []
        for piece in chunks(audio, 2560):
            for embedding in self.features.process_streaming(piece):
                found.extend(self.model.process_streaming(embedding))
        return found

    def reset(self) -> None:
        self.features.reset()
        self.model.reset()
        self.scores(bytes(2560))


def feed(stream: WakeStream, audio: bytes) -> list[Any]:
    found: list[Any] = []
    for piece in chunks(audio, _CHUNK):
        found.extend(stream.process(piece))
    return found


def cpu_per_audio_s(work: Any, audio: bytes) -> float:
    started = time.process_time()
    work(audio)
    return (time.process_time() - started) / seconds(audio)


def cost(label: str, audio: bytes) -> dict[str, float]:
    print(f"{label} ({seconds(audio):.0f} s of audio), CPU-s per audio-s per stream:")
    baseline = cpu_per_audio_s(Baseline().scores, audio)
    print(f"  pyopen-wakeword classes, hey_jarvis:          {baseline:.4f}")
    figures = {"baseline": baseline}
    for title, kwargs, names in (
        (
            "engine hop 80 ms, no gate, hey_jarvis",
            {"hop_ms": 80, "gate_dbfs": None},
            ["hey_jarvis"],
        ),
        ("engine hop 160 ms, no gate, hey_jarvis", {"gate_dbfs": None}, ["hey_jarvis"]),
        ("engine default (160 ms, gate), hey_jarvis", {}, ["hey_jarvis"]),
        ("engine default, all 5 models", {}, None),
        ("engine hop 320 ms, gate, hey_jarvis", {"hop_ms": 320}, ["hey_jarvis"]),
    ):
        engine = WakeEngine(**kwargs)
        stream = engine.open_stream(names)
        value = cpu_per_audio_s(lambda a, s=stream: feed(s, a), audio)
        stats = stream.stats
        share = 100 * stats.steps_inferred / max(1, stats.steps)
        ratio = baseline / value
        print(f"  {title + ':':45s} {value:.4f}  ({ratio:.1f}x less; models ran {share:.0f} %)")
        figures[title] = value
    return figures


def detection_rate(noise_dbfs: float, quick: bool) -> None:
    voices = POSITIVE_VOICES[:3] if quick else POSITIVE_VOICES
    engine = WakeEngine()
    baseline = Baseline()
    clean_hits = noisy_hits = base_hits = total = 0
    missed: list[str] = []
    for voice in voices:
        for speed in POSITIVE_SPEEDS:
            clip = espeak_clip(WAKE_PHRASE, voice, speed)
            total += 1
            hit = len(feed(engine.open_stream(["hey_jarvis"]), clip)) == 1
            clean_hits += hit
            if not hit:
                missed.append(f"{voice}@{speed}")
            noisy = overlay(noise(seconds(clip), noise_dbfs, seed=total), clip, 0)
            noisy_hits += len(feed(engine.open_stream(["hey_jarvis"]), noisy)) == 1
            baseline.reset()
            base_hits += max(baseline.scores(clip)) >= engine.threshold
    print(
        f"Detection ({total} clips of '{WAKE_PHRASE}', {len(voices)} voices x speeds "
        f"{POSITIVE_SPEEDS}): engine {clean_hits}/{total} ({100 * clean_hits / total:.0f} %), "
        f"in {noise_dbfs:g} dBFS noise {noisy_hits}/{total}, pyopen-wakeword classes "
        f"{base_hits}/{total}; missed: {', '.join(missed) or 'none'}"
    )
    fires = [
        f"{text}/{voice}"
        for text, voice in CONFUSABLE
        if feed(engine.open_stream(["hey_jarvis"]), espeak_clip(text, voice))
    ]
    print(f"Known confusable near misses that fire (model behaviour): {', '.join(fires) or 'none'}")


def concurrency(audio: bytes, cost_per_stream: float, threads: list[int]) -> None:
    engine = WakeEngine()
    print(f"Concurrent streams ({seconds(audio):.0f} s of speech each, one thread per stream):")
    for count in threads:
        streams = [engine.open_stream(["hey_jarvis"]) for _ in range(count)]
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=count) as pool:
            list(pool.map(lambda s: feed(s, audio), streams))
        wall = time.perf_counter() - started
        print(f"  {count} streams: {count * seconds(audio) / wall:.0f}x real time in all")
    print(
        f"  capacity from cost: 2 cores / {cost_per_stream:.4f} = "
        f"{2 / cost_per_stream:.0f} real-time streams of continuous speech"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short streams, fewer voices")
    parser.add_argument("--noise-dbfs", type=float, default=-65.0, help="room noise level (RMS)")
    args = parser.parse_args()
    speech_s, room_s, negative_s = (20, 120, 120) if args.quick else (60, 600, 600)

    print("Synthesizing speech with espeak-ng ...")
    speech = continuous_speech(speech_s)
    room, _ = room_stream(room_s, args.noise_dbfs)
    negatives = negative_speech(negative_s)

    engine = WakeEngine()
    started = time.process_time()
    for _ in range(20):
        engine.open_stream().close()
    open_ms = 1000 * (time.process_time() - started) / 20
    baseline = Baseline()
    started = time.process_time()
    baseline.reset()
    reset_s = time.process_time() - started
    print(
        f"Open a stream (all 5 models): {open_ms:.1f} ms CPU; "
        f"pyopen-wakeword reset (autofill): {1000 * reset_s:.0f} ms CPU"
    )

    speech_cost = cost("Continuous speech", speech)
    cost(f"Room stream (noise {args.noise_dbfs:g} dBFS)", room)

    stream = WakeEngine().open_stream()
    found = feed(stream, negatives)
    peak = max(stream.max_scores.items(), key=lambda item: item[1])
    print(
        f"False fires in {seconds(negatives) / 60:.1f} min of read speech (all 5 models): "
        f"{len(found)}; highest score {peak[1]:.3f} ({peak[0]})"
    )
    detection_rate(args.noise_dbfs, args.quick)
    concurrency(speech, speech_cost["engine default (160 ms, gate), hey_jarvis"], [1, 2, 4, 8])


if __name__ == "__main__":
    main()
