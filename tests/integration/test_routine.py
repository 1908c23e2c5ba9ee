"""The daily routine in a real Home Assistant against a real worker on loopback: people leaving
and coming home move the GPUs' power profiles (seen in the fake NVML) and queue research;
bedtime turns everything up; the 07:00 briefing goes out through real notify services and a
Discord webhook on a loopback server, built from the worker's task history, a local calendar
and a template weather entity; a phone's button retries a failed task."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.hydra.const import (
    ACTION_PAUSE,
    ACTION_RETRY_FAILED,
    CONF_ARRIVE_ENABLED,
    CONF_AWAY_ENABLED,
    CONF_BEDTIME,
    CONF_BEDTIME_ENABLED,
    CONF_BEDTIME_ENTITIES,
    CONF_BEDTIME_TIME,
    CONF_BRIEFING,
    CONF_BRIEFING_ENABLED,
    CONF_BRIEFING_HOURS,
    CONF_BRIEFING_TARGETS,
    CONF_BRIEFING_TIME,
    CONF_CALENDARS,
    CONF_DISCORD_WEBHOOK,
    CONF_PERSONS,
    CONF_PRESENCE,
    CONF_RESEARCH_TOPICS,
    CONF_WEATHER,
    DOMAIN,
    EVENT_RESEARCH_FINISHED,
    EVENT_ROUTINE,
    EVENT_TASK_FAILED,
)
from hydra_core.models import Actor
from hydra_core.power.client import PowerClient
from hydra_core.scheduler.client import TasksClient
from tests.fake_nvml import FakeNvml

from .conftest import RoutineWorker, entry_for, wait_until
from .notify import DESK, Sent, async_setup_recording_notify

PHONE = "notify.mobile_app_pixel"
BROKEN = "notify.broken_speaker"
TOPIC = "mixture of experts"
WATTS = 1000


@pytest.fixture
async def sent(hass: HomeAssistant) -> Sent:
    """notify.mobile_app_pixel and notify.broken_speaker (legacy) and notify.desk (entity)."""
    return await async_setup_recording_notify(
        hass, {"mobile_app_pixel": False, "broken_speaker": True}
    )


@pytest.fixture
async def people(hass: HomeAssistant) -> None:
    """Alice and Bob, each followed by a phone's device tracker; Alice is home."""
    hass.states.async_set("device_tracker.alice_phone", "home", {"source_type": "gps"})
    hass.states.async_set("device_tracker.bob_phone", "not_home", {"source_type": "gps"})
    assert await async_setup_component(
        hass,
        "person",
        {
            "person": [
                {"id": "alice", "name": "Alice", "device_trackers": ["device_tracker.alice_phone"]},
                {"id": "bob", "name": "Bob", "device_trackers": ["device_tracker.bob_phone"]},
            ]
        },
    )
    await hass.async_block_till_done()
    assert hass.states.get("person.alice").state == "home"


def _limits(nvml: FakeNvml) -> list[float]:
    return [gpu.limit_mw / WATTS for gpu in nvml.gpus]


async def _setup(
    hass: HomeAssistant, worker: RoutineWorker, options: dict[str, Any]
) -> MockConfigEntry:
    entry = entry_for(worker)
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, options=options)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


PRESENCE = {
    CONF_PRESENCE: {
        CONF_PERSONS: ["person.alice", "person.bob"],
        CONF_AWAY_ENABLED: True,
        CONF_RESEARCH_TOPICS: [TOPIC],
        CONF_ARRIVE_ENABLED: True,
    },
    CONF_BRIEFING: {CONF_BRIEFING_TARGETS: [PHONE]},
}


