"""A Ren'Py package from a neutral description of a chapter and its asset files.

The package is a zip holding a Ren'Py project's ``game/`` folder:

- ``game/images/bg <location> <time>.png`` and ``game/images/<character> <expression>.png``:
  Ren'Py declares every image in ``images/`` by its file name, so the script needs no
  ``image`` statements;
- ``game/audio/voice/<scene>_<n>.ogg`` (or ``.wav``), the n-th voiced line of a scene;
- ``game/script.rpy``: a ``define`` per character (``voice_tag`` = its tag), ``label start``
  jumping to the first scene's label, each scene jumping to the next, the last one returning.

Ren'Py image names are lower-case words separated by spaces, and the first word is the tag.
Each name part (location, time, expression) becomes one word (``throne_room``), so an image's
attributes never overlap another's (``bg room night`` beside ``bg throne room night`` would
leave Ren'Py choosing between them); a word that is one of Ren'Py's keywords (``at``, ``in``,
``behind`` ...) gets a trailing ``_``; names that come out equal get ``_2``, ``_3``.

Every asset is checked before anything is written (images decoded with Pillow, voice files
with PyAV), and the zip is written under a temporary name and renamed into place: a bad
description raises ``PackageError`` listing every problem, and leaves no package behind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
import io
import json
import keyword
import os
from pathlib import Path
import re
import secrets
import unicodedata
import zipfile

from PIL import Image

from ..errors import Refusal
from ..quality.images import ImageError, decode_image
from .voicelines import VoiceLineError, decoded_seconds

#: Ren'Py's statement keywords, which its parser never takes as an image name's word.
RENPY_KEYWORDS = frozenset(
    (
        "as",
        "at",
        "behind",
        "call",
        "expression",
        "hide",
        "if",
        "in",
        "image",
        "init",
        "jump",
        "menu",
        "onlayer",
        "python",
        "return",
        "scene",
        "show",
        "with",
        "while",
        "zorder",
        "transform",
    )
)
#: Names a character's variable must not take: the store's own objects and the "bg" tag.
RESERVED_NAMES = RENPY_KEYWORDS | frozenset(
    (
        "bg",
        "adv",
        "audio",
        "build",
        "centered",
        "config",
        "director",
        "extend",
        "gui",
        "im",
        "layeredimage",
        "music",
        "name_only",
        "narrator",
        "nvl",
        "persistent",
        "renpy",
        "sound",
        "store",
        "style",
        "ui",
        "vcentered",
        "voice",
    )
)
#: Labels Ren'Py itself calls or jumps to; a scene never takes one.
RESERVED_LABELS = frozenset(
    ("start", "main_menu", "splashscreen", "before_main_menu", "after_load", "after_warp", "quit")
)
#: Image formats Ren'Py loads, by Pillow's name, and the suffix each file gets.
IMAGE_SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "MPO": ".jpg", "WEBP": ".webp"}
#: Audio suffixes Ren'Py plays.
VOICE_SUFFIXES = frozenset((".ogg", ".opus", ".wav", ".mp3", ".flac"))
_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")
_INDENT = "    "


class PackageError(Refusal, code="invalid_payload"):
    """A description or an asset that cannot become a Ren'Py package; nothing was written."""


@dataclass(frozen=True, kw_only=True)
class Character:
    """A speaking character: ``key`` is how beats name it, ``name`` what players read."""

    key: str
    name: str
    color: str = "#ffffff"


@dataclass(frozen=True)
class Show:
    """Show a character with an expression (replacing the one it showed)."""

    character: str
    expression: str


@dataclass(frozen=True)
class Hide:
    """Take a character off the screen."""

    character: str


@dataclass(frozen=True)
class Line:
    """A character says ``text``; ``voice`` is the spoken line's audio file, if any."""

    speaker: str
    text: str
    voice: Path | None = None


@dataclass(frozen=True)
class Narration:
    """Text no character speaks."""

    text: str


#: What happens in a scene, in order.
Beat = Show | Hide | Line | Narration


@dataclass(frozen=True, kw_only=True)
class Scene:
    """One scene: its label, its background (location and time of day) and its beats in order."""

    label: str
    location: str
    time: str
    beats: tuple[Beat, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Story:
    """What a package holds: characters, scenes, and the image files they use.

    ``backgrounds`` maps (location, time) and ``sprites`` (character key, expression) to image
    files; voice files come with each ``Line``.
    """

    characters: tuple[Character, ...]
    scenes: tuple[Scene, ...]
    backgrounds: Mapping[tuple[str, str], Path] = field(default_factory=dict)
    sprites: Mapping[tuple[str, str], Path] = field(default_factory=dict)


def _words(text: str) -> list[str]:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.findall(r"[a-z0-9]+", ascii_text.lower())


def _unique(name: str, taken: set[str]) -> str:
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name}_{number}"
    taken.add(candidate)
    return candidate


