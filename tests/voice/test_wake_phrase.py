"""A leading wake phrase is removed from a transcript; nothing else is."""

from __future__ import annotations

import pytest

from hydra_core.voice.wake_phrase import strip_wake_phrase


@pytest.mark.parametrize(
    ("heard", "command"),
    [
        ("Hey Jarvis, what's the GPU temperature?", "What's the GPU temperature?"),
        ("Hey, Jarvis. How many tasks are waiting?", "How many tasks are waiting?"),
        ("hey jarvis pause autonomous work", "Pause autonomous work"),
        ("Jarvis, how hot are the graphics cards?", "How hot are the graphics cards?"),
        # Whisper's near spellings of the name (heard on espeak-ng voices).
        ("Hey, Jarovis, pause autonomous work.", "Pause autonomous work."),
        ("Hey, Darvis, what's the GPU temperature?", "What's the GPU temperature?"),
    ],
)
def test_a_leading_wake_phrase_is_removed(heard: str, command: str) -> None:
    assert strip_wake_phrase(heard) == command


@pytest.mark.parametrize(
    "heard",
    [
        "Ask Jarvis to pause autonomous work.",  # the name later on
        "Hey Travis, what's the time?",  # another name
        "Hey there, how are you?",
        "Hey Jarvis",  # nothing else was said: keep what was heard
        "Harvest the tomatoes.",
    ],
)
def test_other_transcripts_are_left_alone(heard: str) -> None:
    assert strip_wake_phrase(heard) == heard


def test_another_wake_phrase() -> None:
    assert strip_wake_phrase("Okay Nabu, turn on the lights", "Okay Nabu") == "Turn on the lights"
    assert strip_wake_phrase("Hey Jarvis, turn on the lights", "Okay Nabu") == (
        "Hey Jarvis, turn on the lights"
    )
