"""Extracting the main text of real saved pages, and cutting text into chunks.

The pages are whole pages as their sites served them (``pages/README.md`` says where they come
from); each test checks a sentence of the article is found and that navigation or footer text,
which is in the page, is not.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
import itertools
from pathlib import Path
import re
import time

import aiohttp
import pytest

from hydra_core.knowledge.extract import NoText, chunk, content_hash, extract
from hydra_core.knowledge.fetch import fetch

from .site import Site

PAGES = Path(__file__).parent / "pages"


def day(value: str) -> float:
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("file", "title", "published", "article", "boilerplate"),
    [
        (
            "nature.com.telescope.html",
            "Gigantic Chinese telescope opens to astronomers worldwide",
            "2019-09-24",
            [
                "The world\u2019s largest single-dish radio observatory is preparing to open to "
                "astronomers around the world",
                "Li hopes that",
            ],
            ["You are using a browser version", "I agree my information will be", "PDF version"],
        ),
        (
            "lemire.me.json.html",
            "JSON parsing: simdjson vs. JSON for Modern C++",
            "2019-08-02",
            ["I use a Skylake processor with GNU GCC 8.3.", "0.091 GB/s"],
            ["Leave a Reply", "Proudly powered by WordPress", "Science and Technology links"],
        ),
        (
            "github.blog.spiceland.html",
            "Leader spotlight: Erin Spiceland",
            "2019-03-29",
            [
                "Erin Spiceland is a Software Engineer for SpaceX.",
                "make effective plans and goals for the future",
            ],
            ["Related posts", "Missed the main event?", "Jeremy Epling"],
        ),
        (
            "caktusgroup.com.django.html",
            "Testing Client-Side Applications with Django Post Mortem | Caktus Group",
            "2015-06-08",
            ["Was I losing my mind?", "from django.conf import settings"],
            ["New Call-to-action", "You might also like:", "Get tips, see case studies"],
        ),
        (
            "en.wikipedia.org.tsne.html",
            "T-distributed stochastic neighbor embedding",
            None,
            [
                "T-distributed Stochastic Neighbor Embedding (t-SNE) is a machine learning "
                "algorithm for visualization",
                "Given a set of high-dimensional objects",
            ],
            ["Conditional random field", "Jump to navigation"],
        ),
    ],
)
async def test_the_article_is_kept_and_the_boilerplate_dropped(
    file: str, title: str, published: str | None, article: list[str], boilerplate: list[str]
) -> None:
    html = (PAGES / file).read_bytes()
    page_text = html.decode("utf-8", errors="replace")

    extracted = await extract(html, url=f"https://example.org/{file}")

    assert extracted.title == title
    if published is not None:
        assert extracted.published == day(published)
    for sentence in article:
        assert sentence in extracted.text
    for noise in boilerplate:
        assert noise in page_text  # it is on the page...
        assert noise not in extracted.text  # ...but not in what is kept


async def test_a_fetched_page_is_extracted_as_served(
    site: Site, session: aiohttp.ClientSession
) -> None:
    url = site.add("/telescope", (PAGES / "nature.com.telescope.html").read_bytes())
    page = await fetch(session, url, allow_private=True)

    extracted = await extract(
        page.body, content_type=page.content_type, charset=page.charset, url=page.url
    )

    assert extracted.title == "Gigantic Chinese telescope opens to astronomers worldwide"
    assert "Five-hundred-meter Aperture Spherical Radio Telescope (FAST)" in extracted.text


ARTICLE = (
    "<html><head><title>{title}</title>{meta}</head><body>"
    "<nav><a href='/'>Home</a> <a href='/news'>News</a></nav>"
    "<article><h1>{title}</h1>"
    "<p>The café by the harbour reopened on Monday after the winter storms, its owner said.</p>"
    "<p>Fishermen and walkers queued before dawn for the first coffee of the season, and the "
    "crêpes sold out by nine o'clock in the morning, as they always did before the storms.</p>"
    "<p>The council will decide next week whether the sea wall needs repairs before summer.</p>"
    "</article><footer>© Harbour News</footer></body></html>"
)


@pytest.mark.parametrize(
    ("charset", "meta"),
    [("windows-1252", ""), (None, "<meta charset='iso-8859-1'>"), ("utf-8", "")],
)
async def test_the_charset_of_the_server_or_the_page_decodes_it(
    charset: str | None, meta: str
) -> None:
    encoding = charset or "iso-8859-1"
    html = ARTICLE.format(title="Harbour café reopens", meta=meta).encode(encoding)

    extracted = await extract(html, charset=charset)

    assert extracted.title == "Harbour café reopens"
    assert "The café by the harbour reopened on Monday" in extracted.text
    assert "crêpes sold out" in extracted.text


async def test_plain_text_passes_through_tidied() -> None:
    body = (
        "Tide table\r\n\r\n  High water   06:12\t 4.1 m\n\n\nLow water 12:30, 0.9 m. "
        "Mind the rocks.\n"
    )

    extracted = await extract(body.encode(), content_type="text/plain", charset="utf-8")

    assert (
        extracted.text
        == "Tide table\nHigh water 06:12 4.1 m\nLow water 12:30, 0.9 m. Mind the rocks."
    )
    assert extracted.title is None
    assert extracted.published is None
    latin = await extract(
        "Le café ouvre à six heures, la marée est basse à midi.".encode("latin-1"),
        content_type="text/plain",
    )
    assert latin.text == "Le café ouvre à six heures, la marée est basse à midi."


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "text/html"),
        (b"<html><head><title>Home</title></head><body></body></html>", "text/html"),
        (
            b"<html><body><nav><ul><li><a href='/'>Home</a></li><li><a href='/a'>About</a></li>"
            b"<li><a href='/c'>Contact</a></li></ul></nav></body></html>",
            "text/html",
        ),
        (bytes(range(256)) * 40, "text/html"),
        (bytes(range(256)) * 40, "text/plain"),
        (b"   \n\t\n", "text/plain"),
        (b"404 -- 2026-07-01 12:00:00 -- 0x0000ff -- #### ---- 1234567890 " * 3, "text/plain"),
    ],
)
async def test_no_text_is_a_clear_error(body: bytes, content_type: str) -> None:
    with pytest.raises(NoText) as raised:
        await extract(body, content_type=content_type, url="https://user:pw@example.org/x?k=1")

    assert raised.value.code == "extract_no_text"
    assert raised.value.message == (
        "https://example.org/x has no readable main text (empty, only navigation, or not text)"
    )


async def test_extraction_leaves_the_event_loop_free() -> None:
    html = (PAGES / "en.wikipedia.org.tsne.html").read_bytes()
    ticks = 0
    stop = asyncio.Event()

    async def tick() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.002)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    started, before = time.monotonic(), ticks
    await extract(html)
    took, during = time.monotonic() - started, ticks - before
    stop.set()
    await ticker

    assert during >= 3, f"the loop ticked {during} times in {took:.3f} s of extraction"


SENTENCES = [f"Sentence number {n} says the tide was {n % 7} metres high." for n in range(60)]


def sentences_of(text: str) -> list[str]:
    return re.findall(r"Sentence number \d+ says the tide was \d metres high\.", text)


def test_chunks_are_cut_between_sentences_within_the_limit_and_overlap() -> None:
    paragraphs = [" ".join(SENTENCES[i : i + 6]) for i in range(0, 60, 6)]
    text = "\n".join(paragraphs)

    chunks = chunk(text, max_chars=300, overlap=120)

    assert len(chunks) > 1
    assert all(len(piece) <= 300 for piece in chunks)
    # Every chunk is whole sentences, and together they hold every sentence, in order.
    for piece in chunks:
        assert " ".join(sentences_of(piece)) == " ".join(piece.split())
    seen = [s for piece in chunks for s in sentences_of(piece)]
    assert list(dict.fromkeys(seen)) == SENTENCES
    # Each chunk starts with the last sentences of the one before (at most 120 characters),
    # then goes on with new ones.
    for before, after in itertools.pairwise(chunks):
        earlier = sentences_of(before)
        carried = [s for s in sentences_of(after) if s in earlier]
        assert carried
        assert sentences_of(after)[: len(carried)] == carried
        assert earlier[-len(carried) :] == carried
        assert len(" ".join(carried)) <= 120
        assert len(sentences_of(after)) > len(carried)


def test_paragraphs_are_the_first_place_to_cut() -> None:
    first = "The harbour opens at six. Boats leave at seven."
    second = "The café serves breakfast until ten. Crêpes sell out early."

    # The first paragraph fills half a chunk: the cut is before the second, not inside it.
    assert chunk(f"{first}\n{second}", max_chars=90, overlap=0) == [first, second]
    # Less than half full, it takes what fits of the next paragraph.
    assert chunk(f"{first}\n{second}", max_chars=100, overlap=0) == [
        f"{first}\nThe café serves breakfast until ten.",
        "Crêpes sell out early.",
    ]
    assert chunk(f"{first}\n{second}", max_chars=200) == [f"{first}\n{second}"]


def test_a_sentence_longer_than_a_chunk_is_cut_between_words() -> None:
    words = [f"word{n}" for n in range(400)]
    text = " ".join(words) + "."

    chunks = chunk(text, max_chars=100, overlap=20)

    assert all(len(piece) <= 100 for piece in chunks)
    kept = [w.rstrip(".") for piece in chunks for w in piece.split()]
    assert list(dict.fromkeys(kept)) == words
    # The overlap is the last words of the piece before.
    assert chunks[1].split()[0] in chunks[0].split()
    # A single word longer than a chunk is cut inside it, losing nothing.
    assert chunk("x" * 250, max_chars=100, overlap=0) == ["x" * 100, "x" * 100, "x" * 50]


def test_short_and_empty_text() -> None:
    assert chunk("One short paragraph.") == ["One short paragraph."]
    assert chunk("") == []
    assert chunk(" \n \n") == []
    with pytest.raises(ValueError, match="overlap"):
        chunk("text", max_chars=100, overlap=100)


async def test_a_real_article_chunks_within_the_limits() -> None:
    extracted = await extract((PAGES / "nature.com.telescope.html").read_bytes())

    chunks = chunk(extracted.text)

    assert 5 <= len(chunks) <= 12
    assert all(len(piece) <= 1000 for piece in chunks)
    assert chunks[0].startswith("Gigantic Chinese telescope opens to astronomers worldwide")
    words = extracted.text.split()
    assert set(words) == {w for piece in chunks for w in piece.split()}


def test_the_content_hash_is_stable_and_ignores_case_spacing_and_unicode_form() -> None:
    text = "The tide turns at noon.\nThe café opens."
    assert content_hash(text) == content_hash("the TIDE turns  at noon. The cafe\u0301 opens. ")
    assert content_hash(text) != content_hash("The tide turns at one.\nThe café opens.")
    assert content_hash("the tide turns") == (
        "336651f24baf9c68cc0b2d734cef71d445d597364b09005abe822a408222df3e"
    )
