"""The knowledge base in a real Home Assistant, against a real worker with the knowledge part.

Around the worker, on loopback: an aiohttp server in the test serves the web pages and the feed
that research and the feeds read, and an OpenAI-compatible chat endpoint (``POST
/v1/chat/completions``, OpenAI's request and response shapes) stands in for the user's own LLM
server. Home Assistant's side is all real: the default conversation agent hears the sentences,
the actions answer, the "Hydra" LLM API is taken through Home Assistant's own llm helpers, the
imap and feedreader integrations' events are fired on the bus as they fire them, and the
notifications go through the notify integration.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
import feedparser
from homeassistant.auth.const import GROUP_ID_USER
from homeassistant.components import conversation
from homeassistant.const import CONF_TOKEN, CONF_URL, STATE_UNKNOWN
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import llm
from homeassistant.setup import async_setup_component
import probatio
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.hydra.const import CONF_NOTIFY_TARGETS, DOMAIN, EVENT_RESEARCH_FINISHED
from hydra_core.models import Actor
from tests.worker.test_cli import free_port

from .conftest import RoutineWorker, entry_for, record_states, setup_entry, wait_until
from .test_routine import PHONE, Sent, sent  # noqa: F401 - the notify fixture
from .worker_process import WORKER_PYTHON, worker_process

TOKEN = "knowledge-process-token-0123456789"
# Research runs the fetch, extraction, embedding and summary; the margin is for a busy machine.
RESEARCH_TIMEOUT_S = 60
WORKER_NAME = "librarian"
# Mail from here is important (the worker's mail_senders option); "urgent" makes it urgent.
OPS = "ops.example.com"
CHUNKS = f"sensor.{WORKER_NAME}_knowledge_chunks"
DOCUMENTS = f"sensor.{WORKER_NAME}_knowledge_documents"
FINDINGS_TODAY = f"sensor.{WORKER_NAME}_research_findings_today"
LAST_INGESTION = f"sensor.{WORKER_NAME}_last_knowledge_ingestion"
RESEARCH_PROGRESS = f"sensor.{WORKER_NAME}_research_progress"
TOPIC = "solid-state batteries"
PAGE_TITLE = "Sulfide electrolytes bring solid-state batteries closer"
PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{PAGE_TITLE}</title></head>
<body>
<header><nav><a href="/">Home</a> <a href="/energy">Energy</a></nav></header>
<article>
<h1>{PAGE_TITLE}</h1>
<p>Solid-state batteries replace the flammable liquid electrolyte of a lithium-ion cell with a
solid one. Sulfide electrolytes conduct lithium ions almost as well as liquids do, and the
prototype cells described by the research group charged from ten to eighty percent in twelve
minutes without forming dendrites.</p>
<p>The cells kept ninety percent of their capacity after one thousand cycles at room
temperature. The group expects pilot production of the sulfide cells within three years, once
the electrolyte can be made without exposing it to moist air, which releases hydrogen
sulfide.</p>
<p>Oxide electrolytes are more stable in air but need high pressure and heat to bond with the
electrodes, which is why most manufacturers now favour sulfides for cars.</p>
</article>
<footer>Copyright the example energy magazine</footer>
</body></html>
"""
SUMMARY = (
    "Sulfide electrolytes let prototype solid-state cells charge from ten to eighty percent in "
    "twelve minutes without dendrites [1]. Pilot production is expected within three years [1]."
)
FEED_ENTRY_TITLE = "Heat pumps outsell gas boilers for the first time"
FEED = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel>
<title>Energy news</title><link>http://127.0.0.1/</link><description>News</description>
<item>
<title>{FEED_ENTRY_TITLE}</title>
<link>http://127.0.0.1/heat-pumps</link>
<description>Heat pump sales overtook gas boiler sales across Europe last quarter, helped by
subsidies and falling electricity prices.</description>
<pubDate>{{published}}</pubDate>
<guid>heat-pumps-1</guid>
</item>
</channel></rss>
"""


@dataclass
class LoopbackWeb:
    """The web the worker reads (pages, a feed) and the OpenAI-compatible chat endpoint."""

    chat_requests: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        """A page's address."""
        return f"http://127.0.0.1:{self.port}{path}"

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def _chat(self, request: web.Request) -> web.Response:
        """OpenAI's chat completion: the request's model and messages, one choice back. Mail
        is triaged (an invoice is important, the rest skipped); anything else is summarised."""
        body = await request.json()
        self.chat_requests.append(body)
        system, *_ = (m["content"] for m in body["messages"] if m["role"] == "system")
        said = " ".join(m["content"] for m in body["messages"] if m["role"] == "user")
        if "triage" in system:
            reply = "IMPORTANT: an invoice to pay" if "invoice" in said.lower() else "SKIP"
        else:
            reply = SUMMARY
        return web.json_response(
            {
                "id": f"chatcmpl-{len(self.chat_requests)}",
                "object": "chat.completion",
                "created": int(datetime.now(UTC).timestamp()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140},
            }
        )

    async def __aenter__(self) -> LoopbackWeb:
        app = web.Application()
        app.router.add_get("/energy/solid-state.html", self._page)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def loopback_web() -> AsyncIterator[LoopbackWeb]:
    """The pages, the feed and the chat endpoint on loopback."""
    async with LoopbackWeb() as served:
        yield served