@pytest.mark.usefixtures("people")
async def test_leaving_and_arriving_move_the_gpus_and_queue_research(
    hass: HomeAssistant, routine_worker: RoutineWorker, nvml: FakeNvml, sent: Sent
) -> None:
    """Everyone leaves: eco on both cards and research queued. The first one back: each card
    gets its profile from before (balanced on GPU 0, the default on GPU 1) and a welcome."""
    entry = await _setup(hass, routine_worker, PRESENCE)
    finished = async_capture_events(hass, EVENT_RESEARCH_FINISHED)
    await hass.services.async_call(
        DOMAIN, "set_power_profile", {"profile": "balanced", "gpu": [0]}, blocking=True
    )
    assert _limits(nvml) == [360, 450]

    hass.states.async_set("device_tracker.alice_phone", "not_home", {"source_type": "gps"})
    await wait_until(lambda: _limits(nvml) == [270, 270])
    # The worker's own research ran on the topic (its knowledge base is empty: it says so).
    await wait_until(lambda: [event.data["topic"] for event in finished] == [TOPIC], within=30)
    assert finished[0].data["summary"] == f"Nothing was found on {TOPIC}."

    hass.states.async_set("device_tracker.bob_phone", "home", {"source_type": "gps"})
    await wait_until(lambda: _limits(nvml) == [360, 450])
    await wait_until(lambda: len(sent) == 1)
    target, message, title, _ = sent[0]
    assert target == PHONE
    assert title == f"Welcome home ({entry.title})"
    assert "While you were out, 1 task succeeded." in message
    assert "back to balanced and full power" in message

    # Alice coming back too changes nothing: someone was home already.
    hass.states.async_set("device_tracker.alice_phone", "home", {"source_type": "gps"})
    await hass.async_block_till_done()
    assert len(sent) == 1


@pytest.mark.usefixtures("people")
async def test_steps_switched_off_do_nothing_but_the_actions_still_work(
    hass: HomeAssistant, routine_worker: RoutineWorker, nvml: FakeNvml
) -> None:
    """With the away step off, the house emptying leaves the GPUs alone; the action works."""
    options = {
        CONF_PRESENCE: {**PRESENCE[CONF_PRESENCE], CONF_AWAY_ENABLED: False},
    }
    entry = await _setup(hass, routine_worker, options)
    finished = async_capture_events(hass, EVENT_RESEARCH_FINISHED)
    hass.states.async_set("device_tracker.alice_phone", "not_home", {"source_type": "gps"})
    await hass.async_block_till_done()
    assert _limits(nvml) == [450, 450]
    assert await TasksClient(entry.runtime_data.client).async_tasks() == []

    answer = await hass.services.async_call(
        DOMAIN,
        "leave_home",
        {"topics": ["quantised attention"]},
        blocking=True,
        return_response=True,
    )
    assert answer["power"] == "eco"
    assert len(answer["research_tasks"]) == 1
    assert _limits(nvml) == [270, 270]
    await wait_until(
        lambda: [event.data["topic"] for event in finished] == ["quantised attention"], within=30
    )


async def test_leaving_without_a_research_kind_still_saves_power(
    hass: HomeAssistant, nvml: FakeNvml, tmp_path: Path
) -> None:
    """A worker without the knowledge part, so without the research kind: the GPUs still go
    to eco, and the action says clearly what could not be done."""
    worker = RoutineWorker(nvml, data_dir=tmp_path, with_research=False)
    await worker.start()
    try:
        await _setup(hass, worker, PRESENCE)
        events = []
        hass.bus.async_listen(EVENT_ROUTINE, events.append)
        with pytest.raises(HomeAssistantError, match="research on mixture of experts"):
            await hass.services.async_call(DOMAIN, "leave_home", {}, blocking=True)
        assert _limits(nvml) == [270, 270]
        await hass.async_block_till_done()
        assert events[-1].data["power"] == "eco"
        assert events[-1].data["errors"]
    finally:
        await worker.stop()


async def test_bedtime_by_time_and_by_entity(
    hass: HomeAssistant, routine_worker: RoutineWorker, nvml: FakeNvml
) -> None:
    """At the bedtime hour, or when the sleep switch turns on: full power, work resumed."""
    hass.states.async_set("input_boolean.sleeping", "off")
    entry = await _setup(
        hass,
        routine_worker,
        {
            CONF_BEDTIME: {
                CONF_BEDTIME_ENABLED: True,
                CONF_BEDTIME_TIME: "23:30:00",
                CONF_BEDTIME_ENTITIES: ["input_boolean.sleeping"],
            }
        },
    )
    client = entry.runtime_data.client
    actor = Actor(type="user", name="test")
    await PowerClient(client).async_set_power(actor=actor, profile="eco")
    await TasksClient(client).async_update_scheduler(paused=True)
    await wait_until(lambda: _limits(nvml) == [270, 270])

    hass.states.async_set("input_boolean.sleeping", "on")
    await wait_until(lambda: _limits(nvml) == [450, 450])
    await wait_until(lambda: not entry.runtime_data.parts["tasks"].data.scheduler.settings.paused)

    await PowerClient(client).async_set_power(actor=actor, profile="eco")
    await TasksClient(client).async_update_scheduler(paused=True)
    await wait_until(lambda: _limits(nvml) == [270, 270])
    bedtime = dt_util.now().replace(hour=23, minute=30, second=0, microsecond=0)
    async_fire_time_changed(hass, bedtime + timedelta(days=1))
    await wait_until(lambda: _limits(nvml) == [450, 450])
    await wait_until(lambda: not entry.runtime_data.parts["tasks"].data.scheduler.settings.paused)


