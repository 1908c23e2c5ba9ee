"""The Ren'Py package: real images, real voice files, checked by Ren'Py's own lint."""

from __future__ import annotations

from pathlib import Path
import re
import zipfile

import numpy as np
from PIL import Image
import pytest

from hydra_core.creative.renpy import (
    Character,
    Hide,
    Line,
    Narration,
    PackageError,
    Scene,
    Show,
    Story,
    write_package,
)
from hydra_core.creative.voicelines import SAMPLE_RATE, voice_file
from tests.renpy_lint import dialogue, lint, unplayable_voice_files

TRICKY = 'She said "stop" [now], {b}bold{/b}, back\\slash \\n and 100% sure'


def _png(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (64, 36)) -> Path:
    Image.new("RGB", size, color).save(path)
    return path


def _voice(path: Path, pitch: float) -> Path:
    seconds = np.arange(int(SAMPLE_RATE * 0.6)) / SAMPLE_RATE
    data = voice_file(0.2 * np.sin(2 * np.pi * pitch * seconds))
    path = path.with_suffix(".ogg" if data.startswith(b"OggS") else ".wav")
    path.write_bytes(data)
    return path


def _story(assets: Path) -> Story:
    """3 scenes, 2 characters with 2 expressions each, 6 voiced lines, 2 times of day."""
    characters = (
        Character(key="Aria", name="Queen Aria", color="#c8141e"),
        Character(key="bg", name="Bea [the 2nd]", color="#1e64c8"),
    )
    backgrounds = {
        ("Throne Room", "Night"): _png(assets / "throne.png", (20, 20, 60)),
        ("At the Gate", "Day"): _png(assets / "gate.png", (200, 180, 90)),
        ("Throne-Room", "Day"): _png(assets / "throne-day.png", (120, 120, 160)),
    }
    sprites = {
        (key, expression): _png(assets / f"{key}-{expression}.png", color, (32, 64))
        for key, color in (("Aria", (200, 20, 30)), ("bg", (30, 100, 200)))
        for expression in ("happy", "furious")
    }
    voices = iter(_voice(assets / f"line{n}", 180 + 40 * n) for n in range(6))
    scenes = (
        Scene(
            label="Opening",
            location="Throne Room",
            time="Night",
            beats=(
                Narration("The hall is dark."),
                Show("Aria", "happy"),
                Line("Aria", "Welcome home.", next(voices)),
                Show("bg", "furious"),
                Line("bg", "You kept me waiting.", next(voices)),
            ),
        ),
        Scene(
            label="start",  # Ren'Py's own label: the scene gets another
            location="At the Gate",
            time="Day",
            beats=(
                Show("Aria", "furious"),
                Line("Aria", "Open the gate!", next(voices)),
                Show("bg", "happy"),
                Line("bg", "As you wish.", next(voices)),
                Hide("bg"),
            ),
        ),
        Scene(
            label="Opening",  # the same label twice
            location="Throne-Room",  # another location that reads as "throne room"
            time="Day",
            beats=(
                Show("Aria", "happy"),
                Line("Aria", "It is morning.", next(voices)),
                Line("bg", "And we are home.", next(voices)),
            ),
        ),
    )
    return Story(characters=characters, scenes=scenes, backgrounds=backgrounds, sprites=sprites)


def _unzip(package: Path, folder: Path) -> Path:
    with zipfile.ZipFile(package) as archive:
        archive.extractall(folder)
    return folder


@pytest.fixture
def assets(tmp_path: Path) -> Path:
    folder = tmp_path / "assets"
    folder.mkdir()
    return folder


def test_a_generated_package_lints_clean(tmp_path: Path, assets: Path) -> None:
    package = tmp_path / "out" / "chapter.zip"
    write_package(_story(assets), package)
    project = _unzip(package, tmp_path / "project")

    result = lint(project)

    assert result.problems == []
    assert result.returncode == 0, result.report
    assert unplayable_voice_files(project) == {}
    assert dialogue(project) == [
        "The hall is dark.",
        "Welcome home.",
        "You kept me waiting.",
        "Open the gate!",
        "As you wish.",
        "It is morning.",
        "And we are home.",
    ]


