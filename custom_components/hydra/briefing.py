"""The morning briefing: last night's work, the chapters, the research that finished, the feeds,
flagged mail, the cluster's health, the problems the worker sees coming, open repairs, today's
calendar and the weather, as text that reads well aloud; sent to phones, notify entities and
Discord."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from homeassistant.const import ATTR_ENTITY_ID, STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.translation import async_get_translations
from homeassistant.util import dt as dt_util
from homeassistant.util.json import JsonValueType
import probatio

from hydra_core.client import HydraError
from hydra_core.creative.models import ChapterStatus
from hydra_core.models import AuditEntry
from hydra_core.scheduler.client import TasksClient
from hydra_core.scheduler.models import NightReport, Task

from .const import ACTION_PAUSE, ACTION_RETRY_FAILED, LOGGER
from .data import HydraConfigEntry
from .notify import phone_action_id
from .parts.creative.coordinator import HydraCreativeCoordinator
from .parts.creative.describe import DOING, chapter_name, made
from .parts.forecasts import HydraForecastCoordinator, coming_up, issue_prefix
from .parts.knowledge.briefing import async_knowledge_sections
from .parts.tasks.coordinator import HydraTaskCoordinator
from .parts.tasks.describe import of_chapter
from .wording import duration, energy, join, plural, spoken_gpu_names, temperature, times

# Per kind of thing, how many are named before "and N more".
NAMED: Final = 4
ERROR_CHARS: Final = 120
# The newest chapters read for the briefing: more than a night's worth.
CHAPTERS_READ: Final = 50

SECTION_TITLES: Final = {
    "work": "Overnight work",
    "creative": "Creative",
    "research": "Research",
    "feeds": "Feeds",
    "mail": "Mail",
    "health": "Cluster health",
    "coming_up": "Coming up",
    "alerts": "Alerts",
    "calendar": "Today",
    "weather": "Weather",
}
CONDITIONS: Final = {
    "clear-night": "clear",
    "cloudy": "cloudy",
    "exceptional": "exceptional",
    "fog": "foggy",
    "hail": "hail",
    "lightning": "thunderstorms",
    "lightning-rainy": "thunderstorms with rain",
    "partlycloudy": "partly cloudy",
    "pouring": "pouring rain",
    "rainy": "rain",
    "snowy": "snow",
    "snowy-rainy": "sleet",
    "sunny": "sunny",
    "windy": "windy",
    "windy-variant": "windy and cloudy",
}


@dataclass(frozen=True, slots=True)
class Briefing:
    """One briefing: its sections (those with something to say, in order) and its span."""

    title: str
    since: datetime
    until: datetime
    greeting: str
    sections: dict[str, str]
    failed_tasks: tuple[int, ...] = ()
    paused: bool | None = None

    @property
    def text(self) -> str:
        """The whole briefing as plain sentences, one paragraph a section."""
        return "\n\n".join([self.greeting, *self.sections.values()])

    def as_response(self) -> dict[str, Any]:
        """The action's answer."""
        return {
            "text": self.text,
            "sections": dict(self.sections),
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "failed_tasks": list(self.failed_tasks),
        }


async def async_compose(
    hass: HomeAssistant,
    entry: HydraConfigEntry,
    *,
    hours: float,
    calendars: Sequence[str] = (),
    weather: str | None = None,
) -> Briefing:
    """Ask the worker what happened in the last ``hours`` and gather the rest from Home
    Assistant. A worker that does not answer is an alert, not a failure of the briefing."""
    until = dt_util.now()
    since = until - timedelta(hours=hours)
    data = entry.runtime_data
    sections: dict[str, str] = {}
    report: NightReport | None = None
    alerts: list[str] = []
    try:
        report = await TasksClient(data.client).async_report(since.timestamp())
    except HydraError as err:
        LOGGER.warning("The briefing could not read %s: %s", entry.title, err)
        alerts.append(f"{entry.title} did not answer, so there is no news of last night's work")
    tasks = data.part(HydraTaskCoordinator)
    paused = None if tasks is None else tasks.data.scheduler.settings.paused
    if report is not None and (work := _work(report, paused=paused)):
        sections["work"] = work
    if creative := _creative(await _async_chapters(entry), since.timestamp()):
        sections["creative"] = creative
    sections.update(await async_knowledge_sections(entry, since.timestamp()))
    if report is not None and (health := _health(hass, report)):
        sections["health"] = health
    if upcoming := coming_up(data.part(HydraForecastCoordinator)):
        sections["coming_up"] = upcoming
    alerts.extend(await _async_repairs(hass, skip=issue_prefix(entry)))
    alerts.extend(_alert_entities(hass))
    if alerts:
        sections["alerts"] = _alerts(alerts)
    if calendars and (today := await _async_calendar(hass, calendars, until)):
        sections["calendar"] = today
    if weather and (forecast := await _async_weather(hass, weather)):
        sections["weather"] = forecast
    own = _own_tasks(report) if report else []
    failed = tuple(task.id for task in own if task.state == "failed")
    return Briefing(
        title=f"{entry.title} briefing",
        since=since,
        until=until,
        greeting=_greeting(until, nothing=not sections),
        sections=sections,
        failed_tasks=failed,
        paused=paused,
    )


