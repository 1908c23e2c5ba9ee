"""The knowledge part in a real worker: research from web pages and feeds into findings with
cited sources (extractive, or by a language model), search, memories, feeds and mail.

Everything the worker reads is served on 127.0.0.1; the language model is an OpenAI-compatible
stand-in (it is the user's own server). The embedding model and Qdrant (local mode) are real.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
import re
import time

import pytest

from tests.knowledge.worker import ChatStandIn, KnowledgeWorker, Site

BATTERIES = """<!doctype html><html><head><title>Home solar batteries in 2026</title>
<meta name="date" content="2026-11-02"></head><body>
<nav>Home | News | Contact | Subscribe to our newsletter</nav>
<article><h1>Home solar batteries in 2026</h1>
<p>Lithium iron phosphate batteries have become the default choice for home solar storage,
because they survive thousands of charge cycles without losing much capacity.</p>
<p>A typical household battery now stores between ten and fifteen kilowatt hours, which covers
the evening peak of a family home after the sun has set.</p>
<p>Prices for home batteries fell by about a fifth over the last year, mostly because cell
production moved to larger factories.</p>
<p>Installers recommend sizing the battery to the evening consumption rather than to the
solar array, since a battery that never fills wastes money.</p>
</article><footer>Copyright 2026 Example Energy News. All rights reserved.</footer>
</body></html>"""

INVERTERS = """<!doctype html><html><head><title>Hybrid inverters explained</title></head><body>
<article><h1>Hybrid inverters explained</h1>
<p>A hybrid inverter connects solar panels, a home battery and the grid in one box, so the
battery can be charged directly from the panels without extra conversion losses.</p>
<p>When the grid fails, a hybrid inverter with a backup output keeps essential circuits running
from the battery, which is the main reason many households choose one.</p>
<p>Hybrid inverters cost more than simple string inverters, but they avoid buying a separate
battery inverter later.</p>
</article></body></html>"""

GARDEN = """<!doctype html><html><head><title>Growing tomatoes</title></head><body><article>
<p>Tomatoes need at least six hours of direct sunlight every day to produce a good harvest,
and they prefer soil that drains well after rain.</p>
<p>Pinch out the side shoots of cordon tomatoes every week so that the plant puts its energy
into the fruit rather than into leaves.</p></article></body></html>"""

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Energy Weekly</title><link>{site}/</link>
<description>News about home energy</description>
<item><title>Battery prices keep falling</title><link>{site}/batteries</link>
<guid>{site}/batteries</guid><pubDate>Mon, 02 Nov 2026 08:00:00 GMT</pubDate>
<description>Home battery storage prices fell again this year as cell factories grew.</description>
</item>
<item><title>Tomato season tips</title><link>{site}/garden</link><guid>{site}/garden</guid>
<pubDate>Sun, 01 Nov 2026 08:00:00 GMT</pubDate>
<description>How to grow tomatoes in a sunny garden bed.</description></item>
</channel></rss>"""


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    async with Site() as server:
        server.pages["/batteries"] = ("text/html", BATTERIES.encode())
        server.pages["/inverters"] = ("text/html", INVERTERS.encode())
        server.pages["/garden"] = ("text/html", GARDEN.encode())
        server.pages["/feed.xml"] = ("application/rss+xml", RSS.format(site=server.url).encode())
        server.etags["/feed.xml"] = '"v1"'
        yield server


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[KnowledgeWorker]:
    knowledge = KnowledgeWorker(tmp_path)
    try:
        yield knowledge
    finally:
        await knowledge.stop()


PRIVATE = ("--research-allow-private", "true")


async def test_research_reads_pages_and_cites_them_without_a_language_model(
    worker: KnowledgeWorker, site: Site
) -> None:
    await worker.start(*PRIVATE)
    urls = [f"{site.url}/batteries", f"{site.url}/inverters", f"{site.url}/missing"]
    task = await worker.research({"topic": "home solar battery storage", "urls": urls})

    assert task["state"] == "succeeded", task
    result = task["result"]
    assert result["method"] == "extractive"
    titles = [source["title"] for source in result["sources"]]
    assert "Home solar batteries in 2026" in titles
    # Every claim cites a source that exists; boilerplate is not a claim.
    cited = {int(number) for number in re.findall(r"\[(\d+)\]", result["summary"])}
    assert cited
    assert cited <= set(range(1, len(result["sources"]) + 1))
    assert "kilowatt hours" in result["summary"] or "phosphate" in result["summary"]
    assert "newsletter" not in result["summary"]
    assert "Copyright" not in result["summary"]
    # The page that was not there is a problem of the finding, not its failure.
    assert any("/missing" in problem for problem in result["problems"])
    status, finding = await worker.call("GET", f"findings/{result['finding_id']}")
    assert (status, finding["topic"]) == (200, "home solar battery storage")

    status, found = await worker.call("GET", "knowledge/search?q=how+big+is+a+home+battery")
    assert status == 200
    assert "kilowatt hours" in found["hits"][0]["text"]
    assert found["hits"][0]["source"]["url"] == f"{site.url}/batteries"
    # A question the knowledge base knows nothing of gets no answer, not the nearest page.
    status, found = await worker.call("GET", "knowledge/search?q=when+is+high+tide+in+Brest")
    assert (status, found["hits"]) == (200, [])

    # The same pages again: nothing is stored twice.
    _, before = await worker.call("GET", "knowledge")
    await worker.research({"topic": "hybrid inverters", "urls": urls[:2]})
    _, after = await worker.call("GET", "knowledge")
    assert after["chunks"] == before["chunks"] > 0
    assert after["documents"] >= 2
    assert after["findings_today"] == 2