def test_the_zip_holds_every_file_the_script_names(tmp_path: Path, assets: Path) -> None:
    package = tmp_path / "chapter.zip"
    members = write_package(_story(assets), package)
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
        script = archive.read("game/script.rpy").decode()

    shown = re.findall(r"^    (?:scene|show) (.+)$", script, flags=re.MULTILINE)
    voiced = re.findall(r'^    voice "(.+)"$', script, flags=re.MULTILINE)
    assert len(set(shown)) == 3 + 4  # three backgrounds, two characters with two expressions
    assert len(voiced) == 6
    for image in shown:
        assert f"game/images/{image}.png" in names, image
    for voice in voiced:
        assert f"game/{voice}" in names, voice
    assert names == set(members)
    assert len(set(shown)) + len(voiced) + 1 == len(names)  # nothing the script does not use


def test_lint_catches_a_missing_image_and_a_missing_voice_file(
    tmp_path: Path, assets: Path
) -> None:
    package = tmp_path / "chapter.zip"
    write_package(_story(assets), package)
    project = _unzip(package, tmp_path / "project")
    script = (project / "game" / "script.rpy").read_text()
    voice = re.findall(r'voice "(.+)"', script)[2]
    (project / "game" / "images" / "aria furious.png").unlink()
    (project / "game" / voice).unlink()

    result = lint(project)

    assert result.returncode == 1
    assert len(result.problems) == 2, result.report
    assert "'aria furious' is not an image." in result.problems[0]
    assert f"voice file '{voice}' is not playable" in result.problems[1]


def test_a_corrupt_voice_file_is_found_by_decoding(tmp_path: Path, assets: Path) -> None:
    package = tmp_path / "chapter.zip"
    write_package(_story(assets), package)
    project = _unzip(package, tmp_path / "project")
    voice = re.findall(r'voice "(.+)"', (project / "game" / "script.rpy").read_text())[0]
    (project / "game" / voice).write_bytes(b"OggS" + b"\x00garbage" * 64)

    assert list(unplayable_voice_files(project)) == [voice]


def test_dialogue_with_quotes_brackets_and_backslashes_lints_clean_and_reads_as_written(
    tmp_path: Path, assets: Path
) -> None:
    story = Story(
        characters=(Character(key="Aria", name='Aria "the {Bold}" [I]'),),
        scenes=(
            Scene(
                label="one",
                location="Hall",
                time="Night",
                beats=(Line("Aria", TRICKY), Narration("[name] {w} 50%\\")),
            ),
        ),
        backgrounds={("Hall", "Night"): _png(assets / "hall.png", (1, 2, 3))},
    )
    package = tmp_path / "chapter.zip"
    write_package(story, package)
    project = _unzip(package, tmp_path / "project")

    result = lint(project)

    assert result.problems == []
    assert result.returncode == 0, result.report
    assert dialogue(project) == [TRICKY, "[name] {w} 50%\\"]


def test_bad_assets_are_refused_with_every_problem_and_nothing_is_written(
    tmp_path: Path, assets: Path
) -> None:
    corrupt = assets / "corrupt.ogg"
    corrupt.write_bytes(b"OggS" + b"\x00not audio" * 50)
    not_an_image = assets / "not-an-image.png"
    not_an_image.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    story = Story(
        characters=(Character(key="aria", name="Aria"),),
        scenes=(
            Scene(
                label="one",
                location="Hall",
                time="Night",
                beats=(
                    Show("aria", "happy"),
                    Line("aria", "Hello.", corrupt),
                    Line("nobody", "Who am I?"),
                ),
            ),
            Scene(label="two", location="Garden", time="Day"),
        ),
        backgrounds={("Hall", "Night"): not_an_image},
    )
    package = tmp_path / "chapter.zip"
    package.write_bytes(b"yesterday's package")

    with pytest.raises(PackageError) as raised:
        write_package(story, package)

    message = raised.value.message
    assert "not-an-image.png" in message
    assert "no image of 'aria' looking 'happy'" in message
    assert "corrupt.ogg is not a playable audio file" in message
    assert "unknown character 'nobody'" in message
    assert "no background image for 'Garden' at 'Day'" in message
    assert raised.value.code == "invalid_payload"
    assert package.read_bytes() == b"yesterday's package"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["assets", "chapter.zip"]
