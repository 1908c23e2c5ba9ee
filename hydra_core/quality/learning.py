"""What review decisions teach, per character: the auto-accept threshold and prompt adjustments.

Only human decisions count (accepted or rejected by a person); an auto-accepted asset was judged
by the threshold itself, so counting it would only confirm the threshold. A person rejecting an
auto-accepted asset makes it a human decision.

The threshold stays at the default until a character has at least ``min_each`` accepted and
``min_each`` rejected assets among its latest ``window`` decisions. Then it is the cut on the
overall score that best separates them: the one with the highest Youden's J (true accept rate
plus true reject rate, minus one, i.e. balanced accuracy), tried at the midpoints between
neighbouring scores. Where several cuts tie, the middle of the run of tied cuts is taken (the
widest margin); of several such runs, the one nearest the default. When no cut separates better
than chance (J <= 0: the scores do not tell accepted from rejected), the default stays.

Prompts are split on commas into phrases (lowercased, weights like ``(term:1.2)`` removed). A
phrase whose rejection rate, pulled towards the character's baseline by ``prior`` pseudo-decisions,
lies ``margin`` or more above the baseline in at least ``min_support`` decisions becomes a negative
term; one as far below it becomes an emphasis term. Rejection reasons given at least
``min_reason_count`` times are negative terms too, first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
import itertools
import re

from .models import CharacterLearning

DEFAULT_THRESHOLD = 60.0
_TIE = 1e-9
_SPLIT_PROMPT = re.compile(r"[,\n]")
_SPLIT_REASON = re.compile(r"[,;\n]")
_WEIGHT = re.compile(r":\s*-?\d+(?:\.\d+)?")
_BRACKETS = re.compile(r"[()\[\]{}<>]")
_SPACES = re.compile(r"\s+")
_MAX_PHRASE = 60


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """One human decision on an asset, as learning sees it (oldest first when given a list)."""

    character: str | None
    overall: float
    accepted: bool
    reason: str | None = None
    prompt: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LearningSettings:
    """How much evidence learning asks for; see the module's description."""

    default_threshold: float = DEFAULT_THRESHOLD
    min_each: int = 3
    window: int = 200
    min_support: int = 3
    prior: float = 2.0
    margin: float = 0.2
    min_reason_count: int = 2
    max_terms: int = 12


def learn(
    decisions: Iterable[Decision],
    *,
    characters: Iterable[str | None] = (),
    settings: LearningSettings | None = None,
) -> list[CharacterLearning]:
    """What was learnt for each character named in ``characters`` or in ``decisions``.

    ``decisions`` oldest first. The result is ordered as ``characters``, then the characters only
    the decisions name (sorted, with None, assets of no character, first).
    """
    settings = settings or LearningSettings()
    by_character: dict[str | None, list[Decision]] = {key: [] for key in characters}
    for decision in decisions:
        by_character.setdefault(decision.character, []).append(decision)
    order = list(dict.fromkeys(characters))
    extra = sorted((key for key in by_character if key not in order), key=lambda key: key or "")
    return [
        learn_character(key, by_character[key][-settings.window :], settings)
        for key in [*order, *extra]
    ]


def learn_character(
    character: str | None, decisions: Sequence[Decision], settings: LearningSettings
) -> CharacterLearning:
    """What one character's decisions (oldest first, already windowed) teach."""
    accepted = [decision.overall for decision in decisions if decision.accepted]
    rejected = [decision.overall for decision in decisions if not decision.accepted]
    threshold, calibrated = calibrate(accepted, rejected, settings)
    reasons = Counter(
        reason
        for decision in decisions
        if not decision.accepted
        for reason in reason_parts(decision.reason)
    )
    negative, emphasis = _prompt_terms(decisions, settings)
    frequent_reasons = [
        reason for reason, count in _ranked(reasons) if count >= settings.min_reason_count
    ]
    return CharacterLearning(
        character=character,
        decisions=len(decisions),
        accepted=len(accepted),
        rejected=len(rejected),
        acceptance_rate=len(accepted) / len(decisions) if decisions else None,
        threshold=threshold,
        calibrated=calibrated,
        reasons=dict(_ranked(reasons)),
        negative_terms=tuple(dict.fromkeys([*frequent_reasons, *negative]))[: settings.max_terms],
        emphasis_terms=tuple(emphasis[: settings.max_terms]),
    )


