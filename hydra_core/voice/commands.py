"""Hydra's own commands, heard tolerantly: a transcript close to one of Hydra's sentences becomes
that sentence, so that Home Assistant's default agent, which matches sentences exactly, runs
Hydra's intent even when Whisper misheard a word.

Whisper tiny.en hears "Pause autonomous work" as *"Paul's autonomous work"* and "Queue research
on solar batteries" as *"Cue a such on solar battery"*; neither matches a template. The matcher
expands the sentence templates (``sentences/en.yaml``, Home Assistant's custom sentence format:
``(a|b)`` alternatives, ``[optional]`` parts, ``{slot}`` wildcards) into word sequences and aligns
the transcript's words with each (dynamic programming over words: a word may stand for a word, for
two run together or split apart; a slot takes the user's words as they were heard). Two words
differ by the edit distance of their letters and of a sound key (a metaphone-like spelling of how
they sound: "paul's" and "pause" are PLS and PS), so a word heard as another that sounds like it
costs little. The best alignment's score is 1 minus its cost per template word; only a score at
or above the floor rewrites the transcript, and only when at least half the template's words were
heard as they are, so ordinary speech ("turn on the kitchen lights", "november the fifth") stays
as it was and reaches Home Assistant's own intents. A transcript that already matches a template
exactly is left alone.

The rewrite happens in Hydra's speech-to-text (``stt.py``): the Wyoming transcript Home Assistant
gets is the canonical sentence, so nothing on Home Assistant's side changes. No Home Assistant
import: the same ``en.yaml`` ships with ``hydra_core`` for the worker and Home Assistant alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
import itertools
from pathlib import Path
import re

SENTENCES_DIR = Path(__file__).parent / "sentences"
#: The least score that rewrites a transcript (1 is an exact match).
DEFAULT_FLOOR = 0.7
# A template expands into at most this many word sequences (a runaway template is an error).
MAX_EXPANSIONS = 5000
# Aligning two template words with one heard word, or the other way round, costs this on top of
# the words' distance, so a one-to-one alignment wins a tie.
MERGE_PENALTY = 0.1
# Missing a template word costs its weight times this; hearing a word the template lacks, the
# heard word's weight times EXTRA_COST.
GAP_COST = 1.0
EXTRA_COST = 1.5
#: A word that carries meaning must be heard at most this far from itself ("such" for
#: "research" is 0.56, "oven" for "GPU" 1): a command with a wrong word is not that command.
MAX_WORD_DISTANCE = 0.65
# Words that carry little meaning: Whisper may drop them or hear others, at their small cost.
# fmt: off
FUNCTION_WORDS = frozenset((
    "a", "an", "the", "my", "is", "are", "in", "on", "of", "to", "that", "for", "and", "i", "it",
    "at", "me", "we", "you",
))
# fmt: on

_SLOT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TemplateError(ValueError):
    """A sentence template uses syntax the matcher does not read."""


# Templates ------------------------------------------------------------------------------------


def expand(template: str) -> list[str]:
    """Every sentence a template stands for, slots kept as ``{name}``:
    ``"(pause|stop) [the] work"`` → pause the work, pause work, stop the work, stop work."""
    expansions, end = _sequence(template, 0, closing="")
    if end != len(template):
        raise TemplateError(f"Unbalanced {template[end]!r} in template {template!r}")
    return [" ".join(text.split()) for text in dict.fromkeys(expansions)]


def _sequence(text: str, pos: int, *, closing: str) -> tuple[list[str], int]:
    """Expand from ``pos`` up to the end, a ``|`` or the closing bracket: (texts, position)."""
    results = [""]
    while pos < len(text) and text[pos] not in "|)]":
        char = text[pos]
        if char in "([":
            options, pos = _group(text, pos)
            results = [head + option for head in results for option in options]
        elif char == "{":
            end = text.find("}", pos)
            if end < 0 or not _SLOT.fullmatch(text[pos : end + 1]):
                raise TemplateError(f"Bad slot at {pos} in template {text!r}")
            results = [head + text[pos : end + 1] for head in results]
            pos = end + 1
        elif char in "<>}":
            raise TemplateError(f"{char!r} (rules, lists) is not supported in template {text!r}")
        else:
            results = [head + char for head in results]
            pos += 1
        if len(results) > MAX_EXPANSIONS:
            raise TemplateError(f"Template {text!r} expands into too many sentences")
    if closing and (pos >= len(text) or text[pos] not in f"|{closing}"):
        raise TemplateError(f"Missing {closing!r} in template {text!r}")
    return results, pos


def _group(text: str, pos: int) -> tuple[list[str], int]:
    """``(a|b)`` or ``[a|b]`` at ``pos``: its alternatives (plus nothing for ``[]``)."""
    closing = ")" if text[pos] == "(" else "]"
    options: list[str] = [] if closing == ")" else [""]
    pos += 1
    while True:
        alternatives, pos = _sequence(text, pos, closing=closing)
        options.extend(alternatives)
        if text[pos] == closing:
            return options, pos + 1
        pos += 1  # past "|"


@dataclass(frozen=True, slots=True)
class Sentence:
    """One expanded template: the intent it runs and its words (a slot is ``{name}``)."""

    intent: str
    text: str
    words: tuple[str, ...] = field(compare=False)
    keys: tuple[str, ...] = field(compare=False)  # normalized words, "" for a slot

    @classmethod
    def of(cls, intent: str, text: str) -> Sentence:
        """The sentence ``text`` (an expansion) of ``intent``."""
        words = tuple(_template_words(text))
        keys = tuple("" if _SLOT.fullmatch(word) else _plain(word) for word in words)
        return cls(intent, text, words, keys)

    @property
    def literals(self) -> int:
        """How many of its words are not slots."""
        return sum(1 for key in self.keys if key)

    @property
    def weight(self) -> float:
        """What its words weigh together (see :func:`weight`)."""
        return sum(weight(key) for key in self.keys if key)


def _template_words(text: str) -> list[str]:
    # A slot is a word of its own; a hyphen parts words, as in transcripts ("q-research").
    return [
        part
        for token in re.findall(r"\{[^}]+\}|[^\s{}]+", text)
        for part in (token.split("-") if not _SLOT.fullmatch(token) else [token])
        if part
    ]


def load_templates(directory: Path = SENTENCES_DIR, language: str = "en") -> dict[str, list[str]]:
    """Each intent's sentence templates from ``<directory>/<language>.yaml``."""
    import yaml  # noqa: PLC0415  (Home Assistant imports SENTENCES_DIR from here, not PyYAML)

    data = yaml.safe_load((directory / f"{language}.yaml").read_text(encoding="utf-8"))
    templates: dict[str, list[str]] = {}
    for intent, config in (data.get("intents") or {}).items():
        for block in config.get("data") or []:
            templates.setdefault(intent, []).extend(block["sentences"])
    return templates


