"""The wake word engine on speech synthesized at test time (espeak-ng), with the real models."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
import logging
from pathlib import Path
import random
import shutil
import subprocess
import sys

import pytest

from hydra_core.voice.wake import (
    WakeAudioError,
    WakeDetection,
    WakeEngine,
    WakeModelError,
    WakeModelInfo,
    WakeStream,
)

from .speech import (
    WAKE_PHRASE,
    Speech,
    chunks,
    noise,
    overlay,
    seconds,
    silence,
)

BUILTINS = {"alexa", "hey_jarvis", "hey_mycroft", "hey_rhasspy", "okay_nabu"}


def run(stream: WakeStream, audio: bytes, chunk: int | None = 2048) -> list[WakeDetection]:
    """Feed ``audio`` in chunks of ``chunk`` bytes (None: all at once)."""
    if chunk is None:
        return stream.process(audio)
    found: list[WakeDetection] = []
    for piece in chunks(audio, chunk):
        found.extend(stream.process(piece))
    return found


@dataclass
class Result:
    stream: WakeStream
    detections: list[WakeDetection]

    @property
    def max_scores(self) -> dict[str, float]:
        return self.stream.max_scores


def detect(engine: WakeEngine, audio: bytes, names: list[str] | None = None) -> Result:
    """A new stream of ``names`` over ``audio``, and what it detected."""
    stream = engine.open_stream(names)
    return Result(stream, run(stream, audio))


@pytest.fixture(scope="module")
def engine() -> WakeEngine:
    return WakeEngine()


@pytest.fixture(scope="module")
def room(speech: Speech) -> tuple[bytes, list[float]]:
    """60 s of quiet room noise (-70 dBFS) with speech and three wake words; their start times."""
    audio = noise(60, -70, seed=1)
    audio = overlay(audio, speech.clip("Please turn off the lights in the kitchen.", pad_s=0), 3)
    starts = [10.0, 27.5, 48.0]
    for at, voice in zip(starts, ("en-us", "en-gb", "en-gb-x-rp"), strict=True):
        audio = overlay(audio, speech.clip(WAKE_PHRASE, voice, pad_s=0), at)
    audio = overlay(audio, speech.clip("What is the weather tomorrow?", "en-gb", pad_s=0), 35)
    return audio, starts


# Models ----------------------------------------------------------------------------------------


def test_builtin_models(engine: WakeEngine) -> None:
    models = {info.name: info for info in engine.models()}
    assert set(models) == BUILTINS
    assert models["hey_jarvis"] == WakeModelInfo(
        name="hey_jarvis",
        phrase="Hey Jarvis",
        source="builtin",
        path=models["hey_jarvis"].path,
    )
    assert models["okay_nabu"].phrase == "Okay Nabu"
    assert models["alexa"].phrase == "Alexa"
    assert all(info.path.is_file() for info in models.values())


def test_unknown_model_lists_known(engine: WakeEngine) -> None:
    with pytest.raises(WakeModelError, match="hey_jarvs") as caught:
        engine.open_stream(["hey_jarvs"])
    for name in BUILTINS:
        assert name in str(caught.value)


def test_custom_models(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, positives: dict[str, bytes]
) -> None:
    builtin = next(info.path for info in WakeEngine().models() if info.name == "hey_jarvis")
    shutil.copy(builtin, tmp_path / "my_jarvis.tflite")
    (tmp_path / "garbage.tflite").write_bytes(b"this is not a model" * 100)
    (tmp_path / "notes.txt").write_text("ignored")
    engine = WakeEngine(tmp_path)
    with caplog.at_level(logging.WARNING):
        models = {info.name: info for info in engine.models()}
    assert set(models) == {*BUILTINS, "my_jarvis"}
    assert models["my_jarvis"] == WakeModelInfo(
        "my_jarvis", "My Jarvis", "custom", tmp_path / "my_jarvis.tflite"
    )
    assert "garbage.tflite" in caplog.text
    with pytest.raises(WakeModelError, match="garbage"):
        engine.open_stream(["garbage"])
    result = detect(engine, positives["en-us@150"], ["my_jarvis", "hey_jarvis"])
    assert sorted(d.name for d in result.detections) == ["hey_jarvis", "my_jarvis"]
    # Rescanned on every call: a model added later is found, a removed one is gone.
    shutil.copy(builtin, tmp_path / "second.tflite")
    (tmp_path / "my_jarvis.tflite").unlink()
    names = {info.name for info in engine.models()}
    assert "second" in names
    assert "my_jarvis" not in names
    # The stream opened before keeps working.
    assert len(run(result.stream, positives["en-gb@150"])) == 2


def test_open_stream_takes_all_or_some(engine: WakeEngine) -> None:
    assert set(engine.open_stream().names) == BUILTINS
    assert set(engine.open_stream([]).names) == BUILTINS
    assert engine.open_stream(["okay_nabu", "alexa", "alexa"]).names == ["okay_nabu", "alexa"]


# Audio -----------------------------------------------------------------------------------------


def test_odd_byte_count(engine: WakeEngine) -> None:
    stream = engine.open_stream(["hey_jarvis"])
    with pytest.raises(WakeAudioError):
        stream.process(b"\x00\x01\x02")
    assert issubclass(WakeAudioError, ValueError)
    assert stream.process(b"") == []
    assert stream.process(bytes(2560)) == []


def test_closed_stream(engine: WakeEngine) -> None:
    stream = engine.open_stream(["hey_jarvis"])
    stream.close()
    stream.close()
    with pytest.raises(WakeAudioError):
        stream.process(bytes(2560))


# Detection -------------------------------------------------------------------------------------


def test_positives_fire_once(engine: WakeEngine, positives: dict[str, bytes]) -> None:
    assert len(positives) >= 20
    for key, clip in positives.items():
        stream = detect(engine, clip, ["hey_jarvis"])
        found = stream.detections
        assert len(found) == 1, key
        assert found[0].name == "hey_jarvis"
        assert found[0].score >= engine.threshold
        assert stream.max_scores["hey_jarvis"] > 0.9, key
        # Fires after the phrase starts (1 s of silence first) and before the clip ends.
        assert 1000 < found[0].timestamp_ms <= 1000 * seconds(clip), key


def test_all_models_stream_fires_only_hey_jarvis(
    engine: WakeEngine, positives: dict[str, bytes]
) -> None:
    stream = detect(engine, positives["en-gb@150"])
    assert [d.name for d in stream.detections] == ["hey_jarvis"]


def test_negatives_stay_low(
    engine: WakeEngine, negatives: dict[str, bytes], near_misses: dict[str, bytes]
) -> None:
    for key, clip in negatives.items():
        stream = detect(engine, clip)
        assert stream.detections == [], key
        assert max(stream.max_scores.values()) < 0.2, (key, stream.max_scores)
    for key, clip in near_misses.items():
        stream = detect(engine, clip, ["hey_jarvis"])
        assert stream.detections == [], key
        assert stream.max_scores["hey_jarvis"] < engine.threshold


def test_long_speech_never_fires(engine: WakeEngine, read_speech: bytes) -> None:
    assert seconds(read_speech) > 60
    stream = detect(engine, read_speech)
    assert stream.detections == []
    assert max(stream.max_scores.values()) < 0.2


def test_same_scores_as_pyopen_wakeword(engine: WakeEngine, positives: dict[str, bytes]) -> None:
    from pyopen_wakeword import Model, OpenWakeWord, OpenWakeWordFeatures  # noqa: PLC0415

    clip = positives["en-us@120"] + positives["en-gb-scotland@180"]
    features = OpenWakeWordFeatures.from_builtin()
    model = OpenWakeWord.from_builtin(Model.HEY_JARVIS)
    expected: list[float] = []
    for piece in chunks(clip, 2560):
        for embedding in features.process_streaming(piece):
            expected.extend(model.process_streaming(embedding))
    expected = expected[75:]  # the library's first 75 scores are of its 8 s of silence
    scoring = WakeEngine(threshold=0.0, refractory_s=0.0, hop_ms=80, gate_dbfs=None)
    scores = [d.score for d in run(scoring.open_stream(["hey_jarvis"]), clip)]
    assert len(scores) == len(expected)
    assert max(abs(a - b) for a, b in zip(scores, expected, strict=True)) < 1e-4
    assert max(scores) > 0.9


def test_refractory(speech: Speech) -> None:
    phrase = speech.clip(WAKE_PHRASE, pad_s=0.2)
    assert seconds(phrase) < 2
    engine = WakeEngine(refractory_s=3.0)
    # Back to back, the two fire about 2.1 s apart: inside the 3 s window, so once.
    close_pair = silence(1) + phrase + phrase + silence(2)
    assert len(detect(engine, close_pair, ["hey_jarvis"]).detections) == 1
    far_pair = silence(1) + phrase + silence(3) + phrase + silence(2)
    found = detect(engine, far_pair, ["hey_jarvis"]).detections
    assert len(found) == 2
    assert found[1].timestamp_ms - found[0].timestamp_ms > 3000
    # A shorter window lets the close pair fire twice (and one utterance still fires once).
    engine.refractory_s = 1.0
    assert len(detect(engine, close_pair, ["hey_jarvis"]).detections) == 2


def test_trigger_level(positives: dict[str, bytes]) -> None:
    clip = positives["en-us@150"]
    engine = WakeEngine()
    once = detect(engine, clip, ["hey_jarvis"]).detections
    engine.trigger_level = 2
    twice = detect(engine, clip, ["hey_jarvis"]).detections
    assert len(once) == len(twice) == 1
    assert twice[0].timestamp_ms > once[0].timestamp_ms
    engine.trigger_level = 40
    assert detect(engine, clip, ["hey_jarvis"]).detections == []


def test_settings_change_at_run_time(positives: dict[str, bytes]) -> None:
    engine = WakeEngine()
    stream = engine.open_stream(["hey_jarvis"])
    engine.threshold = 0.9999
    assert run(stream, positives["en-us@150"]) == []
    engine.threshold = 0.5
    assert len(run(stream, positives["en-gb@150"])) == 1


def test_same_detections_whatever_the_chunking_and_hop(room: tuple[bytes, list[float]]) -> None:
    audio, starts = room
    reference = detect(WakeEngine(), audio, ["hey_jarvis"]).detections
    assert [d.name for d in reference] == ["hey_jarvis"] * len(starts)
    for start, found in zip(starts, reference, strict=True):
        assert 1000 * start < found.timestamp_ms < 1000 * start + 2500
    rng = random.Random(5)  # noqa: S311  (chunk sizes, not secrets)
    stream = WakeEngine().open_stream(["hey_jarvis"])
    found = []
    position = 0
    while position < len(audio):
        size = 2 * rng.randint(1, 6000)
        found.extend(stream.process(audio[position : position + size]))
        position += size
    assert found == reference
    assert run(WakeEngine().open_stream(["hey_jarvis"]), audio, None) == reference
    for hop_ms in (80, 240, 800):
        hopped = run(WakeEngine(hop_ms=hop_ms).open_stream(["hey_jarvis"]), audio)
        assert [(d.name, d.timestamp_ms) for d in hopped] == [
            (d.name, d.timestamp_ms) for d in reference
        ]
        for a, b in zip(hopped, reference, strict=True):
            assert a.score == pytest.approx(b.score, abs=1e-5)


def test_energy_gate_changes_no_score_that_hears_sound(room: tuple[bytes, list[float]]) -> None:
    audio, _ = room
    everything = WakeEngine(threshold=0.0, refractory_s=0.0, gate_dbfs=None)
    gated = WakeEngine(threshold=0.0, refractory_s=0.0, gate_dbfs=-60)
    all_stream = everything.open_stream(["hey_jarvis"])
    all_scores = {d.timestamp_ms: d.score for d in run(all_stream, audio)}
    gated_stream = gated.open_stream(["hey_jarvis"])
    gated_scores = {d.timestamp_ms: d.score for d in run(gated_stream, audio)}
    stats = gated_stream.stats
    assert stats.steps_gated > stats.steps / 2  # the room is mostly quiet
    assert stats.steps_replayed > 0
    assert all_stream.stats.steps_gated == 0
    # Every score the gated stream computed is the ungated one, bit for bit.
    assert set(gated_scores) < set(all_scores)
    assert all(all_scores[ms] == score for ms, score in gated_scores.items())
    # What it skipped was quiet: the ungated stream scored it near zero.
    skipped = [all_scores[ms] for ms in set(all_scores) - set(gated_scores)]
    assert max(skipped) < 0.05
    # Gate off at run time: nothing skipped from then on.
    gated.gate_dbfs = None
    steps = gated_stream.stats.steps_gated
    run(gated_stream, silence(5))
    assert gated_stream.stats.steps_gated == steps


def test_concurrent_streams_match_one_stream(room: tuple[bytes, list[float]]) -> None:
    audio, _ = room
    audio = audio[: 2 * 16000 * 30]
    engine = WakeEngine()
    alone = run(engine.open_stream(), audio)
    assert len(alone) == 2

    def one(seed: int) -> list[WakeDetection]:
        stream = engine.open_stream()
        try:
            return run(stream, audio, 2 * (512 + 97 * seed))
        finally:
            stream.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(one, range(12)))
    assert all(result == alone for result in results)


def test_fresh_streams_are_independent(engine: WakeEngine, positives: dict[str, bytes]) -> None:
    streams = [engine.open_stream(["hey_jarvis"]) for _ in range(40)]
    for stream in streams[::2]:
        assert len(stream.process(positives["en-us@150"])) == 1
    for stream in streams[1::2]:
        assert stream.process(silence(0.5)) == []
        assert stream.max_scores["hey_jarvis"] < 0.01
    for stream in streams:
        stream.close()


def test_import_is_light() -> None:
    code = (
        "import sys, hydra_core.voice.wake; "
        "assert 'pyopen_wakeword' not in sys.modules; "
        "assert 'homeassistant' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_the_phrases_of_every_model_are_known_without_loading_them(tmp_path: Path) -> None:
    (tmp_path / "hey_hydra.tflite").write_bytes(b"not a model")
    phrases = WakeEngine(tmp_path).phrases()
    assert "Hey Jarvis" in phrases
    assert "Hey Hydra" in phrases
    assert not any("Melspectrogram" in phrase or "Embedding" in phrase for phrase in phrases)