@pytest.fixture
async def knowledge(tmp_path: Path, loopback_web: LoopbackWeb) -> AsyncIterator[tuple[str, str]]:
    """A worker process with the knowledge part and the task queue (no GPU, engine, voice,
    quality or creative part), summarising with the chat stand-in and allowed to read the
    loopback pages; yields its URL and token."""
    port = free_port()
    command = [
        str(WORKER_PYTHON),
        "-m",
        "hydra_core.worker",
        *("--host", "127.0.0.1", "--port", str(port), "--token", TOKEN, "--name", WORKER_NAME),
        *("--data-dir", str(tmp_path / "data"), "--gpu-backend", "none"),
        *("--docker-host", "none", "--voice", "false", "--quality", "false"),
        *("--creative", "false", "--retry-backoff", "0.2"),
        *("--research-allow-private", "true", "--mail-senders", OPS),
        *("--llm-url", loopback_web.url("/v1"), "--llm-model", "stand-in-8b"),
    ]
    async with worker_process(command, port, tmp_path / "worker.log") as url:
        yield url, TOKEN


@pytest.fixture(autouse=True)
async def assist(hass: HomeAssistant) -> None:
    """Home Assistant with its default conversation agent (which loads the intents)."""
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "conversation", {})


async def _ask(hass: HomeAssistant, text: str) -> str:
    """What the user hears back from the default agent."""
    result = await conversation.async_converse(hass, text, None, Context(), language="en")
    return str(result.response.speech["plain"]["speech"])


async def _setup(hass: HomeAssistant, url: str, token: str) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=WORKER_NAME,
        data={CONF_URL: url, CONF_TOKEN: token},
        options={CONF_NOTIFY_TARGETS: [PHONE]},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def _call(
    hass: HomeAssistant, action: str, data: dict[str, Any], context: Context | None = None
) -> dict[str, Any]:
    answer = await hass.services.async_call(
        DOMAIN, action, data, blocking=True, return_response=True, context=context
    )
    assert answer is not None
    return dict(answer)


def _llm_context(context: Context | None = None) -> llm.LLMContext:
    return llm.LLMContext(
        platform="test",
        context=context or Context(),
        language="en",
        assistant="conversation",
        device_id=None,
    )


async def _tool(hass: HomeAssistant, name: str, **args: Any) -> dict[str, Any]:
    """Call a tool of the "Hydra" LLM API as a conversation agent does."""
    api = await llm.async_get_api(hass, "hydra", _llm_context())
    result = await api.async_call_tool(llm.ToolInput(tool_name=name, tool_args=args))
    assert not result.error, result.data
    return dict(result.data)