async def test_research_summarised_by_a_language_model_and_falling_back_when_it_fails(
    worker: KnowledgeWorker, site: Site
) -> None:
    async with ChatStandIn("Home batteries now hold 10-15 kWh [1].") as chat:
        await worker.start(*PRIVATE, "--llm-url", chat.url, "--llm-model", "llama3.2:3b")
        task = await worker.research({"topic": "home batteries", "urls": [f"{site.url}/batteries"]})
        assert task["result"]["method"] == "llm"
        assert task["result"]["summary"] == "Home batteries now hold 10-15 kWh [1]."
        [body] = chat.bodies
        assert body["model"] == "llama3.2:3b"
        assert [message["role"] for message in body["messages"]] == ["system", "user"]
        assert "kilowatt hours" in body["messages"][1]["content"]

        chat.fail_status = 500
        task = await worker.research(
            {"topic": "hybrid inverters", "urls": [f"{site.url}/inverters"]}
        )
        assert task["state"] == "succeeded"
        assert task["result"]["method"] == "extractive"
        assert any("language model" in problem for problem in task["result"]["problems"])


async def test_research_refuses_private_addresses_unless_allowed(
    worker: KnowledgeWorker, site: Site
) -> None:
    await worker.start()
    task = await worker.research({"topic": "home batteries", "urls": [f"{site.url}/batteries"]})
    assert task["state"] == "succeeded"
    assert task["result"]["method"] == "none"
    assert site.requests["/batteries"] == 0  # refused before connecting
    [problem] = task["result"]["problems"]
    assert "127.0.0.1" in problem or "private" in problem or "loopback" in problem

    status, body = await worker.call(
        "POST", "tasks", {"kind": "research", "payload": {"topic": ""}}
    )
    assert (status, body["code"]) == (400, "invalid_payload")
    status, body = await worker.call(
        "POST", "tasks", {"kind": "research", "payload": {"topic": "x", "urls": ["file:///etc"]}}
    )
    assert (status, body["code"]) == (400, "invalid_payload")


