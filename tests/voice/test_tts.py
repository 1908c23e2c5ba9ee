"""Text-to-speech with the real Kokoro-82M weights, checked by ear (Whisper tiny.en)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from hydra_core.voice.loader import ModelState
from hydra_core.voice.stt import SttEngine
from hydra_core.voice.tts import (
    TtsEngine,
    TtsError,
    first_clause,
    float_to_pcm,
    speech_pieces,
    split_sentences,
)
from tests.voice.weights import COMMAND, SPEAKER, pcm24k_to_16k, wait_until, words

JA_VOICES = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]


def samples(pcm: bytes) -> np.ndarray:
    """16-bit PCM as integers."""
    assert len(pcm) % 2 == 0
    return np.frombuffer(pcm, dtype="<i2")


async def test_says_a_command_that_whisper_understands(voice_models_dir: Path) -> None:
    tts = TtsEngine(voice_models_dir, voice=SPEAKER, offline=True)
    assert (tts.SAMPLE_RATE, tts.SAMPLE_WIDTH, tts.CHANNELS) == (24000, 2, 1)
    chunks = [chunk async for chunk in tts.synthesize(COMMAND)]
    audio = samples(b"".join(chunks))
    seconds = len(audio) / TtsEngine.SAMPLE_RATE
    assert 1.0 < seconds < 4.0
    assert np.abs(audio).max() > 3000  # speech, not silence
    assert np.sqrt(np.mean(audio.astype(np.float64) ** 2)) > 300
    stt = SttEngine(voice_models_dir, offline=True)
    assert words(await stt.transcribe(pcm24k_to_16k(b"".join(chunks)))) == words(COMMAND)
    await stt.close()
    await tts.close()


REPLY = (
    "RTX 4090 is at 142 degrees and the queue has three tasks waiting. "
    "Autonomous work resumes at eleven tonight."
)


async def test_a_short_first_clause_is_spoken_before_the_rest(voice_models_dir: Path) -> None:
    tts = TtsEngine(voice_models_dir, voice=SPEAKER, offline=True)
    await tts.load()
    events: list[str] = []
    create = tts._create

    def recording_create(kokoro: object, text: str, voice: str, speed: float) -> np.ndarray:
        events.append(f"start {text}")
        audio = create(kokoro, text, voice, speed)  # type: ignore[arg-type]
        events.append(f"done {text}")
        return audio

    tts._create = recording_create  # type: ignore[method-assign]
    chunks: list[bytes] = []
    async for chunk in tts.synthesize(REPLY):
        events.append(f"chunk {len(chunks) + 1}")
        chunks.append(chunk)
    spoken = [event.removeprefix("start ") for event in events if event.startswith("start ")]
    # A few words first, then growing pieces of the first sentence, then the second sentence.
    assert len(spoken[0].split()) <= 3
    assert [len(piece) for piece in spoken[:3]] == sorted(len(piece) for piece in spoken[:3])
    assert " ".join(spoken[:-1]) == split_sentences(REPLY)[0]
    assert spoken[-1] == split_sentences(REPLY)[1]
    # The first piece reached the caller before the rest of the sentence was ready.
    assert events.index("chunk 1") < events.index(f"done {spoken[1]}")
    # A second of speech at most, of the reply's ten or so.
    assert len(samples(chunks[0])) <= tts.SAMPLE_RATE < len(samples(b"".join(chunks))) / 8
    stt = SttEngine(voice_models_dir, offline=True)
    heard = words(await stt.transcribe(pcm24k_to_16k(b"".join(chunks))))
    expected = {"queue", "three", "tasks", "waiting", "autonomous", "work", "resumes", "tonight"}
    assert len(expected & set(heard)) >= 6, heard
    assert {"degrees", "4090"} & set(heard), heard
    await stt.close()
    # One word is one piece.
    assert len([chunk async for chunk in tts.synthesize("Done")]) == 1
    await tts.close()


@pytest.mark.parametrize(
    ("sentence", "head"),
    [
        (REPLY.split(". ", maxsplit=1)[0], "RTX"),
        ("Sure, the lights in the kitchen are now off.", "Sure,"),
        ("Okay then, the backup is done.", "Okay then,"),
        ("The fans spin and the GPU is cool.", "The fans spin"),
        ("The GPU is at fifty four degrees now.", "The GPU"),
        ("It is fifty four degrees in the office.", "It is"),
        ("The temperature is 1,234 degrees today, sadly.", "The temperature"),
        ("The backup of the database finished at 3.5 GB in total.", "The backup"),
        ("Autonomous work resumes at eleven tonight.", "Autonomous"),
    ],
)
def test_the_first_clause_ends_on_a_whole_word(sentence: str, head: str) -> None:
    cut = first_clause(sentence)
    assert cut is not None
    assert cut[0] == head
    assert f"{cut[0]} {cut[1]}" == sentence
    # Never a number split from its unit, nor a word or a number cut in two.
    last = cut[0].split()[-1]
    assert not any(char.isdigit() for char in last)
    assert last not in {"fifty", "four", "the", "of", "at"}


@pytest.mark.parametrize(
    "text", ["Done", "Hello there.", "What's the GPU temperature?", "Lights off now."]
)
def test_short_texts_and_lone_last_words_are_not_cut(text: str) -> None:
    assert first_clause(text) is None
    assert speech_pieces(text) == [(text, 0.0)]


def test_pauses_between_pieces() -> None:
    pieces = speech_pieces("Okay then, the backup is done. The fans are fine.")
    assert pieces == [
        ("Okay then,", 0.1),
        ("the backup is done.", 0.25),
        ("The fans are fine.", 0.0),
    ]
    # Each piece at most twice what was said before it, the first short.
    assert speech_pieces(REPLY) == [
        ("RTX", 0.0),
        ("4090 is", 0.0),
        ("at 142 degrees and the queue has three tasks waiting.", 0.25),
        ("Autonomous work resumes at eleven tonight.", 0.0),
    ]
    # No pause inside a phrase cut between two words.
    assert speech_pieces("The backup of the database is done.")[0] == ("The backup", 0.0)
    assert speech_pieces("Okay then, the backup is done.", said=None) == [
        ("Okay then, the backup is done.", 0.0)
    ]


async def test_two_sentences_stream_as_two_chunks(voice_models_dir: Path) -> None:
    tts = TtsEngine(voice_models_dir, voice=SPEAKER, offline=True)
    await tts.load()
    events: list[str] = []
    create = tts._create

    def recording_create(kokoro: object, text: str, voice: str, speed: float) -> np.ndarray:
        events.append(f"start {text}")
        audio = create(kokoro, text, voice, speed)  # type: ignore[arg-type]
        events.append(f"done {text}")
        return audio

    tts._create = recording_create  # type: ignore[method-assign]
    text = "The GPU is at fifty four degrees. The fans are at thirty percent."
    chunks: list[bytes] = []
    async for chunk in tts.synthesize(text, said=None):
        events.append(f"chunk {len(chunks) + 1}")
        chunks.append(chunk)
    assert len(chunks) == 2
    first, second = split_sentences(text)
    # The first sentence's audio reached the caller before the second sentence was ready
    # (the second is synthesized while the caller plays the first).
    assert events.index(f"done {first}") < events.index("chunk 1")
    assert events.index("chunk 1") < events.index(f"done {second}")
    assert events.index(f"done {second}") < events.index("chunk 2")
    for chunk in chunks:
        assert np.abs(samples(chunk)).max() > 3000
    # A pause follows the first sentence (its last 0.2 s are silent), not the last one.
    assert not samples(chunks[0])[-int(0.2 * tts.SAMPLE_RATE) :].any()
    stt = SttEngine(voice_models_dir, offline=True)
    heard = words(await stt.transcribe(pcm24k_to_16k(b"".join(chunks))))
    assert {"gpu", "degrees", "fans"} <= set(heard)
    assert {"percent", "30"} & set(heard)  # Whisper may write "30%"
    await stt.close()
    await tts.close()


async def test_voices_without_loading_and_the_default_voice(voice_models_dir: Path) -> None:
    tts = TtsEngine(voice_models_dir, offline=True)
    assert tts.voices() == JA_VOICES
    assert tts.state is ModelState.NOT_LOADED
    # No af_heart in this voices file: the first voice is the default.
    assert tts.default_voice() == "jf_alpha"
    assert tts.unavailable_reason() is None
    tts.voice = "jm_kumo"
    assert tts.default_voice() == "jm_kumo"
    await tts.close()


async def test_bad_requests(voice_models_dir: Path) -> None:
    tts = TtsEngine(voice_models_dir, offline=True)
    with pytest.raises(TtsError, match="no text"):
        _ = [chunk async for chunk in tts.synthesize("  \n ")]
    with pytest.raises(TtsError, match="jf_alpha, jf_gongitsune") as caught:
        _ = [chunk async for chunk in tts.synthesize("Hello.", voice="af_nobody")]
    assert "'af_nobody'" in str(caught.value)
    with pytest.raises(TtsError, match=r"between 0\.5 and 2\.0"):
        _ = [chunk async for chunk in tts.synthesize("Hello.", speed=3.0)]
    assert tts.state is ModelState.NOT_LOADED  # refused before loading anything
    await tts.close()


async def test_loud_voice_is_clipped_not_wrapped(voice_models_dir: Path) -> None:
    assert samples(float_to_pcm(np.array([1.5, -1.5, 0.5], np.float32))).tolist() == [
        32767,
        -32767,
        16383,
    ]
    # jm_kumo peaks above 1.0 on this phrase: the loud parts stay at full scale.
    tts = TtsEngine(voice_models_dir, voice="jm_kumo", offline=True, warmup=False)
    chunks = [chunk async for chunk in tts.synthesize(COMMAND)]
    audio = samples(b"".join(chunks))
    assert audio.min() >= -32767
    assert max(int(audio.max()), -int(audio.min())) == 32767
    await tts.close()


async def test_offline_and_missing_names_the_folder(tmp_path: Path) -> None:
    tts = TtsEngine(tmp_path, offline=True)
    reason = tts.unavailable_reason()
    assert reason is not None
    assert str(tmp_path / "kokoro") in reason
    assert "offline mode is on" in reason
    assert tts.voices() == []
    with pytest.raises(TtsError, match="offline mode is on"):
        _ = [chunk async for chunk in tts.synthesize("Hello.")]
    with pytest.raises(TtsError, match="offline mode is on"):
        await tts.load()
    assert tts.state is ModelState.ERROR
    await tts.close()


async def test_idle_unload_then_reload(kokoro_models_dir: Path) -> None:
    tts = TtsEngine(kokoro_models_dir, offline=True, idle_unload_s=0.3, warmup=False)
    assert [chunk async for chunk in tts.synthesize("Hi.")]
    assert tts.state is ModelState.LOADED
    await wait_until(lambda: tts.state is ModelState.NOT_LOADED)
    assert [chunk async for chunk in tts.synthesize("Hi.")]
    assert tts.lazy.load_count == 2
    await tts.close()


async def test_concurrent_first_requests_load_once(kokoro_models_dir: Path) -> None:
    tts = TtsEngine(kokoro_models_dir, offline=True, warmup=False)

    async def speak() -> bytes:
        return b"".join([chunk async for chunk in tts.synthesize("Hi.")])

    results = await asyncio.gather(speak(), speak(), speak())
    assert all(len(result) > 0 for result in results)
    assert tts.lazy.load_count == 1
    await tts.close()


async def test_load_warms_up(kokoro_models_dir: Path) -> None:
    spoken: list[str] = []
    tts = TtsEngine(kokoro_models_dir, offline=True)
    create = tts._create

    def recording_create(kokoro: object, text: str, voice: str, speed: float) -> np.ndarray:
        spoken.append(text)
        return create(kokoro, text, voice, speed)  # type: ignore[arg-type]

    tts._create = recording_create  # type: ignore[method-assign]
    await tts.load()
    assert tts.state is ModelState.LOADED
    assert spoken == ["Hello."]
    await tts.close()
    with pytest.raises(TtsError, match="closed"):
        _ = [chunk async for chunk in tts.synthesize("Hello.")]


async def test_abandoning_the_stream_cancels_the_rest(voice_models_dir: Path) -> None:
    tts = TtsEngine(voice_models_dir, offline=True, warmup=False)
    stream = tts.synthesize("One. Two. Three. Four.")
    first = await anext(stream)
    assert first
    await stream.aclose()
    await wait_until(lambda: tts.lazy.in_use == 0)
    await tts.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello there. How are you?", ["Hello there.", "How are you?"]),
        (
            "Dr. Smith says the GPU runs at 3.5 GHz. Fans are fine!",
            ["Dr. Smith says the GPU runs at 3.5 GHz.", "Fans are fine!"],
        ),
        ("First line\nsecond line", ["First line", "second line"]),
        ("Use e.g. the lights. Then stop", ["Use e.g. the lights.", "Then stop"]),
        ('Really?! Yes... "Done." End', ["Really?!", "Yes...", '"Done."', "End"]),
        ("It is 54. Next", ["It is 54.", "Next"]),
        ("Version 1.2.3 is out", ["Version 1.2.3 is out"]),
        ("", []),
        ("  \n\n ", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_long_sentences_split_at_commas() -> None:
    text = ", ".join(["the fans are spinning up"] * 30) + "."
    parts = split_sentences(text)
    assert len(parts) > 1
    assert all(len(part) <= 301 for part in parts)
    assert all(part.endswith((",", ".")) for part in parts)
    assert " ".join(parts) == text
    unbroken = "x" * 700
    assert [len(part) for part in split_sentences(unbroken)] == [300, 300, 100]


async def test_a_reply_that_starts_as_an_earlier_one_did_reuses_its_first_pieces(
    voice_models_dir: Path,
) -> None:
    """Kokoro is deterministic: a piece said before is played from memory, the very same audio,
    and only the new words are synthesized."""
    tts = TtsEngine(voice_models_dir, voice=SPEAKER, offline=True, warmup=False)
    await tts.load()
    synthesized: list[str] = []
    create = tts._create

    def counting_create(kokoro: object, text: str, voice: str, speed: float) -> np.ndarray:
        synthesized.append(text)
        return create(kokoro, text, voice, speed)  # type: ignore[arg-type]

    tts._create = counting_create  # type: ignore[method-assign]
    first = [chunk async for chunk in tts.synthesize("RTX 4090 is at 61 degrees.")]
    pieces = list(synthesized)
    synthesized.clear()
    again = [chunk async for chunk in tts.synthesize("RTX 4090 is at 61 degrees.")]
    assert again == first
    assert synthesized == []
    # A new temperature: the opening is reused, the new words are synthesized.
    other = [chunk async for chunk in tts.synthesize("RTX 4090 is at 75 degrees.")]
    assert other[0] == first[0]
    assert synthesized
    assert pieces[0] not in synthesized
    # Another voice is another sound: nothing is reused across voices.
    synthesized.clear()
    [chunk async for chunk in tts.synthesize("RTX 4090 is at 61 degrees.", voice="jm_kumo")]
    assert synthesized == pieces
    await tts.close()


async def test_the_piece_cache_is_bounded(voice_models_dir: Path) -> None:
    texts = ("One moment.", "Two moments.", "Three moments.", "Four moments.", "Five moments.")
    tts = TtsEngine(voice_models_dir, voice=SPEAKER, offline=True, warmup=False)
    sizes = [len(b"".join([chunk async for chunk in tts.synthesize(text)])) for text in texts]
    await tts.close()
    # Room for the last three only: the oldest go first.
    limit = max(4 * max(sizes), sum(sizes[2:]))
    tts = TtsEngine(voice_models_dir, voice=SPEAKER, offline=True, warmup=False, cache_bytes=limit)
    for text in texts:
        [chunk async for chunk in tts.synthesize(text)]
    assert sum(len(pcm) for pcm in tts._cache.values()) == tts._cache_bytes <= limit
    assert (texts[0], SPEAKER, 1.0, "en-us") not in tts._cache
    assert (texts[-1], SPEAKER, 1.0, "en-us") in tts._cache
    await tts.close()