async def test_research_search_and_the_sensors(
    hass: HomeAssistant,
    knowledge: tuple[str, str],
    loopback_web: LoopbackWeb,
    sent: Sent,  # noqa: F811
) -> None:
    """A conversation agent queues research on a page; the finding arrives as an event with
    the LLM's summary and its source; the sensors count it; Assist and the action answer from
    what the research stored."""
    url, token = knowledge
    entry = await _setup(hass, url, token)
    assert hass.states.get(CHUNKS).state == "0"
    assert hass.states.get(DOCUMENTS).state == "0"
    assert hass.states.get(FINDINGS_TODAY).state == "0"
    assert hass.states.get(LAST_INGESTION).state == STATE_UNKNOWN
    assert await _ask(hass, f"What do we know about {TOPIC}?") == (
        f"I don't know anything about {TOPIC} yet."
    )

    assert hass.states.get(RESEARCH_PROGRESS).state == STATE_UNKNOWN
    progress = record_states(hass, RESEARCH_PROGRESS)

    finished = async_capture_events(hass, EVENT_RESEARCH_FINISHED)
    page = loopback_web.url("/energy/solid-state.html")
    queued = await _tool(hass, "queue_research", topic=TOPIC, urls=[page])
    assert queued["topic"] == TOPIC
    await wait_until(lambda: len(finished) == 1, within=RESEARCH_TIMEOUT_S)
    # The research's sensor rose with each step the task reported, to 100 % and "done".
    await wait_until(lambda: hass.states.get(RESEARCH_PROGRESS).attributes.get("stage") == "done")
    percents = [float(state.state) for state in progress]
    assert percents == sorted(percents)
    assert percents[-1] == 100
    stages = [state.attributes["stage"] for state in progress]
    assert {"gathering sources", "read 1 of 1 sources", "summarising"} <= set(stages), stages
    assert hass.states.get(RESEARCH_PROGRESS).attributes["topic"] == TOPIC

    data = finished[0].data
    assert data["entry_id"] == entry.entry_id
    assert data["topic"] == TOPIC
    assert data["task_id"] == queued["task_id"]
    assert data["summary"] == SUMMARY
    assert data["method"] == "llm"
    assert [source["url"] for source in data["sources"]] == [page]
    assert data["sources"][0]["title"] == PAGE_TITLE

    await wait_until(lambda: hass.states.get(FINDINGS_TODAY).state == "1")
    assert int(hass.states.get(CHUNKS).state) >= 1
    assert hass.states.get(DOCUMENTS).state == "1"  # the page the research read
    assert hass.states.get(LAST_INGESTION).state != STATE_UNKNOWN

    answer = await _ask(hass, f"what do we know about {TOPIC}")
    assert answer.endswith(f"That is from {PAGE_TITLE}.")
    assert "sulfide" in answer.lower()

    found = await _call(hass, "search_knowledge", {"query": "how fast do sulfide cells charge"})
    assert found["results"][0]["url"] == page
    assert found["results"][0]["title"] == PAGE_TITLE
    assert "twelve minutes" in found["results"][0]["text"]

    briefing = await _call(hass, "briefing", {})
    assert briefing["sections"]["research"] == (
        "Research finished on 1 topic.\nSolid-state batteries: Sulfide electrolytes let prototype "
        "solid-state cells charge from ten to eighty percent in twelve minutes without dendrites."
    )


async def test_remember_recall_and_forget(hass: HomeAssistant, knowledge: tuple[str, str]) -> None:
    """What is said in the first person is read back in the second; a memory can be listed,
    forgotten for good, and forgetting it twice is a clear mistake."""
    await _setup(hass, *knowledge)
    assert await _ask(hass, "Remember that I prefer oat milk in my coffee.") == (
        "I'll remember that you prefer oat milk in your coffee."
    )
    assert await _ask(hass, "what do you remember about coffee") == (
        "I remember that you prefer oat milk in your coffee."
    )
    assert await _ask(hass, "Don't forget that the bins go out on Tuesday.") == (
        "I'll remember that the bins go out on Tuesday."
    )
    # Without a topic, the newest first.
    assert await _ask(hass, "What do you remember?") == (
        "I remember that the bins go out on Tuesday and that you prefer oat milk in your coffee."
    )

    # Asked about coffee, only what is about coffee; asked nothing, the newest first.
    [memory] = (await _call(hass, "recall", {"query": "coffee", "limit": 2}))["memories"]
    bins, _ = (await _call(hass, "recall", {"limit": 2}))["memories"]
    assert memory["text"] == "I prefer oat milk in my coffee"
    assert memory["kind"] == "preference"
    assert memory["said_by"]["type"] == "automation"
    assert (bins["text"], bins["kind"]) == ("the bins go out on Tuesday", "fact")

    for forgotten in (bins, memory):
        assert await _call(hass, "forget", {"memory_id": forgotten["memory_id"]}) == {
            "memory_id": forgotten["memory_id"],
            "forgotten": True,
        }
    assert await _ask(hass, "what do you remember about coffee") == (
        "I don't remember anything about coffee."
    )
    with pytest.raises(ServiceValidationError, match="Hydra does not remember that"):
        await _call(hass, "forget", {"memory_id": memory["memory_id"]})

    # Anyone may have Hydra remember, and forget: no administrator needed.
    bob = await hass.auth.async_create_user("Bob", group_ids=[GROUP_ID_USER])
    as_bob = Context(user_id=bob.id)
    said = await _call(hass, "remember", {"text": "I'm vegetarian"}, as_bob)
    assert (said["kind"], said["said_by"]) == (
        "fact",
        {"type": "user", "id": bob.id, "name": "Bob"},
    )
    await _call(hass, "forget", {"memory_id": said["memory_id"]}, as_bob)
    assert (await _call(hass, "recall", {}))["memories"] == []