def image_word(text: str, fallback: str) -> str:
    """One word of an image name: lower-case letters, digits and ``_``; never a keyword."""
    word = "_".join(_words(text)) or fallback
    return f"{word}_" if word in RENPY_KEYWORDS else word


def identifier(text: str, fallback: str, reserved: frozenset[str]) -> str:
    """A Python identifier for a character's variable or a label, clear of ``reserved``."""
    name = "_".join(_words(text)) or fallback
    if name[0].isdigit() or name in reserved or keyword.iskeyword(name):
        name = f"{fallback}_{name}"
    return name


def renpy_text(text: str) -> str:
    """``text`` with Ren'Py's interpolation (``[``), text tags (``{``) and ``%`` escaped."""
    return text.replace("[", "[[").replace("{", "{{").replace("%", "%%")


def say_string(text: str) -> str:
    """``text`` as a Ren'Py say-statement string literal, shown exactly as written."""
    escaped = renpy_text(text).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\r\n", "\n").replace("\n", "\\n") + '"'


def python_string(text: str) -> str:
    """``text`` as a Python string literal for Ren'Py to show (a character's name)."""
    return json.dumps(renpy_text(text), ensure_ascii=False)


@dataclass
class _Plan:
    """The package being assembled: names chosen, files to copy, problems found."""

    tags: dict[str, str] = field(default_factory=dict)
    backgrounds: dict[tuple[str, str], str] = field(default_factory=dict)
    sprites: dict[tuple[str, str], str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _image_suffix(path: Path, plan: _Plan, what: str) -> str | None:
    try:
        data = path.read_bytes()
        decode_image(data)
    except OSError as err:
        plan.problems.append(f"{what}: cannot read {path}: {err.strerror or err}")
        return None
    except ImageError as err:
        plan.problems.append(f"{what}: {path.name}: {err.message}")
        return None
    with Image.open(io.BytesIO(data)) as image:
        return IMAGE_SUFFIXES[image.format or ""]


def _add_image(plan: _Plan, name: str, path: Path, what: str) -> None:
    suffix = _image_suffix(path, plan, what)
    if suffix is not None:
        plan.files[f"game/images/{name}{suffix}"] = path


def _background(plan: _Plan, story: Story, scene: Scene, names: set[frozenset[str]]) -> str:
    key = (scene.location, scene.time)
    if key in plan.backgrounds:
        return plan.backgrounds[key]
    location = image_word(scene.location, "place")
    time = image_word(scene.time, "time")
    base, number = location, 1
    while frozenset((location, time)) in names:
        number += 1
        location = f"{base}_{number}"
    names.add(frozenset((location, time)))
    name = plan.backgrounds[key] = f"bg {location} {time}"
    path = story.backgrounds.get(key)
    if path is None:
        plan.problems.append(
            f"scene {scene.label!r}: no background image for {scene.location!r} at {scene.time!r}"
        )
    else:
        _add_image(plan, name, path, f"background {scene.location!r} at {scene.time!r}")
    return name


def _sprite(plan: _Plan, story: Story, show: Show, scene: Scene, taken: dict[str, set[str]]) -> str:
    key = (show.character, show.expression)
    if key in plan.sprites:
        return plan.sprites[key]
    tag = plan.tags[show.character]
    expression = _unique(image_word(show.expression, "neutral"), taken.setdefault(tag, set()))
    name = plan.sprites[key] = f"{tag} {expression}"
    path = story.sprites.get(key)
    if path is None:
        plan.problems.append(
            f"scene {scene.label!r}: no image of {show.character!r} looking {show.expression!r}"
        )
    else:
        _add_image(plan, name, path, f"{show.character!r} looking {show.expression!r}")
    return name


def _voice(plan: _Plan, path: Path, name: str, where: str) -> str | None:
    suffix = path.suffix.lower()
    if suffix not in VOICE_SUFFIXES:
        plan.problems.append(
            f"{where}: {path.name} is not a voice file Ren'Py plays "
            f"({', '.join(sorted(VOICE_SUFFIXES))})"
        )
        return None
    try:
        decoded_seconds(path)
    except VoiceLineError as err:
        plan.problems.append(f"{where}: {err.message}")
        return None
    member = f"audio/voice/{name}{suffix}"
    plan.files[f"game/{member}"] = path
    return member


def _known(plan: _Plan, character: str, where: str) -> bool:
    if character in plan.tags:
        return True
    plan.problems.append(f"{where}: unknown character {character!r}")
    return False


def _scene_lines(
    plan: _Plan,
    *,
    story: Story,
    scene: Scene,
    label: str,
    background_names: set[frozenset[str]],
    expressions: dict[str, set[str]],
) -> list[str]:
    lines = [
        f"label {label}:",
        f"{_INDENT}scene {_background(plan, story, scene, background_names)}",
    ]
    voiced = 0
    for number, beat in enumerate(scene.beats, start=1):
        where = f"scene {scene.label!r}, beat {number}"
        match beat:
            case Show(character=character) if _known(plan, character, where):
                lines.append(f"{_INDENT}show {_sprite(plan, story, beat, scene, expressions)}")
            case Hide(character=character) if _known(plan, character, where):
                lines.append(f"{_INDENT}hide {plan.tags[character]}")
            case Line(speaker=speaker) if _known(plan, speaker, where):
                if beat.voice is not None:
                    voiced += 1
                    member = _voice(plan, beat.voice, f"{label}_{voiced}", where)
                    if member is not None:
                        lines.append(f"{_INDENT}voice {say_string(member)}")
                lines.append(f"{_INDENT}{plan.tags[speaker]} {say_string(beat.text)}")
            case Narration(text=text):
                lines.append(f"{_INDENT}{say_string(text)}")
    return lines


def _define(character: Character, tag: str, plan: _Plan) -> str:
    if not _COLOR.fullmatch(character.color):
        plan.problems.append(
            f"character {character.key!r}: color {character.color!r} is not #rgb or #rrggbb"
        )
    return (
        f"define {tag} = Character({python_string(character.name)}, "
        f'color="{character.color}", voice_tag="{tag}")'
    )


def plan_script(story: Story) -> tuple[str, dict[str, Path]]:
    """The ``script.rpy`` text and the package's other files (member name -> source file).

    Raises PackageError listing every problem found (unknown characters, missing or unreadable
    images and voice files, bad colors).
    """
    plan = _Plan()
    if not story.scenes:
        plan.problems.append("a package needs at least one scene")
    variables: set[str] = set()
    defines = []
    for character in story.characters:
        if character.key in plan.tags:
            plan.problems.append(f"character {character.key!r} is defined twice")
            continue
        tag = _unique(identifier(character.key, "character", RESERVED_NAMES), variables)
        plan.tags[character.key] = tag
        defines.append(_define(character, tag, plan))
    label_names: set[str] = set()
    labels = [
        _unique(identifier(scene.label, "scene", RESERVED_LABELS), label_names)
        for scene in story.scenes
    ]
    body: list[str] = []
    background_names: set[frozenset[str]] = set()
    expressions: dict[str, set[str]] = {}
    for index, (scene, label) in enumerate(zip(story.scenes, labels, strict=True)):
        body.extend(
            _scene_lines(
                plan,
                story=story,
                scene=scene,
                label=label,
                background_names=background_names,
                expressions=expressions,
            )
        )
        following = labels[index + 1] if index + 1 < len(labels) else None
        body.extend((f"{_INDENT}jump {following}" if following else f"{_INDENT}return", ""))
    if plan.problems:
        raise PackageError("The Ren'Py package cannot be made: " + "; ".join(plan.problems))
    header = [
        f"# Written by Hydra: {len(story.scenes)} scenes, {len(story.characters)} characters.",
        "",
        *defines,
        "",
        "label start:",
        f"{_INDENT}jump {labels[0]}",
        "",
    ]
    return "\n".join(header + body), plan.files


def _write_zip(output: Path, script: str, files: Iterable[tuple[str, Path]]) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.{secrets.token_hex(4)}.tmp")
    try:
        with zipfile.ZipFile(temporary, "w") as archive:
            archive.writestr("game/script.rpy", script, compress_type=zipfile.ZIP_DEFLATED)
            for member, source in files:
                # Images and Opus are compressed already.
                archive.write(source, member, compress_type=zipfile.ZIP_STORED)
        os.replace(temporary, output)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_package(story: Story, output: Path) -> list[str]:
    """Write ``story`` as a zipped Ren'Py project to ``output``; answer the zip's member names.

    Raises PackageError (and writes nothing) when the story or an asset is not usable.
    """
    script, files = plan_script(story)
    members = sorted(files.items())
    _write_zip(Path(output), script, members)
    return ["game/script.rpy", *(member for member, _ in members)]
