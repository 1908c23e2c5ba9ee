"""Where a command said in one breath after "Hey Jarvis" can be cut: the satellite's pre-roll.

Run: .venv-worker/bin/python -m benchmarks.preroll [--pause 0.3] [--no-kokoro]

The one-breath set (tests/satellite/one_breath.py) says where each wake phrase ends. For each
clip the real wake word engine (the satellite's settings) gives the detection; then:

* the lag: detection timestamp - end of the wake phrase, and when the satellite learns of it;
* no pre-roll: the command's audio from when the satellite learns of the detection;
* fixed cuts: the command's audio from the detection's timestamp minus 0-500 ms;
* the pre-roll (``hydra_core.satellite.preroll``, cut 240 ms of audio after the detection as
  the satellite does), its transcript with a leading wake phrase removed.

Each is transcribed with Whisper tiny.en (the test weights): "first word" counts transcripts
that start with the command's first word, "Jarvis" those with the name anywhere in them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import re
import tempfile

import numpy as np

from hydra_core.satellite.preroll import PreRoll
from hydra_core.voice.wake import WakeEngine
from hydra_core.voice.wake_phrase import strip_wake_phrase
from tests.satellite.one_breath import OneBreath, espeak_set, kokoro_set
from tests.voice.weights import assemble_weights

_CHUNK = 2560  # 80 ms, what the satellite reads
_SETTLE_MS = 240
_FIXED_MS = (0, 150, 250, 350, 500)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower().replace("\u2019", "'"))


def with_pause(clip: OneBreath, pause_s: float) -> OneBreath:
    at = clip.wake_end_ms * 32
    pause = bytes(round(pause_s * 16000) * 2)
    return OneBreath(clip.name, clip.command, clip.audio[:at] + pause + clip.audio[at:], at // 32)


def detect_and_cut(engine: WakeEngine, clip: OneBreath) -> tuple[int, int, int] | None:
    """(detection timestamp, when the satellite learns of it after the phrase, the cut), in ms;
    None when the wake word is not detected."""
    stream = engine.open_stream(["hey_jarvis"])
    preroll = PreRoll(2.0)
    fed = 0
    detected: int | None = None
    learned_at = 0
    try:
        for offset in range(0, len(clip.audio), _CHUNK):
            chunk = clip.audio[offset : offset + _CHUNK]
            preroll.add(fed, chunk)
            fed += len(chunk) // 32
            found = stream.process(chunk)
            if found and detected is None:
                detected = found[0].timestamp_ms
                learned_at = fed - clip.wake_end_ms
            if detected is not None and fed >= detected + _SETTLE_MS:
                cut = preroll.cut(detected)
                return detected, learned_at, fed if cut is None else cut.start_ms
    finally:
        stream.close()
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pause", type=float, default=0.0, help="pause after the wake phrase (s)")
    parser.add_argument("--no-kokoro", action="store_true", help="espeak-ng voices only")
    args = parser.parse_args()
    from faster_whisper import WhisperModel  # noqa: PLC0415 - heavy

    weights = assemble_weights(Path(tempfile.mkdtemp(prefix="hydra-preroll-")))
    clips = espeak_set() + ([] if args.no_kokoro else kokoro_set(weights))
    if args.pause:
        clips = [with_pause(clip, args.pause) for clip in clips]
    whisper = WhisperModel(str(weights.whisper_tiny_en), device="cpu", compute_type="int8")
    engine = WakeEngine()

    def hear(audio: bytes) -> str:
        samples = np.frombuffer(audio, dtype="<i2").astype(np.float32) / 32768.0
        segments, _ = whisper.transcribe(samples, beam_size=1, language="en")
        return " ".join(segment.text for segment in segments).strip()

    lags, learned = [], []
    fixed = {ms: [0, 0] for ms in _FIXED_MS}
    ours, unrolled = [0, 0], [0, 0]
    missed = 0
    for clip in clips:
        found = detect_and_cut(engine, clip)
        if found is None:
            missed += 1
            continue
        detected, learned_at, cut_ms = found
        lags.append(detected - clip.wake_end_ms)
        learned.append(learned_at)
        first = _words(clip.command)[0]
        for ms in _FIXED_MS:
            heard = _words(hear(clip.audio[max(0, detected - ms) * 32 :]))
            fixed[ms][0] += heard[:1] == [first]
            fixed[ms][1] += any("jarv" in word for word in heard)
        heard = _words(hear(clip.audio[(clip.wake_end_ms + learned_at) * 32 :]))
        unrolled[0] += heard[:1] == [first]
        unrolled[1] += any("jarv" in word for word in heard)
        raw = hear(clip.audio[cut_ms * 32 :])
        heard = _words(strip_wake_phrase(raw))
        ours[0] += heard[:1] == [first]
        ours[1] += any("jarv" in word for word in heard)
        print(f"{clip.name:24} {clip.command[:28]:28} lag {lags[-1]:4d} ms  {raw!r}")

    count = len(lags)
    print(f"\n{count} clips with a detection ({missed} missed), pause {args.pause:g} s:")
    print(
        f"  detection timestamp - end of phrase: min {min(lags)}, median "
        f"{int(np.median(lags))}, max {max(lags)} ms; satellite learns of it "
        f"{min(learned)}-{max(learned)} ms after the end"
    )
    print(
        f"  no pre-roll (from the chunk after the detection): first word "
        f"{unrolled[0]}/{count}, Jarvis {unrolled[1]}"
    )
    for ms, (kept, jarvis) in fixed.items():
        print(f"  cut at detection - {ms:3d} ms: first word {kept}/{count}, Jarvis {jarvis}")
    print(
        f"  pre-roll (wake phrase removed from the transcript): first word {ours[0]}/{count}, "
        f"Jarvis {ours[1]}"
    )


if __name__ == "__main__":
    main()
