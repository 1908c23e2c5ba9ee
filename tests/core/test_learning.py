"""What review decisions teach: the auto-accept threshold per character and prompt adjustments."""

from __future__ import annotations

from hydra_core.quality.learning import (
    Decision,
    LearningSettings,
    learn,
    normalise,
    prompt_phrases,
    reason_parts,
)
from hydra_core.wire import dump

SETTINGS = LearningSettings(default_threshold=60)


def decided(
    scores: list[float],
    *,
    accepted: bool,
    character: str | None = "mira",
    prompt: str | None = None,
    reason: str | None = None,
) -> list[Decision]:
    return [
        Decision(
            character=character, overall=score, accepted=accepted, prompt=prompt, reason=reason
        )
        for score in scores
    ]


def only(decisions: list[Decision], **changes: object) -> dict[str, object]:
    [result] = learn(decisions, settings=LearningSettings(**{"default_threshold": 60, **changes}))
    return dump(result)


def test_no_decisions_keep_the_default_for_every_character() -> None:
    learnt = learn([], characters=[None, "mira", "oskar"], settings=SETTINGS)
    assert [item.character for item in learnt] == [None, "mira", "oskar"]
    for item in learnt:
        assert (item.threshold, item.calibrated, item.decisions) == (60, False, 0)
        assert item.acceptance_rate is None
        assert (item.reasons, item.negative_terms, item.emphasis_terms) == ({}, (), ())


def test_small_samples_do_not_move_the_threshold() -> None:
    # Two rejections of high scores are not enough to say where the cut lies.
    decisions = decided([80, 85, 90, 95], accepted=True) + decided([88, 92], accepted=False)
    result = only(decisions)
    assert (result["threshold"], result["calibrated"]) == (60, False)
    assert (result["decisions"], result["accepted"], result["rejected"]) == (6, 4, 2)
    assert result["acceptance_rate"] == 4 / 6


def test_threshold_sits_between_rejected_and_accepted() -> None:
    decisions = decided([80, 85, 90], accepted=True) + decided([40, 45, 50], accepted=False)
    result = only(decisions)
    assert (result["threshold"], result["calibrated"]) == (65, True)


def test_rejecting_high_scores_raises_the_threshold() -> None:
    base = decided([80, 85, 90], accepted=True) + decided([40, 45, 50], accepted=False)
    before = only(base)["threshold"]
    after = only(base + decided([70, 72, 74], accepted=False))["threshold"]
    assert after > before
    assert after == 77  # between the highest rejected (74) and the lowest accepted (80)


def test_accepting_low_scores_lowers_the_threshold() -> None:
    base = decided([80, 85, 90], accepted=True) + decided([40, 45, 50], accepted=False)
    before = only(base)["threshold"]
    after = only(base + decided([52, 55, 58], accepted=True))["threshold"]
    assert after < before
    assert after == 51


def test_overlapping_scores_find_the_best_separation() -> None:
    # One rejected asset among the accepted ones: the best cut still keeps most apart.
    decisions = decided([70, 75, 80, 85], accepted=True) + decided([40, 50, 55, 78], accepted=False)
    result = only(decisions)
    assert result["calibrated"]
    assert 55 < result["threshold"] < 70


def test_scores_that_do_not_tell_apart_keep_the_default() -> None:
    # Every rejected asset scored higher than every accepted one: no cut is better than chance.
    decisions = decided([20, 25, 30], accepted=True) + decided([80, 85, 90], accepted=False)
    assert (only(decisions)["threshold"], only(decisions)["calibrated"]) == (60, False)


def test_only_the_latest_window_counts() -> None:
    old = decided([40, 45, 50], accepted=False) + decided([80, 85, 90], accepted=True)
    new = decided([60, 62, 64], accepted=False) + decided([90, 92, 94], accepted=True)
    assert only(old + new, window=6)["threshold"] == 77
    assert only(old + new, window=6)["decisions"] == 6


def test_characters_learn_apart() -> None:
    decisions = [
        *decided([80, 85, 90], accepted=True, character="mira"),
        *decided([40, 45, 50], accepted=False, character="mira"),
        *decided([30, 35, 40], accepted=True, character=None),
        *decided([10, 12, 14], accepted=False, character=None),
    ]
    learnt = {item.character: item for item in learn(decisions, characters=["oskar"])}
    assert list(learnt) == ["oskar", None, "mira"]
    assert (learnt["mira"].threshold, learnt[None].threshold) == (65, 22)
    assert not learnt["oskar"].calibrated


def test_rejection_reasons_are_counted_and_become_negative_terms() -> None:
    decisions = [
        *decided([30], accepted=False, reason="Blurry"),
        *decided([35], accepted=False, reason=" blurry. "),
        *decided([40], accepted=False, reason="Extra fingers; blurry"),
        *decided([45], accepted=False, reason="extra   fingers"),
        *decided([50], accepted=False, reason="wrong hat"),
        *decided([90], accepted=True, reason="lovely"),
    ]
    result = only(decisions)
    assert result["reasons"] == {"blurry": 3, "extra fingers": 2, "wrong hat": 1}
    # Reasons given once may be chance; accepted assets' reasons are not rejection reasons.
    assert result["negative_terms"] == ["blurry", "extra fingers"]


def test_prompt_terms_tied_to_rejection_and_acceptance() -> None:
    good = "portrait of mira, soft light, (masterpiece:1.2)"
    bad = "portrait of mira, harsh flash, masterpiece"
    decisions = [
        *decided([80, 82, 84, 86], accepted=True, prompt=good),
        *decided([40, 42, 44, 46], accepted=False, prompt=bad),
    ]
    result = only(decisions)
    assert result["negative_terms"] == ["harsh flash"]
    assert result["emphasis_terms"] == ["soft light"]
    # In every prompt: says nothing either way.
    assert "portrait of mira" not in result["negative_terms"] + result["emphasis_terms"]
    assert "masterpiece" not in result["negative_terms"] + result["emphasis_terms"]


def test_rare_terms_are_not_overfitted() -> None:
    decisions = [
        *decided([80, 82, 84, 86], accepted=True, prompt="mira, garden"),
        *decided([40, 42], accepted=False, prompt="mira, rain"),
        *decided([44, 46], accepted=False, prompt="mira, garden"),
    ]
    result = only(decisions)
    # "rain" was rejected both times, but two decisions are too few to blame it.
    assert "rain" not in result["negative_terms"]
    assert result["emphasis_terms"] == []


def test_normalising_text() -> None:
    assert normalise("  (Masterpiece:1.3) ") == "masterpiece"
    assert normalise("[Soft   Light]") == "soft light"
    assert prompt_phrases("A, b,\n(c:0.8), a, ") == {"a", "b", "c"}
    assert prompt_phrases(None) == set()
    assert reason_parts("Blurry, too dark; BLURRY") == ["blurry", "too dark"]
    assert reason_parts("") == []