def _greeting(now: datetime, *, nothing: bool) -> str:
    part = "morning" if now.hour < 12 else "afternoon" if now.hour < 18 else "evening"
    text = f"Good {part}."
    if nothing:
        text += " Nothing happened overnight and nothing needs you."
    return text


def task_name(task: Task) -> str:
    """A task as people say it: "research on solid-state batteries", "maintenance"."""
    kind = task.kind.replace("_", " ")
    for key in ("topic", "chapter", "character", "name", "title"):
        if isinstance(value := task.payload.get(key), (str, int)) and str(value).strip():
            return f"{kind} on {value}" if key == "topic" else f"{kind} for {key} {value}"
    return kind


def _error(task: Task) -> str:
    error = (task.error or "no error given").strip().splitlines()[0].rstrip(".")
    return error if len(error) <= ERROR_CHARS else f"{error[: ERROR_CHARS - 1]}…"


def _named(items: Sequence[str]) -> str:
    if len(items) > NAMED:
        items = [*items[:NAMED], f"{len(items) - NAMED} more"]
    return join(items)


def _work(report: NightReport, *, paused: bool | None) -> str | None:
    """What the queue did: how many succeeded and failed, which, and what waits. A chapter's
    tasks are left out: the Creative section tells how each chapter went."""
    tasks = _own_tasks(report)
    succeeded = [task for task in tasks if task.state == "succeeded"]
    failed = [task for task in tasks if task.state == "failed"]
    cancelled = [task for task in tasks if task.state == "cancelled"]
    counts = [
        f"{len(tasks)} {word}"
        for tasks, word in ((succeeded, "succeeded"), (failed, "failed"), (cancelled, "cancelled"))
        if tasks
    ]
    parts: list[str] = []
    if len(counts) == 1:
        parts.append(f"Overnight, {plural(len(tasks), 'task')} {counts[0].split(' ', 1)[1]}.")
    elif counts:
        parts.append(f"Overnight, {plural(len(tasks), 'task')} ended: {join(counts)}.")
    if succeeded:
        parts.append(f"Done: {_named([_done(task) for task in succeeded])}.")
    if failed:
        parts.append(f"Failed: {_named([_failure(task) for task in failed])}.")
    if report.waiting:
        verb = "is" if report.waiting == 1 else "are"
        waiting = f"{plural(report.waiting, 'task')} {verb} waiting in the queue"
        if paused:
            waiting += ", and autonomous work is paused"
        parts.append(f"{waiting[:1].upper()}{waiting[1:]}.")
    return " ".join(parts) or None


def _own_tasks(report: NightReport) -> list[Task]:
    """The night's tasks but those of chapters."""
    return [task for task in report.tasks if not of_chapter(task)]


def _done(task: Task) -> str:
    name = task_name(task)
    if task.started_at is not None and task.finished_at is not None:
        return f"{name} in {duration(task.finished_at - task.started_at)}"
    return name


def _failure(task: Task) -> str:
    attempts = f" after {plural(task.attempts, 'attempt')}" if task.attempts > 1 else ""
    return f"{task_name(task)}{attempts} ({_error(task)})"


async def _async_chapters(entry: HydraConfigEntry) -> list[ChapterStatus]:
    """The worker's newest chapters (what Home Assistant last heard, if the worker does not
    answer); none from a worker without the creative pipeline."""
    if (creative := entry.runtime_data.part(HydraCreativeCoordinator)) is None:
        return []
    try:
        return await creative.api.async_chapters(limit=CHAPTERS_READ)
    except HydraError as err:
        LOGGER.debug("The briefing could not read the chapters of %s: %s", entry.title, err)
        return list(creative.data.chapters)