@dataclass
class DiscordServer:
    """A loopback server that answers like a Discord webhook (204) and keeps the posts."""

    posts: list[dict[str, Any]] = field(default_factory=list)
    status: int = 204
    url: str = ""


@pytest.fixture
async def discord() -> AsyncIterator[DiscordServer]:
    """Discord's webhook, on 127.0.0.1."""
    server = DiscordServer()

    async def post(request: web.Request) -> web.Response:
        server.posts.append(await request.json())
        return web.Response(status=server.status)

    app = web.Application()
    app.router.add_post("/api/webhooks/123/secret-token", post)
    # No access log: it would print the webhook's path (its token) into the captured log.
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    server.url = f"http://127.0.0.1:{port}/api/webhooks/123/secret-token"
    yield server
    await runner.cleanup()


async def _calendar_with_dentist(hass: HomeAssistant, config_dir: Path) -> str:
    """A real local calendar with two events today (its .ics file in ``config_dir``)."""
    (config_dir / ".storage").mkdir(parents=True)
    hass.config.config_dir = str(config_dir)
    calendar = MockConfigEntry(domain="local_calendar", data={"calendar_name": "Family"})
    calendar.add_to_hass(hass)
    assert await hass.config_entries.async_setup(calendar.entry_id)
    await hass.async_block_till_done()
    today = dt_util.start_of_local_day()
    for summary, start, end in (
        ("Dentist", today + timedelta(hours=9, minutes=30), today + timedelta(hours=10)),
        ("Mum's birthday", None, None),
    ):
        data: dict[str, Any] = {"summary": summary}
        if start is None:
            data |= {"start_date": today.date(), "end_date": today.date() + timedelta(days=1)}
        else:
            data |= {"start_date_time": start, "end_date_time": end}
        await hass.services.async_call(
            "calendar",
            "create_event",
            data,
            target={"entity_id": "calendar.family"},
            blocking=True,
        )
    return "calendar.family"


async def _template_weather(hass: HomeAssistant) -> str:
    assert await async_setup_component(
        hass,
        "template",
        {
            "template": [
                {
                    "weather": [
                        {
                            "name": "Home",
                            "condition": "partlycloudy",
                            "temperature": "{{ 8 }}",
                            "humidity": "{{ 60 }}",
                            "temperature_unit": "°C",
                            "forecast_daily": (
                                "{{ [{'datetime': '2026-11-26T12:00:00+00:00',"
                                " 'condition': 'rainy', 'temperature': 12, 'templow': 4}] }}"
                            ),
                        }
                    ]
                }
            ]
        },
    )
    await hass.async_block_till_done()
    return "weather.home"


async def _run_tasks(worker: RoutineWorker, entry: MockConfigEntry) -> None:
    """One research task that succeeds and one task that fails, through the real queue."""
    client = entry.runtime_data.client
    actor = Actor(type="user", name="test")
    await TasksClient(client).async_queue_task("research", {"topic": TOPIC}, actor=actor)
    await TasksClient(client).async_queue_task("test", {"outcome": "fail"}, actor=actor)

    async def finished() -> int:
        tasks = await TasksClient(client).async_tasks()
        return sum(task.state in ("succeeded", "failed") for task in tasks)

    for _ in range(200):
        if await finished() == 2:
            return
        await worker.scheduler.async_dispatch()
    pytest.fail("the tasks did not finish")