def calibrate(
    accepted: Sequence[float], rejected: Sequence[float], settings: LearningSettings
) -> tuple[float, bool]:
    """The auto-accept threshold and whether it was calibrated (else the default)."""
    if len(accepted) < settings.min_each or len(rejected) < settings.min_each:
        return settings.default_threshold, False
    values = sorted(set(accepted) | set(rejected))
    cuts = [(low + high) / 2 for low, high in itertools.pairwise(values)]
    scored = [(cut, _youden(cut, accepted, rejected)) for cut in cuts]
    best = max((j for _, j in scored), default=0.0)
    if best <= _TIE:
        return settings.default_threshold, False
    runs: list[list[float]] = []
    previous_best = False
    for cut, j in scored:
        is_best = j >= best - _TIE
        if is_best and previous_best:
            runs[-1].append(cut)
        elif is_best:
            runs.append([cut])
        previous_best = is_best
    middles = [(run[0] + run[-1]) / 2 for run in runs]
    chosen = min(middles, key=lambda middle: abs(middle - settings.default_threshold))
    return round(chosen, 2), True


def _youden(cut: float, accepted: Sequence[float], rejected: Sequence[float]) -> float:
    kept = sum(score >= cut for score in accepted) / len(accepted)
    held = sum(score < cut for score in rejected) / len(rejected)
    return kept + held - 1


def normalise(text: str) -> str:
    """A phrase or reason as learning compares them: lowercase, no weights, single spaces."""
    text = _BRACKETS.sub(" ", _WEIGHT.sub(" ", text.lower()))
    return _SPACES.sub(" ", text).strip(" .!?'\"-_*")


def reason_parts(reason: str | None) -> list[str]:
    """A rejection reason split into its parts ("blurry; extra fingers" gives two)."""
    if not reason:
        return []
    parts = (normalise(part) for part in _SPLIT_REASON.split(reason))
    return list(dict.fromkeys(part for part in parts if part and len(part) <= _MAX_PHRASE))


def prompt_phrases(prompt: str | None) -> set[str]:
    """The distinct comma-separated phrases of a prompt, normalised."""
    if not prompt:
        return set()
    phrases = (normalise(part) for part in _SPLIT_PROMPT.split(prompt))
    return {phrase for phrase in phrases if phrase and len(phrase) <= _MAX_PHRASE}


def _prompt_terms(
    decisions: Sequence[Decision], settings: LearningSettings
) -> tuple[list[str], list[str]]:
    """Phrases clearly tied to rejection (negative) and to acceptance (emphasis), strongest
    first."""
    prompted = [(prompt_phrases(decision.prompt), decision.accepted) for decision in decisions]
    prompted = [(phrases, accepted) for phrases, accepted in prompted if phrases]
    if not prompted:
        return [], []
    baseline = sum(not accepted for _, accepted in prompted) / len(prompted)
    seen: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    for phrases, accepted in prompted:
        seen.update(phrases)
        if not accepted:
            rejected.update(phrases)
    negative: list[tuple[float, str]] = []
    emphasis: list[tuple[float, str]] = []
    for phrase, count in seen.items():
        if count < settings.min_support:
            continue
        rate = (rejected[phrase] + settings.prior * baseline) / (count + settings.prior)
        lift = rate - baseline
        if lift >= settings.margin - _TIE:
            negative.append((-lift, phrase))
        elif lift <= -settings.margin + _TIE:
            emphasis.append((lift, phrase))
    return [phrase for _, phrase in sorted(negative)], [phrase for _, phrase in sorted(emphasis)]


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))