# Words and how they sound ------------------------------------------------------------------------


def words_of(text: str) -> list[str]:
    """Lower-case words of a transcript, punctuation and apostrophes dropped, hyphens split."""
    return [plain for plain, _ in _heard_words(text)]


def _heard_words(text: str) -> list[tuple[str, str]]:
    """(normalized, as written without the punctuation around it) for each word of a text."""
    heard = []
    for token in text.replace("\u2019", "'").split():
        for part in token.split("-"):
            if plain := _plain(part):
                heard.append((plain, part.strip('.,!?;:"()[]')))
    return heard


def _plain(word: str) -> str:
    return re.sub(r"[^a-z0-9]", "", word.lower())


# Letter groups and how they sound, tried in order at each position.
_SOUNDS = (
    ("tch", "X"),
    ("sch", "SK"),
    ("ph", "F"),
    ("sh", "X"),
    ("ch", "X"),
    ("th", "0"),
    ("ck", "K"),
    ("qu", "K"),
    ("wh", "W"),
    ("gh", ""),
    ("dg", "J"),
    ("kn", "N"),
    ("wr", "R"),
    ("ce", "S"),
    ("ci", "S"),
    ("cy", "S"),
    ("ge", "J"),
    ("gi", "J"),
    ("x", "KS"),
    ("c", "K"),
    ("q", "K"),
    ("z", "S"),
    ("v", "F"),
)
_VOWELS = frozenset("aeiouyhw")


@cache
def sound_key(word: str) -> str:
    """How a word sounds, roughly (metaphone-like): consonant sounds, a leading vowel as A."""
    key: list[str] = []
    pos = 0
    while pos < len(word):
        for letters, sound in _SOUNDS:
            if word.startswith(letters, pos):
                # "ce"/"ge" keep their vowel for the next step to drop.
                pos += 1 if letters[0] in "cg" and len(letters) == 2 else len(letters)
                key.append(sound)
                break
        else:
            char = word[pos]
            pos += 1
            if char in _VOWELS:
                if not key:
                    key.append("A")
                continue
            key.append(char.upper())
    collapsed = "".join(key)
    return re.sub(r"(.)\1+", r"\1", collapsed)


