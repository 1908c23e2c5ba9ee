"""Chapters in Fountain: scenes, speakers, expressions and lines, each with its line number.

The parser is **fountain-py** (PyPI ``fountain-py``, MIT, pinned in the ``worker`` extra). Of
the Fountain parsers on PyPI it is the one that gives every element its 1-based source line
number (``FountainElement.line_number``), splits a cue's extension (``V.O.``, ``CONT'D``) from the
name, keeps parentheticals as their own elements, handles dual dialogue, forced headings and
cues (``.HEADING``, ``@Name``) and the title page, reports what it had to tolerate (an unclosed
``/*`` or ``[[``, a cue with no dialogue after it) as diagnostics with line numbers, has no
dependencies, ships type information and supports Python 3.11 to 3.15. screenplain and
fountain-parser (0.1.1) keep no line numbers, and jouvence (last release 2020) neither.

What a parse cannot be left to guess is refused: ``parse_chapter`` collects every problem
(``ChapterProblem``: line, code, message) and raises one ``ChapterError`` naming them all, so a
writer fixes a chapter in one pass.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
import re

from fountain import ElementType, FountainElement, FountainParser

from ..errors import Refusal
from .models import NEUTRAL, Action, Beat, Chapter, ChapterProblem, Line, Scene, Setting

# At most this many problems are spelled out in the error's message (all are in ``problems``).
MAX_NAMED = 10

_PREFIX = re.compile(
    r"^(?P<prefix>INT\.?\s*/\s*EXT|EXT\.?\s*/\s*INT|I\s*/\s*E|E\s*/\s*I|INT|EXT|EST)[.\s]\s*",
    re.IGNORECASE,
)
_SETTINGS: dict[str, Setting] = {"INT": "interior", "EXT": "exterior", "EST": "exterior"}
_TIME_SEPARATOR = re.compile(r"\s+[-\u2013\u2014]\s+")
# A heading's last part that says "the same time as before" rather than a time of day.
_SAME_TIME = frozenset({"continuous", "later", "moments later", "same", "same time", "cont'd"})
# Elements that carry nothing the pipeline uses: notes to the writer, structure, page layout.
_IGNORED = frozenset(
    {
        ElementType.TITLE_PAGE,
        ElementType.TRANSITION,
        ElementType.NOTE,
        ElementType.BONEYARD,
        ElementType.SECTION,
        ElementType.SYNOPSIS,
        ElementType.PAGE_BREAK,
    }
)
_SPACES = re.compile(r"\s+")


class ChapterError(Refusal, code="invalid_chapter", status=400):
    """A chapter refused, with every problem found (``problems``) and each one's line."""

    def __init__(self, problems: Iterable[ChapterProblem]) -> None:
        self.problems = tuple(sorted(problems, key=lambda problem: problem.line))
        count = len(self.problems)
        named = "; ".join(
            f"line {problem.line}: {problem.message}" for problem in self.problems[:MAX_NAMED]
        )
        more = f"; and {count - MAX_NAMED} more" if count > MAX_NAMED else ""
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"The chapter has {count} {noun}: {named}{more}")
        self.details = {
            "problems": [
                {"line": problem.line, "code": problem.code, "message": problem.message}
                for problem in self.problems
            ]
        }


def fold(name: str) -> str:
    """A name as cues, locations and expressions are compared: case and spacing ignored."""
    return _SPACES.sub(" ", name).strip().casefold()


@dataclass(slots=True)
class _SceneDraft:
    scene: Scene
    beats: list[Beat] = field(default_factory=list)


class _Reader:
    """One pass over the parsed elements, building scenes and collecting problems."""

    def __init__(self, known_characters: Mapping[str, Collection[str]]) -> None:
        self.cast: dict[str, set[str]] = {}
        for character_id, names in known_characters.items():
            for name in (character_id, *names):
                self.cast.setdefault(fold(name), set()).add(character_id)
        self.problems: list[ChapterProblem] = []
        self.scenes: list[_SceneDraft] = []
        # Without any heading, "no_scene" says it once instead of a problem per beat.
        self.has_scene = True

    def problem(self, line: int, code: str, message: str) -> None:
        self.problems.append(ChapterProblem(line=line, code=code, message=message))

    def speaker(self, cue: FountainElement) -> str | None:
        name = cue.text.removesuffix("^").strip()
        found = self.cast.get(fold(name), set())
        if len(found) == 1:
            return next(iter(found))
        if found:
            self.problem(
                cue.line_number,
                "ambiguous_character",
                f"{name} could be any of {', '.join(sorted(found))}; give each its own alias",
            )
        else:
            self.problem(cue.line_number, "unknown_character", f"{name} is not a known character")
        return None

    def add(self, line: int, what: str, *beats: Beat) -> None:
        if self.scenes:
            self.scenes[-1].beats.extend(beats)
        elif self.has_scene:
            self.problem(line, "before_scene", f"{what} before the first scene heading")

    def heading(self, element: FountainElement) -> None:
        before = self.scenes[-1].scene.time_of_day if self.scenes else None
        setting, location, time_of_day = _heading(element.text, before)
        scene = Scene(
            number=len(self.scenes) + 1,
            line=element.line_number,
            heading=element.text,
            setting=setting,
            location=location,
            time_of_day=time_of_day,
        )
        self.scenes.append(_SceneDraft(scene))

    def speech(self, cue: FountainElement, parts: list[FountainElement]) -> None:
        """A cue and its parentheticals and dialogue: one line per run of dialogue, split
        where a parenthetical changes the expression."""
        speaker = self.speaker(cue)
        if not any(part.type is ElementType.DIALOGUE and part.text.strip() for part in parts):
            self.empty(cue)
            return
        if speaker is None:
            return
        extension = cue.metadata.get("extension")
        expression, texts, first = NEUTRAL, list[str](), cue.line_number
        lines: list[Line] = []
        for part in [*parts, None]:
            if part is None or part.type is ElementType.PARENTHETICAL:
                if texts:
                    lines.append(
                        Line(
                            line=first,
                            speaker=speaker,
                            expression=expression,
                            text=" ".join(texts),
                            extension=extension if isinstance(extension, str) else None,
                        )
                    )
                if part is not None:
                    expression = fold(part.text.strip().removeprefix("(").removesuffix(")"))
                    expression, texts = expression or NEUTRAL, []
            elif text := part.text.strip():
                first = first if texts else part.line_number
                texts.append(text)
        self.add(cue.line_number, "Dialogue", *lines)

    def empty(self, cue: FountainElement) -> None:
        self.problem(cue.line_number, "empty_line", f"{cue.text.strip()} has nothing to say")