async def test_the_hydra_llm_api(hass: HomeAssistant, knowledge: tuple[str, str]) -> None:
    """A conversation agent that was given the "Hydra" API sees Hydra's intents and the
    knowledge tools, and remembers, recalls and forgets through them."""
    await _setup(hass, *knowledge)
    api = await llm.async_get_api(hass, "hydra", _llm_context())
    names = {tool.name for tool in api.tools}
    assert {
        "search_knowledge",
        "queue_research",
        "remember",
        "recall",
        "forget",
        "feed_digest",
        "HydraGpuTemperature",
        "HydraBriefing",
    } <= names
    assert "Search the knowledge base" in api.api_prompt

    memory = await _tool(hass, "remember", text="The spare key is under the blue pot")
    assert memory["kind"] == "fact"
    recalled = await _tool(hass, "recall", query="where is the spare key")
    assert [item["memory_id"] for item in recalled["memories"]] == [memory["memory_id"]]
    assert await _tool(hass, "forget", memory_id=memory["memory_id"]) == {
        "memory_id": memory["memory_id"],
        "forgotten": True,
    }
    assert (await _tool(hass, "recall"))["memories"] == []

    with pytest.raises(HomeAssistantError, match="blank"):
        await api.async_call_tool(llm.ToolInput(tool_name="remember", tool_args={"text": " "}))
    with pytest.raises(probatio.Invalid):
        await api.async_call_tool(llm.ToolInput(tool_name="remember", tool_args={}))

    # Each tool's arguments as an agent sends them to its model (Ollama's way).
    schemas = {
        tool.name: probatio.to_openapi(
            tool.parameters, custom_serializer=api.custom_serializer, openapi_version="3.1.0"
        )
        for tool in api.tools
    }
    assert schemas["queue_research"]["properties"]["urls"]["items"] == {"type": "string"}
    assert schemas["search_knowledge"]["required"] == ["query"]
    assert schemas["search_knowledge"]["properties"]["query"]["type"] == "string"


async def _sent_on(entry: MockConfigEntry) -> None:
    """Wait until Home Assistant has sent the mail and feed entries fired so far to the worker
    (and notified what that asked for)."""
    while pending := [
        task
        for task in entry._background_tasks
        if task.get_name().startswith(("hydra mail", "hydra feed entry", "hydra notify mail"))
    ]:
        await asyncio.gather(*pending)


def _mail(sender: str, subject: str, text: str, *, initial: bool = True) -> dict[str, Any]:
    """An ``imap_content`` event's data as the imap integration fires it (text and headers are
    its default message data; the date is the mail's own, a datetime)."""
    return {
        "entry_id": "imap-entry",
        "server": "imap.example.com",
        "username": "ada@example.com",
        "search": "UnSeen UnDeleted",
        "folder": "INBOX",
        "initial": initial,
        "date": datetime(2026, 12, 7, 6, 30, tzinfo=UTC),
        "sender": sender,
        "subject": subject,
        "uid": "42",
        "parts": {},
        "text": text,
        "headers": {"From": (sender,), "Subject": (subject,)},
    }


