"""Hydra's commands heard tolerantly: the templates of en.yaml, the matcher, and Whisper with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hydra_core.voice.commands import (
    SENTENCES_DIR,
    CommandMatcher,
    TemplateError,
    expand,
    load_templates,
)
from hydra_core.voice.options import VoiceOptions
from hydra_core.voice.service import VoiceService
from hydra_core.voice.stt import SttEngine
from tests.voice.command_set import COMMANDS, NEGATIVES, PARAPHRASES, render
from tests.voice.speech import SENTENCES
from tests.voice.weights import VoiceWeights, words


@pytest.fixture(scope="module")
def matcher() -> CommandMatcher:
    return CommandMatcher.from_sentences()


def test_templates_expand_as_home_assistant_reads_them() -> None:
    assert sorted(expand("(pause|stop) [the] autonomous (work|tasks)")) == [
        "pause autonomous tasks",
        "pause autonomous work",
        "pause the autonomous tasks",
        "pause the autonomous work",
        "stop autonomous tasks",
        "stop autonomous work",
        "stop the autonomous tasks",
        "stop the autonomous work",
    ]
    assert sorted(expand("what's the GPU temperature[s]")) == [
        "what's the GPU temperature",
        "what's the GPU temperatures",
    ]
    assert sorted(expand("remember [that] {fact}")) == ["remember that {fact}", "remember {fact}"]
    for broken in ("(pause|stop", "pause]", "<name> work", "{topic", "queue {list name}"):
        with pytest.raises(TemplateError):
            expand(broken)


def test_every_sentence_of_en_yaml_is_read_and_said_in_the_set(matcher: CommandMatcher) -> None:
    """A template the matcher cannot read fails here, and so does one the set does not say."""
    templates = load_templates(SENTENCES_DIR)
    assert sorted(templates) == sorted({sentence.intent for sentence in matcher.sentences})
    for intent, items in templates.items():
        for template in items:
            single = CommandMatcher({intent: [template]})
            said = [c.text for c in COMMANDS if c.intent == intent and single.exact(c.text)]
            assert said, f"the commands set says nothing that {template!r} matches"
    for command in (*COMMANDS, *PARAPHRASES):
        found = matcher.exact(command.text)
        assert found is not None, command.text
        assert found.intent == command.intent
        assert {name: words(value) for name, value in found.slots.items()} == {
            name: words(value) for name, value in command.slots
        }


@pytest.mark.parametrize(
    ("heard", "intent", "sentence", "slots"),
    [
        # The two, as Whisper tiny.en wrote them.
        (
            "Cue a such on solar battery.",
            "HydraQueueResearch",
            "cue a research on solar battery",
            {"topic": "solar battery"},
        ),
        ("Paul's autonomous work.", "HydraPauseAutonomousWork", "pause autonomous work", {}),
        ("What failed over night?", "HydraOvernightFailures", "what failed overnight", {}),
        ("What's new in my feet?", "HydraFeedDigest", "what's new in my feed", {}),
        (
            "Start the over night pipeline.",
            "HydraStartOvernightPipeline",
            "start the overnight pipeline",
            {},
        ),
    ],
)
def test_misheard_commands_become_the_sentence(
    matcher: CommandMatcher, heard: str, intent: str, sentence: str, slots: dict[str, str]
) -> None:
    found = matcher.match(heard)
    assert found is not None
    assert (found.intent, found.text, found.slots, found.exact) == (intent, sentence, slots, False)
    assert matcher.floor <= found.score < 1
    assert matcher.rewrite(heard) == sentence
    # What Home Assistant's agent then gets is an exact match of the intent.
    exact = matcher.exact(sentence)
    assert exact is not None
    assert exact.intent == intent


def test_exact_commands_are_left_as_heard(matcher: CommandMatcher) -> None:
    for text in ("Queue research on solid-state batteries.", "Remember that I like tea."):
        assert matcher.rewrite(text) == text


@pytest.mark.parametrize(
    "heard",
    [
        *(said.text for said in NEGATIVES),
        *SENTENCES,
        "november the fifth",
        "Hey, did you remember to feed the cat?",
        "stop",
        "",
        "...",
    ],
)
def test_ordinary_speech_is_left_as_heard(matcher: CommandMatcher, heard: str) -> None:
    assert matcher.match(heard) is None or matcher.match(heard).exact  # type: ignore[union-attr]
    assert matcher.rewrite(heard) == heard


def test_ordinary_speech_runs_no_hydra_intent(matcher: CommandMatcher) -> None:
    """Exact matches included: none of the negatives is one of Hydra's sentences."""
    for said in NEGATIVES:
        assert matcher.match(said.text) is None, said.text


async def test_whisper_with_the_matcher_hands_on_the_command(
    whisper_models_dir: Path, voice_weights: VoiceWeights, matcher: CommandMatcher
) -> None:
    """Kokoro says "Pause autonomous work"; tiny.en mishears it; the transcript is the command."""
    audio = render(voice_weights, "Pause autonomous work.", "kokoro:jm_kumo")
    plain = SttEngine(whisper_models_dir, offline=True)
    heard = await plain.transcribe(audio)
    await plain.close()
    assert matcher.exact(heard) is None, f"tiny.en now hears {heard!r}: pick another mishearing"
    engine = SttEngine(whisper_models_dir, offline=True, commands=matcher)
    assert await engine.transcribe(audio) == "pause autonomous work"
    await engine.close()


async def test_the_options_switch_the_matcher_and_the_prompt(
    tmp_path: Path, whisper_models_dir: Path, voice_weights: VoiceWeights
) -> None:
    audio = render(voice_weights, "Pause autonomous work.", "kokoro:jm_kumo")

    def service(name: str, **options: Any) -> VoiceService:
        (tmp_path / name).mkdir()
        return VoiceService(
            VoiceOptions(voice_port=0, voice_offline=True, stt_model="tiny.en", **options),
            host="127.0.0.1",
            data_dir=tmp_path / name,
            models_dir=whisper_models_dir,
        )

    default = service("default")
    assert default.stt.commands is not None
    assert default.stt.prompt is None
    assert words(await default.transcribe(audio, language="en")) == words("pause autonomous work")
    await default.async_stop()

    prompted = service("prompted", stt_command_prompt=True, stt_prompt_words="Solaris, heat pumps")
    assert prompted.stt.prompt is not None
    assert "Pause autonomous work." in prompted.stt.prompt
    assert prompted.stt.prompt.endswith(" Solaris, heat pumps.")
    # With the prompt, tiny.en hears it word for word.
    assert await prompted.transcribe(audio, language="en") == "Pause autonomous work."
    await prompted.async_stop()

    off = service("off", stt_commands=False)
    assert (off.stt.commands, off.stt.prompt) == (None, None)
    # Whisper alone: tiny.en mishears it, and nothing mends it.
    assert CommandMatcher.from_sentences().exact(await off.transcribe(audio, language="en")) is None
    await off.async_stop()