async def test_morning_briefing_at_seven(
    hass: HomeAssistant,
    routine_worker: RoutineWorker,
    sent: Sent,
    discord: DiscordServer,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """At 07:00 the briefing reaches the phone (with its buttons), the desk and Discord, with
    every section; the broken speaker fails alone, and the webhook's URL is never logged."""
    calendar = await _calendar_with_dentist(hass, tmp_path / "config")
    weather = await _template_weather(hass)
    entry = await _setup(
        hass,
        routine_worker,
        {
            CONF_BRIEFING: {
                CONF_BRIEFING_ENABLED: True,
                CONF_BRIEFING_TIME: "07:00:00",
                CONF_BRIEFING_HOURS: 12,
                CONF_BRIEFING_TARGETS: [PHONE, DESK, BROKEN],
                CONF_CALENDARS: [calendar],
                CONF_WEATHER: weather,
                CONF_DISCORD_WEBHOOK: discord.url,
            }
        },
    )
    await _run_tasks(routine_worker, entry)
    await wait_until(lambda: routine_worker.nvml.calls > 0)

    seven = dt_util.now().replace(hour=7, minute=0, second=0, microsecond=0)
    async_fire_time_changed(hass, seven + timedelta(days=1))
    await wait_until(lambda: len(sent) == 2 and len(discord.posts) == 1, within=10)

    by_target = {target: (message, title, data) for target, message, title, data in sent}
    message, title, data = by_target[PHONE]
    assert title == f"{entry.title} briefing"
    assert "Overnight, 2 tasks ended: 1 succeeded and 1 failed." in message
    assert f"Done: research on {TOPIC} in" in message
    assert "Failed: test (the test asked this task to fail)." in message
    assert "The GPUs peaked at 61 °C on the RTX 4090 and used" in message
    assert "Today: Dentist at 09:30 and all day, Mum's birthday." in message
    assert "The weather is partly cloudy at 8 °C; today between 4 and 12 °C." in message
    assert [action["title"] for action in data["actions"]] == [
        "Retry failed tasks",
        "Pause autonomous work",
    ]
    assert by_target[DESK][0] == message
    assert discord.posts[0]["content"].startswith(f"**{entry.title} briefing**")
    assert discord.posts[0]["allowed_mentions"] == {"parse": []}
    assert "Dentist at 09:30" in discord.posts[0]["content"]
    assert "the speaker is offline" in caplog.text
    assert "secret-token" not in caplog.text


async def test_briefing_action_answers_and_tells_what_failed(
    hass: HomeAssistant, routine_worker: RoutineWorker, sent: Sent, discord: DiscordServer
) -> None:
    """``hydra.briefing`` answers with the text and sections; with send, it says who got it
    and who did not (the Discord webhook answering 500 names no URL)."""
    entry = await _setup(
        hass,
        routine_worker,
        {
            CONF_BRIEFING: {
                CONF_BRIEFING_TARGETS: [PHONE, BROKEN],
                CONF_DISCORD_WEBHOOK: discord.url,
            }
        },
    )
    await _run_tasks(routine_worker, entry)
    answer = await hass.services.async_call(
        DOMAIN, "briefing", {}, blocking=True, return_response=True
    )
    assert set(answer["sections"]) >= {"work", "health"}
    assert "calendar" not in answer["sections"]
    assert answer["text"].startswith("Good ")
    assert sent == []

    discord.status = 500
    answer = await hass.services.async_call(
        DOMAIN, "briefing", {"send": True, "hours": 2}, blocking=True, return_response=True
    )
    assert answer["delivered"] == [PHONE]
    assert set(answer["failed"]) == {BROKEN, "Discord webhook"}
    assert "500" in answer["failed"]["Discord webhook"]
    assert "secret-token" not in str(answer)


async def test_phone_buttons_retry_and_pause(
    hass: HomeAssistant, routine_worker: RoutineWorker, sent: Sent
) -> None:
    """Pressing "Retry failed tasks" on the phone queues the failed task again and says so;
    "Pause autonomous work" pauses the queue."""
    entry = await _setup(hass, routine_worker, {CONF_BRIEFING: {CONF_BRIEFING_TARGETS: [PHONE]}})
    await _run_tasks(routine_worker, entry)
    await hass.services.async_call(DOMAIN, "briefing", {"send": True}, blocking=True)
    _, _, _, data = sent[-1]
    retry = next(
        a["action"] for a in data["actions"] if a["action"].startswith(ACTION_RETRY_FAILED)
    )
    failed = [
        t for t in await TasksClient(entry.runtime_data.client).async_tasks() if t.state == "failed"
    ]
    assert len(failed) == 1

    failures = async_capture_events(hass, EVENT_TASK_FAILED)
    hass.bus.async_fire("mobile_app_notification_action", {"action": retry})
    await wait_until(lambda: len(sent) == 2)
    assert sent[-1][1] == f"Queued again: task {failed[0].id}."
    # It ran again (and, as its payload asks, failed again).
    await wait_until(lambda: [event.data["task_id"] for event in failures] == [failed[0].id])

    hass.bus.async_fire(
        "mobile_app_notification_action", {"action": f"{ACTION_PAUSE}:{entry.entry_id}"}
    )
    await wait_until(lambda: len(sent) == 3)
    assert sent[-1][1] == "Autonomous work is paused; running tasks will finish."
    assert (await TasksClient(entry.runtime_data.client).async_scheduler()).settings.paused

    # Someone else's phone action is not Hydra's business.
    hass.bus.async_fire("mobile_app_notification_action", {"action": "OPEN_GARAGE"})
    await hass.async_block_till_done()
    assert len(sent) == 3


async def test_briefing_button_and_assist(
    hass: HomeAssistant, routine_worker: RoutineWorker, sent: Sent
) -> None:
    """The worker's "Send briefing" button sends it (and says so when there is nowhere to
    send it); Assist reads it when asked."""
    entry = await _setup(hass, routine_worker, {})
    with pytest.raises(ServiceValidationError, match="nowhere to go"):
        await hass.services.async_call(
            "button", "press", {"entity_id": "button.gpubox_send_briefing"}, blocking=True
        )
    hass.config_entries.async_update_entry(
        entry, options={CONF_BRIEFING: {CONF_BRIEFING_TARGETS: [DESK]}}
    )
    await hass.async_block_till_done()
    await _run_tasks(routine_worker, entry)
    await hass.services.async_call(
        "button", "press", {"entity_id": "button.gpubox_send_briefing"}, blocking=True
    )
    assert [target for target, *_ in sent] == [DESK]

    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "conversation", {})
    await hass.async_block_till_done()
    result = await hass.services.async_call(
        "conversation",
        "process",
        {"text": "give me my briefing", "language": "en"},
        blocking=True,
        return_response=True,
    )
    speech = result["response"]["speech"]["plain"]["speech"]
    assert "Overnight, 2 tasks ended: 1 succeeded and 1 failed." in speech
    assert "\n" not in speech