async def test_mail_is_flagged_and_urgent_mail_reaches_the_phone(
    hass: HomeAssistant,
    knowledge: tuple[str, str],
    loopback_web: LoopbackWeb,
    sent: Sent,  # noqa: F811
) -> None:
    """Each new mail Home Assistant's imap integration sees goes to the worker, which flags
    it by its rules or asks the language model: an urgent one reaches the phone once, an
    important one waits for the briefing, others nobody; a mail seen again is not sent again."""
    entry = await _setup(hass, *knowledge)
    for mail in (
        _mail("news@shop.example", "Weekly offers", "Deals on garden chairs."),
        _mail(f"alerts@{OPS}", "URGENT: the server room is flooding", "Water on the floor."),
        _mail("billing@power.example", "Your invoice is overdue", "Please pay invoice 42."),
    ):
        hass.bus.async_fire("imap_content", mail)
    await _sent_on(entry)
    assert len(sent) == 1
    target, message, title, data = sent[0]
    assert (target, title) == (PHONE, f"Urgent mail ({WORKER_NAME})")
    assert message == (f"From alerts@{OPS}: URGENT: the server room is flooding (from {OPS}).")
    assert data is not None
    assert data["tag"].startswith(f"hydra-mail-{entry.entry_id}-")
    # The offers and the invoice went to the language model; the flood was the rules'.
    triaged = [
        body["messages"][-1]["content"]
        for body in loopback_web.chat_requests
        if "triage" in body["messages"][0]["content"]
    ]
    assert sorted(text.splitlines()[0] for text in triaged) == [
        "From: billing@power.example",
        "From: news@shop.example",
    ]

    # The imap integration fires the newest mail again when nothing newer came.
    hass.bus.async_fire(
        "imap_content",
        _mail(f"alerts@{OPS}", "URGENT: still flooding", "More water.", initial=False),
    )
    await _sent_on(entry)
    assert len(sent) == 1

    briefing = await _call(hass, "briefing", {})
    assert briefing["sections"]["mail"] == (
        "2 mails look important.\n"
        f"Urgent: From alerts@{OPS}: URGENT: the server room is flooding (from {OPS}).\n"
        "From billing@power.example: Your invoice is overdue (the language model: an invoice "
        "to pay)."
    )


async def test_feedreader_entries_reach_the_knowledge_base(
    hass: HomeAssistant, knowledge: tuple[str, str], loopback_web: LoopbackWeb
) -> None:
    """An entry of Home Assistant's feedreader (the feedparser entry it fires, with its
    feed_url) is ingested: the digest names it, Assist finds it, the briefing lists it."""
    entry = await _setup(hass, *knowledge)
    assert await _ask(hass, "What's new in my feeds?") == (
        "Nothing new in your feeds since yesterday."
    )
    published = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    parsed = feedparser.parse(FEED.format(published=published))
    (item,) = parsed.entries
    item["feed_url"] = loopback_web.url("/energy.xml")
    hass.bus.async_fire("feedreader", item)
    await _sent_on(entry)

    digest = f"1 new entry in your feeds. Most interesting: {FEED_ENTRY_TITLE} (127.0.0.1)."
    # Whisper often hears "feeds" as "feed".
    assert await _ask(hass, "What's new in my feed?") == digest
    assert "Heat pump sales overtook gas boiler sales" in await _ask(
        hass, "what do we know about heat pumps"
    )
    briefing = await _call(hass, "briefing", {})
    assert briefing["sections"]["feeds"] == digest


async def test_a_worker_without_a_knowledge_base(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """No knowledge sensors; the actions, Assist and the LLM API say there is no knowledge
    base."""
    assert hass.states.get("sensor.gpubox_knowledge_chunks") is None
    with pytest.raises(ServiceValidationError, match="has no knowledge base"):
        await _call(hass, "remember", {"text": "the spare key is under the blue pot"})
    assert (
        await _ask(hass, "what do we know about tides") == "No Hydra worker has a knowledge base."
    )
    assert await _ask(hass, "remember that the spare key is under the blue pot") == (
        "No Hydra worker has a knowledge base."
    )
    api = await llm.async_get_api(hass, "hydra", _llm_context())
    assert "search_knowledge" not in {tool.name for tool in api.tools}
    assert "HydraGpuTemperature" in {tool.name for tool in api.tools}


async def test_a_finding_made_while_the_stream_was_down_is_announced_late(
    hass: HomeAssistant, routine_worker: RoutineWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Research that ends while Home Assistant cannot hear the worker is announced once the
    event stream is back: late, once, never lost."""
    entry = entry_for(routine_worker)
    await setup_entry(hass, entry)
    knowledge = entry.runtime_data.parts["knowledge"]
    finished = async_capture_events(hass, EVENT_RESEARCH_FINISHED)
    monkeypatch.setattr("custom_components.hydra.event_stream.RECONNECT_DELAYS_S", (5,))
    await routine_worker.restart()
    await wait_until(lambda: not knowledge.pushed)

    assert routine_worker.scheduler is not None
    task = await routine_worker.scheduler.async_enqueue(
        "research", {"topic": "tides"}, actor=Actor(type="api")
    )
    for _ in range(400):
        if (await routine_worker.scheduler.async_get(task.id)).state == "succeeded":
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail("the research did not end while the stream was down")
    assert finished == []

    await wait_until(lambda: len(finished) == 1, within=10)
    assert (finished[0].data["topic"], finished[0].data["task_id"]) == ("tides", task.id)
    await hass.async_block_till_done()
    assert len(finished) == 1
