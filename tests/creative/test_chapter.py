"""Chapters in Fountain: what the writer wrote, found again by scene, speaker and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from hydra_core.creative.chapter import ChapterError, parse_chapter
from hydra_core.creative.models import Action, Line

CHAPTER = Path(__file__).parent / "chapters" / "the_glass_crown.fountain"
# The cast: character id -> the names a character cue may use (name and aliases).
CAST = {"mira": ("Queen Mira", "Mira"), "sera": ("Sera",), "odo": ("Captain Odo", "Odo")}


def _problems(text: str, cast: dict[str, tuple[str, ...]] = CAST) -> list[tuple[int, str]]:
    with pytest.raises(ChapterError) as caught:
        parse_chapter(text, cast)
    return [(problem.line, problem.code) for problem in caught.value.problems]


def test_the_test_chapter_is_found_scene_by_scene() -> None:
    chapter = parse_chapter(CHAPTER.read_text(), CAST)

    assert chapter.title == "The Glass Crown"
    assert [
        (scene.line, scene.setting, scene.location, scene.time_of_day) for scene in chapter.scenes
    ] == [
        (6, "interior", "throne room", "night"),
        (31, "exterior", "castle walls", "night"),
        (49, "interior", "throne room", "night"),
        (70, "exterior", "royal garden", "day"),
        (85, "interior", "dungeon", "day"),
    ]
    lines = [beat for scene in chapter.scenes for beat in scene.beats if isinstance(beat, Line)]
    assert len(lines) == 21
    assert {line.speaker for line in lines} == {"mira", "sera", "odo"}
    # The first scene beat by beat, in the order written, each with its line number.
    assert chapter.scenes[0].beats == (
        Action(
            line=8,
            text="Candles gutter along the black marble. QUEEN MIRA sits on the glass throne, "
            "the crown heavy in her lap.",
        ),
        Line(line=12, speaker="mira", expression="furious", text="Who opened the eastern gate?"),
        Action(line=14, text="SERA enters, soaked from the rain."),
        Line(line=18, speaker="sera", expression="afraid", text="It was not me, Majesty."),
        Line(line=21, speaker="mira", expression="neutral", text="Then who?"),
        Line(line=25, speaker="sera", expression="whispering", text="The captain. He had the key."),
        Line(line=29, speaker="mira", expression="furious", text="Bring him to me. Now."),
    )
    # Extensions stay with the line: a voice-over is heard, not seen.
    odo = [line for line in lines if line.speaker == "odo"]
    assert (odo[0].extension, odo[0].off_screen) == ("V.O.", True)
    assert (odo[-1].extension, odo[-1].off_screen, odo[-1].line) == ("CONT'D", False, 105)


def test_a_chapter_saved_on_windows_reads_the_same() -> None:
    text = CHAPTER.read_text()
    windows = "\ufeff" + text.replace("\n", "\r\n")
    assert parse_chapter(windows, CAST) == parse_chapter(text, CAST)


def test_cues_match_names_and_aliases_whatever_their_case() -> None:
    text = (
        "INT. HALL - DAY\n\nQUEEN MIRA\nOne.\n\n@queen mira\nTwo.\n\n@Mira (O.S.)\nThree.\n\n"
        "CAPTAIN ODO ^\nFour.\n"
    )
    chapter = parse_chapter(text, CAST)
    assert [(beat.speaker, beat.text) for beat in chapter.scenes[0].beats] == [
        ("mira", "One."),
        ("mira", "Two."),
        ("mira", "Three."),
        ("odo", "Four."),
    ]


def test_a_speech_splits_where_a_parenthetical_changes_the_expression() -> None:
    text = "INT. HALL - DAY\n\nMIRA\n(sad)\nI tried.\nI really did.\n(furious)\nAnd you laughed.\n"
    beats = parse_chapter(text, CAST).scenes[0].beats
    assert beats == (
        Line(line=5, speaker="mira", expression="sad", text="I tried. I really did."),
        Line(line=8, speaker="mira", expression="furious", text="And you laughed."),
    )


def test_dual_dialogue_keeps_both_speakers_in_order() -> None:
    text = "INT. HALL - DAY\n\nMIRA\n(cold)\nNo.\n\nSERA ^\nYes.\n"
    beats = parse_chapter(text, CAST).scenes[0].beats
    assert [(beat.speaker, beat.expression, beat.text) for beat in beats] == [
        ("mira", "cold", "No."),
        ("sera", "neutral", "Yes."),
    ]


def test_continuous_and_later_keep_the_time_of_the_scene_before() -> None:
    text = (
        "EXT. GATE - DUSK\n\nRain.\n\nINT. HALL - CONTINUOUS\n\nDrips.\n\n"
        "INT./EXT. CARRIAGE - MOMENTS LATER\n\nWheels.\n\nINT. KITCHEN\n\nSteam.\n"
    )
    scenes = parse_chapter(text, CAST).scenes
    assert [(scene.setting, scene.location, scene.time_of_day) for scene in scenes] == [
        ("exterior", "gate", "dusk"),
        ("interior", "hall", "dusk"),
        ("interior/exterior", "carriage", "dusk"),
        ("interior", "kitchen", None),
    ]


@pytest.mark.parametrize("text", ["", "   \n\n", "Title: Nothing yet\nAuthor: Me\n"])
def test_an_empty_chapter_is_refused(text: str) -> None:
    assert _problems(text) == [(1, "empty_chapter")]


def test_a_chapter_without_a_scene_heading_is_refused() -> None:
    assert _problems("Mira walks in.\n\nMIRA\nHello.\n") == [(1, "no_scene")]


def test_everything_wrong_is_named_with_its_line_not_only_the_first() -> None:
    text = (
        "Title: Broken\n"  # 1
        "\n"  # 2
        "MIRA\n"  # 3  dialogue before any scene
        "Too early.\n"  # 4
        "\n"  # 5
        "INT. HALL - DAY\n"  # 6
        "\n"  # 7
        "BARNABY\n"  # 8  unknown character
        "Who am I?\n"  # 9
        "\n"  # 10
        "SERA\n"  # 11 a cue with only a parenthetical: an empty line
        "(sad)\n"  # 12
        "\n"  # 13
        "MIRA\n"  # 14 a cue with nothing after it: an empty line
        "\n"  # 15
        "ODO\n"  # 16
        "Fine.\n"  # 17
        "\n"  # 18
        "/* never closed\n"  # 19
    )
    with pytest.raises(ChapterError) as caught:
        parse_chapter(text, CAST)
    error = caught.value
    assert [(problem.line, problem.code) for problem in error.problems] == [
        (3, "before_scene"),
        (8, "unknown_character"),
        (11, "empty_line"),
        (14, "empty_line"),
        (19, "not_fountain"),
    ]
    assert (error.code, error.status) == ("invalid_chapter", 400)
    assert "line 8: BARNABY is not a known character" in error.message
    assert error.message.startswith("The chapter has 5 problems")


def test_an_action_before_the_first_scene_is_refused_not_dropped() -> None:
    assert _problems("The sun rises.\n\nINT. HALL - DAY\n\nMIRA\nHi.\n") == [(1, "before_scene")]


def test_a_name_two_characters_share_is_refused_at_its_cue() -> None:
    cast = {**CAST, "mira-2": ("Mira",)}
    assert _problems("INT. HALL - DAY\n\nMIRA\nWhich one?\n", cast) == [(3, "ambiguous_character")]