def _creative(chapters: Sequence[ChapterStatus], since: float) -> str | None:
    """The chapters that ended since ``since`` (what each made, or why it failed), the ones
    still running and how many wait for the overnight pipeline."""
    ended = sorted(
        (c for c in chapters if c.finished and (c.finished_at or 0) >= since),
        key=lambda chapter: (chapter.finished_at or 0, chapter.id),
    )
    phrases = []
    for chapter in ended:
        name = chapter_name(chapter)
        if chapter.state == "succeeded":
            phrases.append(f"{name} is packaged, with {made(chapter, accepted=True)}")
        elif chapter.state == "failed":
            error = (chapter.error or "no error given").strip().splitlines()[0].rstrip(".")
            if len(error) > ERROR_CHARS:
                error = f"{error[: ERROR_CHARS - 1]}…"
            phrases.append(f"{name} failed ({error})")
        else:
            phrases.append(f"{name} was cancelled")
    if len(phrases) > NAMED:
        phrases[NAMED:] = [f"{plural(len(phrases) - NAMED, 'more chapter')} ended"]
    for chapter in [chapter for chapter in chapters if chapter.state == "running"][:NAMED]:
        doing = DOING.get(chapter.stage or "")
        done = f"{doing}, {chapter.percent:.0f} percent done" if doing else "just started"
        phrases.append(f"{chapter_name(chapter)} is still running ({done})")
    if waiting := sum(chapter.state == "waiting" for chapter in chapters):
        verb = "waits" if waiting == 1 else "wait"
        phrases.append(f"{plural(waiting, 'chapter')} {verb} for the overnight pipeline")
    return " ".join(f"{phrase[:1].upper()}{phrase[1:]}." for phrase in phrases) or None


def _health(hass: HomeAssistant, report: NightReport) -> str | None:
    """The GPUs' peak temperature and energy, and what happened to containers."""
    parts: list[str] = []
    gpus = [gpu for gpu in report.gpus if gpu.samples]
    names = spoken_gpu_names([(gpu.uuid, gpu.index, gpu.name) for gpu in gpus])
    peaks = [gpu for gpu in gpus if gpu.peak_temperature_c is not None]
    if peaks:
        hottest = max(peaks, key=lambda gpu: gpu.peak_temperature_c or 0.0)
        text = f"The GPUs peaked at {temperature(hass, hottest.peak_temperature_c or 0.0)}"
        if len(gpus) > 1:
            text += f" on the {names[hottest.uuid]}"
        used = [gpu.energy_wh for gpu in gpus if gpu.energy_wh is not None]
        if used:
            text += f" and used {energy(sum(used))}"
        parts.append(f"{text}.")
    if report.containers_available:
        if healing := _healing(report.healing):
            parts.append(healing)
        if report.unhealthy:
            verb = "is" if len(report.unhealthy) == 1 else "are"
            parts.append(f"{_named(list(report.unhealthy))} {verb} unhealthy now.")
    return " ".join(parts) or None


def _healing(entries: Iterable[AuditEntry]) -> str | None:
    """What self-healing and people did to containers: "self-healing restarted comfyui twice"."""
    done: dict[tuple[str, str, str], int] = {}
    for entry in entries:
        who = "self-healing" if entry.actor.type == "self_heal" else entry.actor.name or "someone"
        action = entry.action if entry.result == "ok" else f"{entry.result}:{entry.action}"
        key = (who, action, entry.container)
        done[key] = done.get(key, 0) + 1
    if not done:
        return None
    phrases = [
        f"{who} {_past(action)} {container} {times(count)}"
        for (who, action, container), count in done.items()
    ]
    text = _named(phrases)
    return f"{text[:1].upper()}{text[1:]}."


def _past(action: str) -> str:
    """ "restarted", or for an attempt that did not succeed "tried to restart (refused)"."""
    result, _, verb = action.rpartition(":")
    if result:
        return f"tried to {verb} ({result})"
    return {"restart": "restarted", "start": "started", "stop": "stopped"}.get(verb, verb)


async def _async_repairs(hass: HomeAssistant, *, skip: str) -> list[str]:
    """Open repairs, titled in the user's language where the integration has a title; those
    whose id starts with ``skip`` (the forecasts, told under "Coming up") left out."""
    issues = [
        issue
        for issue in ir.async_get(hass).issues.values()
        if issue.active and issue.dismissed_version is None and not issue.issue_id.startswith(skip)
    ]
    if not issues:
        return []
    domains = {issue.domain for issue in issues}
    titles = await async_get_translations(hass, hass.config.language, "issues", domains)
    named: list[str] = []
    for issue in issues:
        title = titles.get(f"component.{issue.domain}.issues.{issue.translation_key}.title")
        if title:
            with contextlib.suppress(KeyError, IndexError, ValueError):
                title = title.format(**(issue.translation_placeholders or {}))
        named.append(title or f"a repair from {issue.domain}")
    return [f"Home Assistant has {plural(len(named), 'open repair')}: {_named(named)}"]


