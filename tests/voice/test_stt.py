"""Speech-to-text with the real Whisper tiny.en weights, on speech Kokoro made."""

from __future__ import annotations

import asyncio
from pathlib import Path
import shutil

import pytest

from hydra_core.voice.loader import ModelState
from hydra_core.voice.stt import SttEngine, SttError, pcm_to_float
from tests.voice.weights import COMMAND, VoiceWeights, install_whisper, wait_until, words


async def test_transcribes_a_spoken_command(voice_models_dir: Path, command_speech: bytes) -> None:
    engine = SttEngine(voice_models_dir, offline=True)
    assert engine.unavailable_reason() is None
    assert engine.state is ModelState.NOT_LOADED
    text = await engine.transcribe(command_speech)
    assert words(text) == words(COMMAND)
    assert engine.state is ModelState.LOADED
    # "auto" picks the CPU (there is no GPU here) and int8 on it.
    assert (engine.loaded_device, engine.loaded_compute_type) == ("cpu", "int8")
    await engine.close()
    assert engine.state is ModelState.NOT_LOADED


async def test_silence_and_empty_audio_give_empty_text(voice_models_dir: Path) -> None:
    engine = SttEngine(voice_models_dir, offline=True)
    assert await engine.transcribe(b"") == ""
    assert await engine.transcribe(bytes(2 * SttEngine.SAMPLE_RATE)) == ""
    # Silence needs no model.
    assert engine.state is ModelState.NOT_LOADED
    await engine.close()


async def test_language_override_and_odd_length_audio(
    voice_models_dir: Path, command_speech: bytes
) -> None:
    engine = SttEngine(voice_models_dir, offline=True, language="en", beam_size=2)
    text = await engine.transcribe(command_speech + b"\x01", language="en")
    assert words(text) == words(COMMAND)
    await engine.close()


def test_pcm_to_float() -> None:
    samples = pcm_to_float(b"\x00\x80\xff\x7f\x00\x00\x01")
    assert samples.tolist() == [-1.0, 32767 / 32768, 0.0]


async def test_offline_and_missing_names_the_folder(tmp_path: Path) -> None:
    engine = SttEngine(tmp_path, model="small", offline=True)
    reason = engine.unavailable_reason()
    assert reason == (
        f"Whisper model 'small' is not in {tmp_path / 'whisper'} and offline mode is on"
    )
    with pytest.raises(SttError, match="offline mode is on") as caught:
        await engine.transcribe(b"\x10\x20" * 16000)
    assert str(tmp_path / "whisper") in str(caught.value)
    assert engine.state is ModelState.ERROR
    assert engine.error == reason
    assert not (tmp_path / "whisper" / "small").exists()
    await engine.close()


async def test_unknown_model_that_is_not_installed(tmp_path: Path) -> None:
    engine = SttEngine(tmp_path, model="enormous-v9")
    reason = engine.unavailable_reason()
    assert reason is not None
    assert "'enormous-v9'" in reason
    assert "tiny.en" in reason  # it lists what can be downloaded
    with pytest.raises(SttError, match="enormous-v9"):
        await engine.transcribe(b"\x10\x20" * 16000)
    await engine.close()


def test_installed_models_only_lists_complete_folders(
    tmp_path: Path, voice_weights: VoiceWeights
) -> None:
    engine = SttEngine(tmp_path)
    assert engine.installed_models() == []
    install_whisper(tmp_path, voice_weights, "tiny.en")
    install_whisper(tmp_path, voice_weights, "base")
    (tmp_path / "whisper" / "base" / "model.bin").unlink()  # an interrupted copy
    (tmp_path / "whisper" / ".small.download").mkdir()
    assert engine.installed_models() == ["tiny.en"]
    assert set(SttEngine.KNOWN_MODELS) >= {"tiny.en", "base", "large-v3", "turbo"}
    # Online, a known model that is not installed is usable: it downloads on first use.
    assert SttEngine(tmp_path, model="base").unavailable_reason() is None
    assert SttEngine(tmp_path, model="base", offline=True).unavailable_reason() is not None


async def test_idle_unload_then_reload(whisper_models_dir: Path, command_speech: bytes) -> None:
    engine = SttEngine(whisper_models_dir, offline=True, idle_unload_s=0.3)
    assert words(await engine.transcribe(command_speech)) == words(COMMAND)
    assert engine.state is ModelState.LOADED
    await wait_until(lambda: engine.state is ModelState.NOT_LOADED)
    assert words(await engine.transcribe(command_speech)) == words(COMMAND)
    assert engine.lazy.load_count == 2
    await engine.close()


async def test_concurrent_first_calls_load_once(
    whisper_models_dir: Path, command_speech: bytes
) -> None:
    engine = SttEngine(whisper_models_dir, offline=True)
    texts = await asyncio.gather(*(engine.transcribe(command_speech) for _ in range(3)))
    assert [words(text) for text in texts] == [words(COMMAND)] * 3
    assert engine.lazy.load_count == 1
    await engine.close()


async def test_switching_the_model_unloads_the_old_and_uses_the_other(
    whisper_models_dir: Path, voice_weights: VoiceWeights, command_speech: bytes
) -> None:
    install_whisper(whisper_models_dir, voice_weights, "my-tiny")
    engine = SttEngine(whisper_models_dir, offline=True)
    assert engine.installed_models() == ["my-tiny", "tiny.en"]
    await engine.transcribe(command_speech)
    old = engine.lazy
    assert old.loaded

    engine.model = "my-tiny"
    assert engine.model == "my-tiny"
    assert engine.state is ModelState.NOT_LOADED
    await wait_until(lambda: not old.loaded)
    # Only the other folder is left, so a transcript proves that it is the one used.
    shutil.rmtree(whisper_models_dir / "whisper" / "tiny.en")
    assert words(await engine.transcribe(command_speech)) == words(COMMAND)
    assert engine.lazy.name == "Whisper my-tiny"
    assert engine.state is ModelState.LOADED

    engine.model = "tiny.en"  # gone now, and offline
    with pytest.raises(SttError, match=r"'tiny\.en' is not in"):
        await engine.transcribe(command_speech)
    await engine.close()


async def test_a_corrupt_model_is_a_load_error(tmp_path: Path, voice_weights: VoiceWeights) -> None:
    folder = tmp_path / "whisper" / "tiny.en"
    folder.mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(voice_weights.whisper_tiny_en / name, folder / name)
    (folder / "model.bin").write_bytes(b"not a model")
    engine = SttEngine(tmp_path, offline=True)
    with pytest.raises(SttError, match=r"Could not load Whisper model 'tiny\.en'"):
        await engine.transcribe(b"\x10\x20" * 16000)
    assert engine.state is ModelState.ERROR
    assert engine.error
    await engine.close()


async def test_closed_engine_refuses_work(voice_models_dir: Path) -> None:
    engine = SttEngine(voice_models_dir, offline=True)
    await engine.close()
    with pytest.raises(SttError, match="closed"):
        await engine.transcribe(b"\x10\x20" * 16000)