def _heading(text: str, before: str | None) -> tuple[Setting | None, str, str | None]:
    match = _PREFIX.match(text)
    setting: Setting | None = None
    rest = text
    if match is not None:
        prefix = re.sub(r"[.\s]", "", match["prefix"]).upper()
        setting = _SETTINGS.get(prefix, "interior/exterior")
        rest = text[match.end() :]
    parts = _TIME_SEPARATOR.split(rest.strip())
    time_of_day = fold(parts.pop()) if len(parts) > 1 else None
    if time_of_day in _SAME_TIME:
        time_of_day = before
    return setting, fold(" - ".join(parts)), time_of_day


def _speeches(elements: list[FountainElement]) -> Iterator[FountainElement | list[FountainElement]]:
    """The elements with each cue grouped with what it says (dual dialogue: left, then right)."""
    index = 0
    while index < len(elements):
        element = elements[index]
        index += 1
        if element.type is ElementType.DUAL_DIALOGUE:
            left, right = element.dual_dialogue_columns()
            yield left
            yield right
        elif element.type is ElementType.CHARACTER:
            group = [element]
            while index < len(elements) and elements[index].type in (
                ElementType.PARENTHETICAL,
                ElementType.DIALOGUE,
            ):
                group.append(elements[index])
                index += 1
            yield group
        else:
            yield element


def parse_chapter(text: str, known_characters: Mapping[str, Collection[str]]) -> Chapter:
    """The chapter a Fountain text tells, its speakers matched to ``known_characters``
    (character id -> the names its cues may use: name and aliases, matched case-insensitively).

    Raises ``ChapterError`` naming every problem and its line: an empty chapter, no scene
    heading, action or dialogue before the first heading, an unknown (or ambiguous) character,
    a cue with nothing to say, and what the parser could not read (an unclosed ``/*`` or ``[[``).
    """
    # fountain-py reads a line holding only "\r" as text, not as the blank line that ends a
    # speech: a chapter saved with Windows line endings would run its speeches together.
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    document = FountainParser().parse(text)
    elements = [element for element in document.elements if element.type not in _IGNORED]
    if not elements:
        raise ChapterError([ChapterProblem(line=1, code="empty_chapter", message="It is empty")])
    reader = _Reader(known_characters)
    for issue in document.issues:
        if issue.severity == "error":
            reader.problem(issue.line_number, "not_fountain", issue.message)
    reader.has_scene = any(element.type is ElementType.SCENE_HEADING for element in elements)
    if not reader.has_scene:
        reader.problem(
            elements[0].line_number,
            "no_scene",
            "There is no scene heading (such as INT. THRONE ROOM - NIGHT)",
        )
    orphans = {
        issue.line_number for issue in document.issues if issue.code == "orphan-character-cue"
    }
    for item in _speeches(elements):
        if isinstance(item, list):
            reader.speech(item[0], item[1:])
        elif item.type is ElementType.SCENE_HEADING:
            reader.heading(item)
        elif item.line_number in orphans and fold(item.text) in reader.cast:
            # A known name alone on its line: a cue whose line was left empty.
            reader.empty(item)
        else:
            reader.add(item.line_number, "Action", Action(line=item.line_number, text=item.text))
    if reader.problems:
        raise ChapterError(reader.problems)
    title = document.metadata.get("title")
    return Chapter(
        title=title.strip() if isinstance(title, str) else None,
        scenes=tuple(
            Scene(
                number=draft.scene.number,
                line=draft.scene.line,
                heading=draft.scene.heading,
                setting=draft.scene.setting,
                location=draft.scene.location,
                time_of_day=draft.scene.time_of_day,
                beats=tuple(draft.beats),
            )
            for draft in reader.scenes
        ),
    )
