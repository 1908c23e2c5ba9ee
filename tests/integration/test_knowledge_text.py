"""How Hydra words the knowledge base: what Assist reads of a search hit, how a memory said in
the first person is read back, which memories are preferences, and the briefing's research,
feed and mail sections."""

from __future__ import annotations

from custom_components.hydra.parts.knowledge.briefing import mail_text, research_text
from custom_components.hydra.parts.knowledge.describe import (
    digest_text,
    hit_answer,
    shorten,
    to_you,
)
from custom_components.hydra.parts.knowledge.requests import memory_kind
from hydra_core.knowledge.models import DigestItem, Finding, MailFlag, SearchHit, Source

LONG = (
    "Solid-state batteries replace the flammable liquid electrolyte of a lithium-ion cell with "
    "a solid one. Sulfide electrolytes conduct lithium ions almost as well as liquids do, and "
    "the prototype cells charged from ten to eighty percent in twelve minutes. The cells kept "
    "ninety percent of their capacity after one thousand cycles at room temperature."
)


def _finding(number: int, topic: str, summary: str, **fields: object) -> Finding:
    return Finding(id=number, topic=topic, summary=summary, created_at=number, **fields)  # type: ignore[arg-type]


def test_a_long_passage_is_read_in_whole_sentences() -> None:
    """A passage is cut after the last sentence that fits, never in a word; one sentence too
    long for the limit is cut at a word."""
    assert shorten(LONG, 300) == LONG.rsplit(" The cells kept", 1)[0]
    assert shorten(LONG) == LONG.split(" Sulfide", 1)[0]
    assert shorten("word " * 100, 30) == "word word word word word word…"
    assert shorten("Fits [1].") == "Fits."


def test_a_hit_names_its_source() -> None:
    """Its title, else its site, never a citation mark."""
    web = Source(url="https://www.example.com/a", title="Sulfide cells", kind="web")
    hit = SearchHit(id="1", text="Sulfide cells charge fast [2]", score=0.8, source=web)
    assert hit_answer(hit) == "Sulfide cells charge fast. That is from Sulfide cells."
    untitled = SearchHit(
        id="2", text="Heat pumps sell.", score=0.5, source=Source(url="https://www.example.com/")
    )
    assert hit_answer(untitled) == "Heat pumps sell. That is from example.com."


def test_first_person_is_read_back_in_the_second() -> None:
    assert to_you("I prefer oat milk in my coffee.") == "you prefer oat milk in your coffee"
    assert to_you("I'm allergic to peanuts") == "you're allergic to peanuts"
    assert to_you("I am on call on Mondays") == "you are on call on Mondays"
    assert to_you("the spare key is under the blue pot") == "the spare key is under the blue pot"
    # Words that only contain the pronouns stay as they are.
    assert to_you("Mina likes mint") == "Mina likes mint"


def test_likes_and_wishes_are_preferences() -> None:
    assert memory_kind("I prefer oat milk") == "preference"
    assert memory_kind("I don\u2019t like cilantro") == "preference"
    assert memory_kind("My favourite colour is teal") == "preference"
    assert memory_kind("the spare key is under the blue pot") == "fact"
    assert memory_kind("Idris likes tea") == "fact"


def test_research_section_one_line_each() -> None:
    """Oldest first, a line each with the summary's first sentence; a research that found
    nothing says why; more than four are counted."""
    findings = [
        _finding(2, "heat pumps", "Heat pumps outsold boilers [1]. Prices fell [2]."),
        _finding(1, "RISC-V", "", method="none", problems=("every page timed out",)),
    ]
    assert research_text(findings) == (
        "Research finished on 2 topics.\n"
        "RISC-V: nothing found (every page timed out).\n"
        "Heat pumps: Heat pumps outsold boilers."
    )
    many = [_finding(number, f"topic {number}", "Found it.") for number in range(1, 7)]
    text = research_text(many)
    assert text is not None
    assert text.splitlines()[-1] == "And 2 more topics."
    assert research_text([]) is None


def test_mail_section_urgent_first() -> None:
    mail = [
        MailFlag(id=1, sender="bank@example.com", subject="Statement", reason="from your bank"),
        MailFlag(
            id=2,
            sender="ops@example.com",
            subject="Flood",
            reason="the subject says so.",
            urgent=True,
        ),
    ]
    assert mail_text(mail) == (
        "2 mails look important.\n"
        "Urgent: From ops@example.com: Flood (the subject says so).\n"
        "From bank@example.com: Statement (from your bank)."
    )


def test_digest_names_the_most_interesting() -> None:
    items = [
        DigestItem(title=f"Entry {number}", url=None, feed=feed, published=None, score=0.9)
        for number, feed in enumerate(("Energy news", "https://www.example.com/rss", None, "X"))
    ]
    assert digest_text(items) == (
        "4 new entries in your feeds. Most interesting: Entry 0 (Energy news), Entry 1 "
        "(example.com) and Entry 2."
    )
    assert digest_text([]) is None
