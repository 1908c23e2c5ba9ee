"""The wake word's second stage: Whisper tiny.en (the real weights) confirms or refuses firings."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from hydra_core.voice.options import VoiceOptions
from hydra_core.voice.service import VoiceService, VoiceSettingsError
from hydra_core.voice.wake import WakeDetection, WakeEngine
from hydra_core.voice.wake_verify import VERIFY_TAIL_MS, WhisperWakeVerifier

from .speech import Speech, chunks, silence
from .test_download import ModelServer, model_server
from .wake_sets import TEST_NEGATIVES, TEST_POSITIVES, Renderer, WakeClip
from .weights import VoiceWeights, kokoro_say, wait_until

__all__ = ["model_server"]  # the loopback model server fixture


def run(engine: WakeEngine, audio: bytes) -> tuple[list[WakeDetection], int, int]:
    """Detections of a new hey_jarvis stream over ``audio``; its candidates and refusals."""
    stream = engine.open_stream(["hey_jarvis"])
    found: list[WakeDetection] = []
    for piece in chunks(audio, 2048):
        found.extend(stream.process(piece))
    stream.close()
    return found, stream.stats.candidates, stream.stats.rejected


def espeak(speech: Speech, clip: WakeClip) -> bytes:
    return speech.clip(clip.text, clip.voice, int(clip.speed))


@pytest.fixture(scope="module")
def verifier(voice_models_dir: Path) -> WhisperWakeVerifier:
    return WhisperWakeVerifier(voice_models_dir / "whisper" / "tiny.en")


@pytest.fixture(scope="module")
def bare() -> WakeEngine:
    return WakeEngine()


@pytest.fixture(scope="module")
def verified(verifier: WhisperWakeVerifier) -> WakeEngine:
    return WakeEngine(verifier=verifier)


@pytest.mark.parametrize("clip", TEST_NEGATIVES, ids=lambda clip: clip.key)
def test_sound_alikes_the_model_takes_for_the_wake_word_are_refused(
    speech: Speech, bare: WakeEngine, verified: WakeEngine, clip: WakeClip
) -> None:
    audio = espeak(speech, clip)
    assert len(run(bare, audio)[0]) == 1  # the bare model fires on it

    found, candidates, rejected = run(verified, audio)

    assert found == []
    assert (candidates, rejected) == (1, 1)


@pytest.mark.parametrize("clip", TEST_POSITIVES, ids=lambda clip: clip.key)
def test_the_wake_word_is_confirmed_where_the_model_fired(
    speech: Speech,
    bare: WakeEngine,
    verified: WakeEngine,
    verifier: WhisperWakeVerifier,
    clip: WakeClip,
) -> None:
    audio = espeak(speech, clip)
    [plain] = run(bare, audio)[0]

    [detection] = run(verified, audio)[0]

    assert detection.timestamp_ms == plain.timestamp_ms
    assert detection.score == plain.score
    assert detection.verify_score is not None
    assert detection.verify_score >= verifier.threshold
    assert plain.verify_score is None


def test_a_kokoro_voice_saying_the_wake_word_then_a_command_is_confirmed(
    voice_weights: VoiceWeights, verified: WakeEngine
) -> None:
    audio = silence(1) + kokoro_say(voice_weights, "Hey Jarvis, what's the GPU temperature?")

    found, candidates, _ = run(verified, audio + silence(1))

    assert candidates == 1
    assert [d.name for d in found] == ["hey_jarvis"]


def test_the_detection_waits_for_the_end_of_the_phrase_only(
    speech: Speech, verified: WakeEngine
) -> None:
    """The candidate is decided once the tail after it is in, not at the end of the stream."""
    audio = espeak(speech, TEST_POSITIVES[0]) + silence(5)
    stream = verified.open_stream(["hey_jarvis"])
    returned_at: list[int] = []
    fed = 0
    for piece in chunks(audio, 640):  # 20 ms
        fed += len(piece)
        for detection in stream.process(piece):
            returned_at.append(fed // 32)
            fired_ms = detection.timestamp_ms
    assert len(returned_at) == 1
    assert fired_ms + VERIFY_TAIL_MS <= returned_at[0] <= fired_ms + VERIFY_TAIL_MS + 200


def test_turning_verification_off_announces_every_firing(
    speech: Speech, verifier: WhisperWakeVerifier
) -> None:
    engine = WakeEngine(verifier=verifier)
    audio = espeak(speech, TEST_NEGATIVES[0])
    assert run(engine, audio)[0] == []

    engine.verifier = None

    assert len(run(engine, audio)[0]) == 1


def test_silence_or_no_audio_is_never_a_wake_word(verifier: WhisperWakeVerifier) -> None:
    empty = verifier.verify("hey_jarvis", "Hey Jarvis", np.zeros(0, np.int16))
    quiet = verifier.verify("hey_jarvis", "Hey Jarvis", np.zeros(32000, np.int16))
    assert not empty.accepted
    assert not quiet.accepted


def test_a_model_without_sound_alikes_is_not_verified(verifier: WhisperWakeVerifier) -> None:
    verdict = verifier.verify("alexa", "Alexa", np.zeros(32000, np.int16))
    assert verdict.accepted
    assert verdict.cpu_s == 0.0


def test_without_its_model_the_verifier_announces_firings_and_says_why(
    tmp_path: Path, speech: Speech, caplog: pytest.LogCaptureFixture
) -> None:
    verifier = WhisperWakeVerifier(tmp_path / "whisper" / "tiny.en")
    assert "tiny.en" in (verifier.unavailable_reason() or "")
    engine = WakeEngine(verifier=verifier)

    with caplog.at_level(logging.WARNING):
        found, candidates, rejected = run(engine, espeak(speech, TEST_NEGATIVES[0]))

    assert len(found) == 1
    assert (candidates, rejected) == (1, 0)
    assert "announced unverified" in caplog.text
    assert not verifier.loaded


def test_a_model_that_cannot_load_is_not_retried_on_every_firing(
    tmp_path: Path, speech: Speech
) -> None:
    folder = tmp_path / "whisper" / "tiny.en"
    folder.mkdir(parents=True)
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        (folder / name).write_bytes(b"not a model")
    verifier = WhisperWakeVerifier(tmp_path / "whisper" / "tiny.en")
    engine = WakeEngine(verifier=verifier)

    assert len(run(engine, espeak(speech, TEST_POSITIVES[0]))[0]) == 1

    assert "failed to load" in (verifier.unavailable_reason() or "")


def test_the_sets_render_the_same_audio_from_their_cache(tmp_path: Path) -> None:
    renderer = Renderer(tmp_path)
    clip = WakeClip("Hey Jarvis", "espeak", "en-us", 150, noise_dbfs=-45)

    first = renderer.render(clip)

    assert len(list(tmp_path.glob("*.pcm"))) == 1
    assert Renderer(tmp_path).render(clip) == first
    assert renderer.render(WakeClip("Hey Jarvis", "espeak", "en-us", 150)) != first


def test_the_service_turns_verification_on_and_off_and_checks_the_settings(
    tmp_path: Path, voice_models_dir: Path
) -> None:
    service = VoiceService(
        VoiceOptions(voice_port=0, voice_offline=True, stt_model="tiny.en"),
        host="127.0.0.1",
        data_dir=tmp_path,
        models_dir=voice_models_dir,
    )
    verifier = service.wake.verifier
    assert verifier is not None
    assert verifier.unavailable_reason() is None  # tiny.en from the models folder

    service.update({"wake_verify": "off", "wake_verify_threshold": 0.8})
    assert service.wake.verifier is None
    service.update({"wake_verify": "whisper"})
    assert service.wake.verifier is verifier
    assert verifier.threshold == 0.8

    for bad in ({"wake_verify": "always"}, {"wake_verify_threshold": 0}, {"wake_verify": None}):
        with pytest.raises(VoiceSettingsError):
            service.update(bad)
    assert service.settings.wake_verify == "whisper"


@pytest.mark.usefixtures("loopback_sockets")
@pytest.mark.parametrize("stt_model", ["base.en", "tiny.en"])
async def test_the_service_fetches_the_verifier_model_when_it_is_missing(
    tmp_path: Path, model_server: ModelServer, stt_model: str
) -> None:
    """Through speech-to-text's own download when it uses tiny.en too, else on its own."""
    service = VoiceService(
        VoiceOptions(voice_port=0, stt_model=stt_model),
        host="127.0.0.1",
        data_dir=tmp_path,
        models_dir=tmp_path / "models",
    )
    service.stt.download_base_url = model_server.url
    verifier = service.wake.verifier
    assert verifier is not None
    assert verifier.unavailable_reason() is not None

    await service.async_start()
    try:
        await wait_until(lambda: verifier.unavailable_reason() is None, within=60)
    finally:
        await service.async_stop()

    assert (tmp_path / "models" / "whisper" / "tiny.en" / "model.bin").is_file()


def test_audio_sent_all_at_once_is_verified_on_the_right_window(
    speech: Speech, verified: WakeEngine
) -> None:
    """A client may send many seconds in one call: each candidate still hears its own audio."""
    stream = verified.open_stream(["hey_jarvis"])
    positive = espeak(speech, TEST_POSITIVES[0])
    negative = espeak(speech, TEST_NEGATIVES[0])
    # Each clip starts on an 80 ms step, as when it is alone: the model's scores shift with that.
    gap = silence(4.8 + (-len(positive) % 2560) / 32000)

    found = stream.process(positive + gap + negative + silence(4.8))

    assert len(found) == 1
    assert found[0].timestamp_ms < len(positive) // 32
    assert (stream.stats.candidates, stream.stats.rejected) == (2, 1)