async def test_sources_that_cannot_be_read_are_named_and_the_rest_still_used(
    worker: KnowledgeWorker, site: Site
) -> None:
    site.hang.add("/slow")
    site.huge["/huge"] = 50_000_000
    site.pages["/logo.png"] = ("image/png", b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    await worker.start(*PRIVATE, "--research-timeout", "2")
    urls = [f"{site.url}/{path}" for path in ("slow", "huge", "logo.png", "batteries")]
    task = await worker.research(
        {"topic": "home batteries", "urls": urls, "feeds": [f"{site.url}/garden"]}
    )

    assert task["state"] == "succeeded", task
    result = task["result"]
    problems = " | ".join(result["problems"])
    assert len(result["problems"]) == 4, problems
    for path in ("/slow", "/huge", "/logo.png", "/garden"):
        assert path in problems, (path, problems)
    assert "not a feed" in problems or "feed" in problems
    # The 50 MB page was cut off early, not read whole.
    assert site.huge_sent["/huge"] < 20_000_000
    assert [source["url"] for source in result["sources"]] == [f"{site.url}/batteries"]
    assert "[1]" in result["summary"]


async def test_research_killed_midway_goes_on_without_reading_a_page_twice(
    worker: KnowledgeWorker, site: Site
) -> None:
    site.hang.add("/inverters")
    await worker.start(*PRIVATE)
    urls = [f"{site.url}/batteries", f"{site.url}/inverters"]
    status, task = await worker.call(
        "POST", "tasks", {"kind": "research", "payload": {"topic": "solar", "urls": urls}}
    )
    assert status == 201
    deadline = time.monotonic() + 60
    while site.requests["/inverters"] == 0:
        assert time.monotonic() < deadline, worker.log()
        await asyncio.sleep(0.05)
    worker.kill()
    site.hang.clear()

    await worker.start(*PRIVATE)
    done = await worker.wait_task(task["id"])
    assert done["state"] == "succeeded", done
    assert site.requests["/batteries"] == 1
    assert site.requests["/inverters"] == 2
    assert {source["url"] for source in done["result"]["sources"]} >= set(urls)


async def test_memories_are_kept_recalled_and_forgotten(worker: KnowledgeWorker) -> None:
    await worker.start()
    actor = {"type": "user", "id": "u1", "name": "Ada"}
    facts = [
        "The guest wifi password is on the fridge.",
        "Ada prefers the living room at 21 degrees.",
        "The NAS is backed up every Sunday night.",
    ]
    ids = []
    for fact in facts:
        status, memory = await worker.call("POST", "memories", {"text": fact, "actor": actor})
        assert status == 201, memory
        assert memory["said_by"]["name"] == "Ada"
        ids.append(memory["id"])
    status, body = await worker.call(
        "POST", "memories", {"text": "Ada likes it warm", "kind": "preference"}
    )
    assert status == 201

    status, body = await worker.call("GET", "memories?q=what+temperature+does+Ada+like")
    assert body["memories"][0]["text"] in (facts[1], "Ada likes it warm")
    status, body = await worker.call("GET", "memories?q=when+are+backups")
    assert body["memories"][0]["text"] == facts[2]
    status, body = await worker.call("GET", "memories?q=who+won+the+football+cup+final")
    assert body["memories"] == []

    status, _ = await worker.call("DELETE", f"memories/{ids[0]}")
    assert status == 204
    status, body = await worker.call("GET", "memories?limit=100")
    assert facts[0] not in [memory["text"] for memory in body["memories"]]
    status, body = await worker.call("DELETE", f"memories/{ids[0]}")
    assert (status, body["code"]) == (404, "memory_not_found")
    status, body = await worker.call("POST", "memories", {"text": ""})
    assert (status, body["code"]) == (400, "invalid_body")


async def test_feeds_are_polled_once_per_change_and_ranked_by_interest(
    worker: KnowledgeWorker, site: Site
) -> None:
    await worker.start(*PRIVATE, "--feed-interval", "60")
    status, _ = await worker.call("PUT", "knowledge/topics", {"topics": ["home batteries"]})
    assert status == 200
    started = time.time() - 1
    status, feed = await worker.call("POST", "feeds", {"url": f"{site.url}/feed.xml"})
    assert status == 201, feed
    deadline = time.monotonic() + 30
    while True:
        _, feeds = await worker.call("GET", "feeds")
        if feeds["feeds"][0]["last_checked"]:
            break
        assert time.monotonic() < deadline, worker.log()
        await asyncio.sleep(0.1)
    assert feeds["feeds"][0]["entries"] == 2
    assert feeds["feeds"][0]["title"] == "Energy Weekly"

    status, digest = await worker.call("GET", f"feeds/digest?since={started}")
    assert [item["title"] for item in digest["items"]] == [
        "Battery prices keep falling",
        "Tomato season tips",
    ]
    assert digest["items"][0]["topic"] == "home batteries"

    # Added again: the same feed; polled again, the unchanged feed answers 304.
    status, again = await worker.call("POST", "feeds", {"url": f"{site.url}/feed.xml"})
    assert again["id"] == feed["id"]
    status, entry = await worker.call(
        "POST",
        "feeds/entries",
        {"feed": "HA", "title": "New inverter rules", "link": f"{site.url}/rules"},
    )
    assert (status, entry["added"]) == (202, True)
    status, found = await worker.call("GET", "knowledge/search?q=inverter+rules&limit=1")
    assert found["hits"][0]["source"]["title"] == "New inverter rules"


async def test_mail_is_flagged_by_rules_and_urgent_mail_says_so(worker: KnowledgeWorker) -> None:
    await worker.start(
        "--mail-senders", "*@bank.example,boss@work.example", "--mail-keywords", "invoice"
    )
    status, body = await worker.call(
        "POST",
        "mail",
        {"sender": "Bank <alerts@bank.example>", "subject": "Statement ready", "text": "Hi"},
    )
    assert status == 200
    assert body["flag"]["reason"] == "from *@bank.example"
    assert body["flag"]["urgent"] is False
    _, body = await worker.call(
        "POST",
        "mail",
        {"sender": "shop@store.example", "subject": "Your invoice", "text": "Pay ASAP please"},
    )
    assert body["flag"]["urgent"] is True
    _, body = await worker.call(
        "POST", "mail", {"sender": "news@list.example", "subject": "Weekly news", "text": "..."}
    )
    assert body["flag"] is None
    _, flagged = await worker.call("GET", "mail?since=0")
    assert [flag["subject"] for flag in flagged["mail"]] == ["Your invoice", "Statement ready"]
