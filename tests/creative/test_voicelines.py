"""Voice line files: normalised level, Ogg/Opus or WAV, one synthesis per line and voice."""

from __future__ import annotations

import asyncio
from pathlib import Path
import wave
import zipfile

import av
import numpy as np
import pytest

from hydra_core.creative.renpy import Character, Line, Scene, Story, write_package
from hydra_core.creative.voicelines import (
    PEAK_CEILING_DBFS,
    SAMPLE_RATE,
    TARGET_RMS_DBFS,
    VoiceLineCache,
    VoiceLineError,
    VoiceProfile,
    decoded_seconds,
)
from hydra_core.voice.tts import TtsEngine
from tests.creative.test_renpy import _png
from tests.renpy_lint import lint
from tests.voice.weights import SPEAKER, kokoro_models_dir, voice_weights

__all__ = ["kokoro_models_dir", "voice_weights"]

ARIA = VoiceProfile(voice="jf_alpha")


def _decode(path: Path) -> np.ndarray:
    """The file's samples as float32, decoded as a player would."""
    with av.open(str(path)) as container:
        frames = [
            frame.to_ndarray().astype(np.float32).reshape(-1) for frame in container.decode(audio=0)
        ]
    samples = np.concatenate(frames)
    return samples / 32768.0 if np.abs(samples).max() > 2 else samples


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*"))


def _dbfs(value: float) -> float:
    return 20 * np.log10(value)


def _tone(amplitude: float, seconds: float = 1.0, pitch: float = 220.0) -> np.ndarray:
    time = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * pitch * time)).astype(np.float32)


class Speaker:
    """A synthesiser that records each line it is asked to speak."""

    def __init__(self, audio: np.ndarray | bytes | None = None) -> None:
        self.spoken: list[tuple[str, VoiceProfile]] = []
        self.audio = audio

    async def __call__(self, text: str, profile: VoiceProfile) -> np.ndarray | bytes:
        self.spoken.append((text, profile))
        await asyncio.sleep(0.01)
        return _tone(0.3) if self.audio is None else self.audio


async def test_quiet_and_loud_lines_come_out_at_one_level(tmp_path: Path) -> None:
    quiet = VoiceLineCache(tmp_path / "a", Speaker(_tone(0.01)))
    loud_int16 = (_tone(0.99, pitch=330) * 32767).astype(np.int16)
    loud = VoiceLineCache(tmp_path / "b", Speaker(loud_int16))

    files = [await quiet.line("Hush.", ARIA), await loud.line("HEY!", ARIA)]

    for file in files:
        assert file.read_bytes()[:4] == b"OggS"
        samples = _decode(file)
        rms = float(np.sqrt(np.mean(np.square(samples))))
        assert abs(_dbfs(rms) - TARGET_RMS_DBFS) < 1.0
        assert _dbfs(float(np.abs(samples).max())) < PEAK_CEILING_DBFS + 0.5
        assert decoded_seconds(file) == pytest.approx(1.0, abs=0.03)


async def test_a_peaky_line_is_held_below_the_ceiling(tmp_path: Path) -> None:
    clicks = np.zeros(SAMPLE_RATE, np.float32)
    clicks[::2400] = 0.9  # ten clicks in a second of silence: a high peak, a low RMS
    cache = VoiceLineCache(tmp_path, Speaker(clicks), opus=False)

    samples = _decode(await cache.line("Tick.", ARIA))

    assert _dbfs(float(np.abs(samples).max())) == pytest.approx(PEAK_CEILING_DBFS, abs=0.1)


async def test_wav_when_opus_is_off(tmp_path: Path) -> None:
    cache = VoiceLineCache(tmp_path, Speaker(), opus=False)

    path = await cache.line("Plain.", ARIA)

    assert path.suffix == ".wav"
    with wave.open(str(path)) as file:
        assert (file.getnchannels(), file.getsampwidth(), file.getframerate()) == (1, 2, 24000)
        assert file.getnframes() == SAMPLE_RATE


async def test_a_line_is_synthesised_once_per_text_and_voice(tmp_path: Path) -> None:
    speaker = Speaker()
    cache = VoiceLineCache(tmp_path, speaker)
    faster = VoiceProfile(voice="jf_alpha", speed=1.2)

    first = await cache.line("Welcome home.", ARIA)
    together = await asyncio.gather(*(cache.line("Open the gate!", ARIA) for _ in range(3)))
    again = await VoiceLineCache(tmp_path, speaker).line("Welcome home.", ARIA)  # a restart
    other = await cache.line("Welcome home.", faster)

    assert speaker.spoken == [
        ("Welcome home.", ARIA),
        ("Open the gate!", ARIA),
        ("Welcome home.", faster),
    ]
    assert again == first
    assert len(set(together)) == 1
    assert other != first
    assert len({first, *together, other}) == 3
    assert _files(tmp_path) == sorted({first, *together, other})


@pytest.mark.parametrize(
    ("audio", "error"),
    [
        (np.zeros(0, np.float32), "empty"),
        (np.zeros(SAMPLE_RATE, np.float32), "silent"),
        (np.full(100, np.nan, np.float32), "not finite"),
        (np.zeros((2, 100), np.float32), "mono"),
        (b"\x01\x02\x03", "even number of bytes"),
    ],
)
async def test_bad_audio_is_refused_and_nothing_is_kept(
    tmp_path: Path, audio: np.ndarray | bytes, error: str
) -> None:
    cache = VoiceLineCache(tmp_path / "voices", Speaker(audio))

    with pytest.raises(VoiceLineError, match=error):
        await cache.line("Hello.", ARIA)

    assert not _files(tmp_path / "voices")


async def test_kokoro_speaks_a_line_that_plays_in_a_package(
    tmp_path: Path, kokoro_models_dir: Path
) -> None:
    tts = TtsEngine(kokoro_models_dir, voice=SPEAKER, offline=True, warmup=False)

    async def speak(text: str, profile: VoiceProfile) -> bytes:
        chunks = [c async for c in tts.synthesize(text, voice=profile.voice, speed=profile.speed)]
        return b"".join(chunks)

    try:
        path = await VoiceLineCache(tmp_path / "voices", speak).line("Open the gate!", ARIA)
    finally:
        await tts.close()

    assert 0.5 < decoded_seconds(path) < 5.0
    samples = _decode(path)
    assert abs(_dbfs(float(np.sqrt(np.mean(np.square(samples))))) - TARGET_RMS_DBFS) < 1.5
    story = Story(
        characters=(Character(key="aria", name="Aria"),),
        scenes=(
            Scene(
                label="gate",
                location="Gate",
                time="Day",
                beats=(Line("aria", "Open the gate!", path),),
            ),
        ),
        backgrounds={("Gate", "Day"): _png(tmp_path / "gate.png", (90, 120, 60))},
    )
    write_package(story, tmp_path / "chapter.zip")
    with zipfile.ZipFile(tmp_path / "chapter.zip") as archive:
        archive.extractall(tmp_path / "project")
    result = lint(tmp_path / "project")
    assert result.returncode == 0, result.report