def _levenshtein(left: str, right: str) -> int:
    previous = list(range(len(right) + 1))
    for i, a in enumerate(left, 1):
        current = [i]
        for j, b in enumerate(right, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        previous = current
    return previous[-1]


@cache
def weight(word: str) -> float:
    """How much a word says: the length of its sound key, at least 1 ("the" 1, "temperature" 6),
    so mishearing "the" costs less than mishearing "temperature"."""
    return float(max(1, len(sound_key(word))))


@cache
def word_distance(heard: str, said: str) -> float:
    """0 for the same word, up to 1 for words alike neither in letters nor in sound."""
    if heard == said:
        return 0.0
    letters = _levenshtein(heard, said) / max(len(heard), len(said))
    heard_key, said_key = sound_key(heard), sound_key(said)
    sound = _levenshtein(heard_key, said_key) / max(len(heard_key), len(said_key), 1)
    return min(1.0, (letters + sound) / 2)


# Matching ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandMatch:
    """A transcript taken for one of Hydra's sentences."""

    intent: str
    #: The sentence with each slot filled with the words heard there: what to pass on.
    text: str
    #: 1 for an exact match, lower the more words differ.
    score: float
    slots: dict[str, str]
    exact: bool


@dataclass(slots=True)
class _Alignment:
    cost: float
    exact_words: int
    worst: float  # the farthest a meaningful template word was heard from itself (1: missed)
    slots: dict[str, tuple[int, int]]  # the heard words each slot took: [start, end)


class CommandMatcher:
    """Maps a transcript to the nearest of Hydra's sentences, if it is near enough."""

    def __init__(self, templates: dict[str, list[str]], *, floor: float = DEFAULT_FLOOR) -> None:
        self.floor = floor
        self.sentences: list[Sentence] = [
            Sentence.of(intent, text)
            for intent, items in templates.items()
            for template in items
            for text in expand(template)
        ]
        # "remember that {fact}" before "remember {fact}": the slot gets no template word.
        self._most_words_first = sorted(self.sentences, key=lambda item: -item.literals)

    @classmethod
    def from_sentences(
        cls, language: str = "en", *, floor: float = DEFAULT_FLOOR
    ) -> CommandMatcher:
        """The matcher for Hydra's own sentences in ``language``."""
        return cls(load_templates(SENTENCES_DIR, language), floor=floor)

    def exact(self, transcript: str) -> CommandMatch | None:
        """The sentence the transcript is, word for word (what Home Assistant's agent hits)."""
        heard = _heard_words(transcript)
        for sentence in self._most_words_first:
            slots = _exact_slots(sentence.keys, sentence.words, heard)
            if slots is not None:
                return CommandMatch(sentence.intent, transcript, 1.0, slots, exact=True)
        return None

    def match(self, transcript: str) -> CommandMatch | None:
        """The nearest sentence at or above the floor (an exact one first), or None."""
        if (found := self.exact(transcript)) is not None:
            return found
        pairs = _heard_words(transcript)
        heard = [plain for plain, _ in pairs]
        if not heard:
            return None
        best: tuple[float, Sentence, _Alignment] | None = None
        present = set(heard)
        pieces = [*heard, *(a + b for a, b in itertools.pairwise(heard))]
        for sentence in self.sentences:
            literals = sentence.literals
            # Cheap checks first: half its words heard as they are, each meaningful one near
            # some heard word (or two run together), else no alignment can pass.
            if 2 * sum(key in present for key in sentence.keys if key) < literals:
                continue
            if not _each_word_near(sentence.keys, pieces):
                continue
            alignment = _align(sentence, heard)
            score = 1 - alignment.cost / sentence.weight
            if 2 * alignment.exact_words < literals or alignment.worst > MAX_WORD_DISTANCE:
                continue
            if best is None or score > best[0]:
                best = (score, sentence, alignment)
        if best is None or best[0] < self.floor:
            return None
        score, sentence, alignment = best
        slots = {
            name: " ".join(pairs[index][1] for index in range(*span))
            for name, span in alignment.slots.items()
        }
        text = " ".join(
            slots[word[1:-1]] if not key else word
            for word, key in zip(sentence.words, sentence.keys, strict=True)
        )
        return CommandMatch(sentence.intent, text, round(score, 3), slots, exact=False)

    def rewrite(self, transcript: str) -> str:
        """The transcript, or the sentence it was taken for (never an exact match changed)."""
        found = self.match(transcript)
        return transcript if found is None or found.exact else found.text

    def prompt(self, names: Sequence[str] = ()) -> str:
        """A Whisper prompt of Hydra's commands (each intent's first phrasing, slots left out)
        and ``names`` (words the user wants heard: entities, rooms, topics)."""
        phrases: dict[str, str] = {}
        for sentence in self.sentences:
            if sentence.intent not in phrases:
                phrases[sentence.intent] = " ".join(
                    word for word, key in zip(sentence.words, sentence.keys, strict=True) if key
                )
        text = ". ".join(phrase[:1].upper() + phrase[1:] for phrase in phrases.values()) + "."
        return f"{text} {', '.join(names)}." if names else text


def _exact_slots(
    keys: Sequence[str], words: Sequence[str], heard: Sequence[tuple[str, str]]
) -> dict[str, str] | None:
    """The slots' words (as written) if ``heard`` is the sentence word for word (a slot takes
    one word or more)."""

    def walk(i: int, j: int) -> dict[str, str] | None:
        if i == len(keys):
            return {} if j == len(heard) else None
        if keys[i]:
            if j < len(heard) and heard[j][0] == keys[i]:
                return walk(i + 1, j + 1)
            return None
        for end in range(j + 1, len(heard) + 1):
            rest = walk(i + 1, end)
            if rest is not None:
                return {words[i][1:-1]: " ".join(word for _, word in heard[j:end]), **rest}
        return None

    return walk(0, 0)


def _each_word_near(keys: Sequence[str], pieces: Sequence[str]) -> bool:
    for index, key in enumerate(keys):
        if not key or key in FUNCTION_WORDS:
            continue
        said = [key]
        if index + 1 < len(keys) and keys[index + 1]:
            said.append(key + keys[index + 1])
        if index and keys[index - 1]:
            said.append(keys[index - 1] + key)
        if not any(
            word_distance(piece, one) <= MAX_WORD_DISTANCE for one in said for piece in pieces
        ):
            return False
    return True


def _align(sentence: Sentence, heard: Sequence[str]) -> _Alignment:
    """The cheapest alignment of the heard words with the sentence's (see the module's doc)."""
    keys = sentence.keys
    n, m = len(keys), len(heard)
    inf = float("inf")
    # best[i][j]: (cost, -exact words) of the cheapest alignment of keys[:i] with heard[:j],
    # and the step that reached it.
    best = [[(inf, 0)] * (m + 1) for _ in range(n + 1)]
    back: list[list[tuple[int, int, str] | None]] = [[None] * (m + 1) for _ in range(n + 1)]
    best[0][0] = (0.0, 0)
    for i in range(n + 1):
        for j in range(m + 1):
            total, hits = best[i][j]
            if total == inf:
                continue
            for ni, nj, add, exact, how in _steps(keys, heard, i, j):
                candidate = (total + add, hits - exact)
                if candidate < best[ni][nj]:
                    best[ni][nj] = candidate
                    back[ni][nj] = (i, j, how)
    total, hits = best[n][m]
    slots: dict[str, tuple[int, int]] = {}
    worst = 0.0
    i, j = n, m
    while (step := back[i][j]) is not None:
        pi, pj, how = step
        if how == "slot":
            slots[sentence.words[pi][1:-1]] = (pj, j)
        elif how != "extra" and any(
            word not in FUNCTION_WORDS for word in (*keys[pi:i], *heard[pj:j])
        ):
            # A meaningful word said or heard ("start little autonomous tasks" is not "start
            # the autonomous tasks" when "stop" was said and "start" heard).
            said = "".join(keys[pi:i])
            distance = 1.0 if how == "missed" else word_distance("".join(heard[pj:j]), said)
            worst = max(worst, distance)
        i, j = pi, pj
    return _Alignment(total, -hits, worst, slots)


def _steps(
    keys: Sequence[str], heard: Sequence[str], i: int, j: int
) -> Iterator[tuple[int, int, float, int, str]]:
    """The moves from aligning keys[:i] with heard[:j]: (next i, next j, cost, exact words,
    kind)."""
    n, m = len(keys), len(heard)
    if j < m:
        yield i, j + 1, EXTRA_COST * weight(heard[j]), 0, "extra"
    if i == n:
        return
    key = keys[i]
    if not key:  # a slot takes one heard word or more, free
        for end in range(j + 1, m + 1):
            yield i + 1, end, 0.0, 0, "slot"
        return
    said = weight(key)
    yield i + 1, j, GAP_COST * said, 0, "missed"
    if j == m:
        return
    distance = word_distance(heard[j], key)
    yield i + 1, j + 1, distance * said, int(distance == 0), "word"
    if j + 1 < m:
        # Two heard words for one said ("over night"), if together they are nearer than either
        # and neither is a little word ("and pause" must not become "unpause").
        split = word_distance(heard[j] + heard[j + 1], key)
        if (
            split < min(distance, word_distance(heard[j + 1], key))
            and heard[j] not in FUNCTION_WORDS
            and heard[j + 1] not in FUNCTION_WORDS
        ):
            yield i + 1, j + 2, (split + MERGE_PENALTY) * said, 0, "split"
    if i + 1 < n and keys[i + 1]:
        joined = word_distance(heard[j], key + keys[i + 1]) + MERGE_PENALTY
        yield i + 2, j + 1, joined * (said + weight(keys[i + 1])), 0, "joined"