def _alert_entities(hass: HomeAssistant) -> list[str]:
    """Alerts (the alert integration) that are firing now."""
    return [
        f"the alert {state.name} is on"
        for state in hass.states.async_all("alert")
        if state.state == STATE_ON
    ]


def _alerts(alerts: Sequence[str]) -> str:
    return " ".join(f"{text[:1].upper()}{text[1:].rstrip('.')}." for text in alerts)


async def _async_calendar(
    hass: HomeAssistant, calendars: Sequence[str], now: datetime
) -> str | None:
    """Today's events of the chosen calendars, in time order; all-day events last."""
    start = dt_util.start_of_local_day(now)
    try:
        answer = await hass.services.async_call(
            "calendar",
            "get_events",
            {
                ATTR_ENTITY_ID: list(calendars),
                "start_date_time": start,
                "end_date_time": start + timedelta(days=1),
            },
            blocking=True,
            return_response=True,
        )
    except (HomeAssistantError, probatio.Invalid) as err:
        LOGGER.warning("The briefing could not read the calendar: %s", err)
        return "The calendar could not be read."
    timed: list[tuple[datetime, str]] = []
    all_day: list[str] = []
    for events in (answer or {}).values():
        listed = events.get("events", []) if isinstance(events, dict) else []
        for event in listed if isinstance(listed, list) else []:
            if not isinstance(event, dict):
                continue
            summary = str(event.get("summary") or "an event").strip()
            starts = str(event.get("start", ""))
            begins = None if len(starts) <= len("2026-01-01") else dt_util.parse_datetime(starts)
            if begins is None:
                all_day.append(summary)
            else:
                timed.append((dt_util.as_local(begins), summary))
    if not timed and not all_day:
        return None
    timed.sort()
    phrases = [f"{summary} at {begins:%H:%M}" for begins, summary in timed]
    if all_day:
        phrases.append(f"all day, {join(all_day)}")
    return f"Today: {join(phrases)}."


async def _async_weather(hass: HomeAssistant, entity_id: str) -> str | None:
    """The weather now, and today's high and low when the entity forecasts by day."""
    state = hass.states.get(entity_id)
    if state is None or state.state in (STATE_UNAVAILABLE, STATE_UNKNOWN):
        return None
    unit = state.attributes.get("temperature_unit", "")
    condition = CONDITIONS.get(state.state, state.state.replace("-", " "))
    text = f"The weather is {condition}"
    if (now := state.attributes.get("temperature")) is not None:
        text += f" at {round(float(now))} {unit}".rstrip()
    try:
        answer = await hass.services.async_call(
            "weather",
            "get_forecasts",
            {ATTR_ENTITY_ID: entity_id, "type": "daily"},
            blocking=True,
            return_response=True,
        )
    except (HomeAssistantError, probatio.Invalid) as err:
        LOGGER.debug("No daily forecast from %s: %s", entity_id, err)
        answer = None
    forecasts = (answer or {}).get(entity_id)
    forecast = forecasts.get("forecast") if isinstance(forecasts, dict) else None
    if isinstance(forecast, list) and forecast and isinstance(today := forecast[0], dict):
        high, low = _number(today.get("temperature")), _number(today.get("templow"))
        if high is not None and low is not None:
            text += f"; today between {round(low)} and {round(high)} {unit}".rstrip()
        elif high is not None:
            text += f"; up to {round(high)} {unit} today".rstrip()
    return f"{text}."


def _number(value: JsonValueType) -> float | None:
    """A forecast's number, also when the weather entity gives it as text."""
    return float(value) if isinstance(value, int | float | str) else None


def phone_actions(entry: HydraConfigEntry, briefing: Briefing) -> list[dict[str, str]]:
    """The buttons on a phone's notification: retry what failed, pause autonomous work."""
    actions = []
    if briefing.failed_tasks:
        actions.append(
            {"action": phone_action_id(ACTION_RETRY_FAILED, entry), "title": "Retry failed tasks"}
        )
    if briefing.paused is False:
        actions.append(
            {"action": phone_action_id(ACTION_PAUSE, entry), "title": "Pause autonomous work"}
        )
    return actions