async def test_options_refuse_unknown_people_and_keep_the_rest(
    hass: HomeAssistant, routine_worker: RoutineWorker, people: None
) -> None:
    """A person entity that does not exist is refused, naming it; nothing is saved."""
    entry = await _setup(hass, routine_worker, {})
    result = await hass.config_entries.options.async_init(entry.entry_id)
    user_input = {
        "scan_interval": 30,
        CONF_PRESENCE: {CONF_PERSONS: ["person.alice", "person.carol"]},
    }
    result = await hass.config_entries.options.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unknown_entity"}
    assert result["description_placeholders"] == {"entities": "person.carol"}
    assert entry.options == {}

    user_input[CONF_PRESENCE][CONF_PERSONS] = ["person.alice"]
    user_input[CONF_BRIEFING] = {CONF_DISCORD_WEBHOOK: "not a url"}
    result = await hass.config_entries.options.async_configure(result["flow_id"], user_input)
    assert result["errors"] == {CONF_BRIEFING: "invalid_webhook"}

    user_input[CONF_BRIEFING] = {CONF_DISCORD_WEBHOOK: "https://discord.com/api/webhooks/1/x"}
    result = await hass.config_entries.options.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_PRESENCE][CONF_PERSONS] == ["person.alice"]
    assert entry.options[CONF_BRIEFING]["briefing_time"] == "07:00:00"


async def test_diagnostics_redact_the_webhook(
    hass: HomeAssistant, routine_worker: RoutineWorker, hass_client: Any
) -> None:
    """The Discord webhook (a secret) never reaches diagnostics."""
    from pytest_homeassistant_custom_component.components.diagnostics import (  # noqa: PLC0415
        get_diagnostics_for_config_entry,
    )

    webhook = "https://discord.com/api/webhooks/1/very-secret"
    entry = await _setup(hass, routine_worker, {CONF_BRIEFING: {CONF_DISCORD_WEBHOOK: webhook}})
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert "very-secret" not in str(diagnostics)
    assert diagnostics["entry"]["options"][CONF_BRIEFING][CONF_DISCORD_WEBHOOK] == "**REDACTED**"
