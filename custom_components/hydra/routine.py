"""The owner's day: leaving home, coming back, bedtime and the morning briefing.

Each step is an action (``hydra.leave_home``, ``hydra.arrive_home``, ``hydra.bedtime``,
``hydra.briefing``) that automations and blueprints can call; the options can also have Hydra run
them itself, from the chosen people, a bedtime time or entity, and the briefing time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import time as dt_time
from typing import TYPE_CHECKING, Any, Final

from homeassistant.const import STATE_HOME, STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import (
    Context,
    Event,
    EventStateChangedData,
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    callback,
)
from homeassistant.data_entry_flow import section
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import config_validation as cv, selector
from homeassistant.helpers.event import async_track_state_change_event, async_track_time_change
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util
import probatio

from hydra_core.client import HydraError
from hydra_core.power.models import GpuPower, PowerStatus
from hydra_core.scheduler.client import TasksClient

from .actions import ENTRY_SCHEMA, Action, action_entry, require_part
from .briefing import Briefing, async_compose, phone_actions
from .const import (
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
    DEFAULT_BRIEFING_HOURS,
    DEFAULT_BRIEFING_TIME,
    DOMAIN,
    EVENT_BRIEFING,
    EVENT_ROUTINE,
    LOGGER,
    MAX_BRIEFING_HOURS,
)
from .data import HydraConfigEntry
from .form import SECRET_SELECTOR, normalise_url, targets_selector
from .notify import Delivery, async_send
from .parts.creative.requests import async_start_waiting_chapters
from .parts.knowledge.requests import async_queue_research
from .parts.power import HydraPowerCoordinator, async_set_power
from .parts.tasks.coordinator import HydraTaskCoordinator
from .parts.tasks.requests import (
    async_retry_task,
    async_set_paused,
    tasks_waiting,
)
from .wording import join, plural

if TYPE_CHECKING:
    from .part import PhoneAction

STORAGE_VERSION: Final = 1
SERVICE_LEAVE_HOME: Final = "leave_home"
SERVICE_ARRIVE_HOME: Final = "arrive_home"
SERVICE_BEDTIME: Final = "bedtime"
SERVICE_BRIEFING: Final = "briefing"
ATTR_TOPICS: Final = "topics"
ATTR_SEND: Final = "send"
ATTR_HOURS: Final = "hours"
# The profile a card with none chosen goes back to on arrival: its default limit.
RESTORE_DEFAULT: Final = "full"

LEAVE_SCHEMA: Final = ENTRY_SCHEMA.extend(
    {probatio.Optional(ATTR_TOPICS): probatio.All(cv.ensure_list, [cv.string])}
)
BRIEFING_SCHEMA: Final = ENTRY_SCHEMA.extend(
    {
        probatio.Optional(ATTR_SEND, default=False): cv.boolean,
        probatio.Optional(ATTR_HOURS): probatio.All(
            probatio.Coerce(float), probatio.Range(min=1, max=MAX_BRIEFING_HOURS)
        ),
    }
)


def options_section(entry: HydraConfigEntry, key: str) -> Mapping[str, Any]:
    """One section of the options (presence, bedtime, briefing); empty when never saved."""
    return entry.options.get(key) or {}


def check_routine_options(
    hass: HomeAssistant, user_input: dict[str, Any]
) -> tuple[dict[str, str], dict[str, str]]:
    """People and entities must exist; a Discord webhook must be a web address."""
    presence = user_input.get(CONF_PRESENCE, {})
    missing = [
        entity_id
        for entity_id in [
            *presence.get(CONF_PERSONS, []),
            *user_input.get(CONF_BEDTIME, {}).get(CONF_BEDTIME_ENTITIES, []),
            *user_input.get(CONF_BRIEFING, {}).get(CONF_CALENDARS, []),
        ]
        if hass.states.get(entity_id) is None
    ]
    if missing:
        return {"base": "unknown_entity"}, {"entities": ", ".join(missing)}
    briefing = user_input.get(CONF_BRIEFING, {})
    if (webhook := briefing.get(CONF_DISCORD_WEBHOOK)) and normalise_url(webhook) is None:
        return {CONF_BRIEFING: "invalid_webhook"}, {}
    return {}, {}


def routine_fields(hass: HomeAssistant, options: Mapping[str, Any]) -> dict[Any, Any]:
    """The daily routine, in three collapsed sections: presence, bedtime, briefing."""
    chosen_targets = options.get(CONF_BRIEFING, {}).get(CONF_BRIEFING_TARGETS, [])
    presence = {
        probatio.Optional(CONF_PERSONS, default=[]): selector.EntitySelector(
            selector.EntitySelectorConfig(domain="person", multiple=True)
        ),
        probatio.Required(CONF_AWAY_ENABLED, default=True): selector.BooleanSelector(),
        probatio.Optional(CONF_RESEARCH_TOPICS, default=[]): selector.TextSelector(
            selector.TextSelectorConfig(multiple=True)
        ),
        probatio.Required(CONF_ARRIVE_ENABLED, default=True): selector.BooleanSelector(),
    }
    bedtime = {
        probatio.Required(CONF_BEDTIME_ENABLED, default=False): selector.BooleanSelector(),
        probatio.Optional(CONF_BEDTIME_TIME): selector.TimeSelector(),
        probatio.Optional(CONF_BEDTIME_ENTITIES, default=[]): selector.EntitySelector(
            selector.EntitySelectorConfig(multiple=True)
        ),
    }
    briefing = {
        probatio.Required(CONF_BRIEFING_ENABLED, default=False): selector.BooleanSelector(),
        probatio.Required(
            CONF_BRIEFING_TIME, default=DEFAULT_BRIEFING_TIME
        ): selector.TimeSelector(),
        probatio.Required(
            CONF_BRIEFING_HOURS, default=DEFAULT_BRIEFING_HOURS
        ): selector.NumberSelector(
            selector.NumberSelectorConfig(
                min=1,
                max=MAX_BRIEFING_HOURS,
                step=1,
                unit_of_measurement="h",
                mode=selector.NumberSelectorMode.BOX,
            )
        ),
        probatio.Optional(CONF_BRIEFING_TARGETS, default=[]): targets_selector(
            hass, chosen_targets
        ),
        probatio.Optional(CONF_CALENDARS, default=[]): selector.EntitySelector(
            selector.EntitySelectorConfig(domain="calendar", multiple=True)
        ),
        probatio.Optional(CONF_WEATHER): selector.EntitySelector(
            selector.EntitySelectorConfig(domain="weather")
        ),
        probatio.Optional(CONF_DISCORD_WEBHOOK): SECRET_SELECTOR,
    }
    return {
        probatio.Optional(CONF_PRESENCE, default=dict): section(
            probatio.Schema(presence), {"collapsed": True}
        ),
        probatio.Optional(CONF_BEDTIME, default=dict): section(
            probatio.Schema(bedtime), {"collapsed": True}
        ),
        probatio.Optional(CONF_BRIEFING, default=dict): section(
            probatio.Schema(briefing), {"collapsed": True}
        ),
    }


class HydraRoutine:
    """One worker's part in the day; created with the entry, its listeners end with it."""

    def __init__(self, hass: HomeAssistant, entry: HydraConfigEntry) -> None:
        """Read the options; nothing listens until ``async_start``."""
        self.hass = hass
        self.entry = entry
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry.entry_id}.routine"
        )
        # Each GPU's profile (or custom watts) before the house emptied, by uuid.
        self._before_away: dict[str, dict[str, Any]] = {}
        self._away_since: float | None = None
        self._someone_home: bool | None = None
        self.last_failed: tuple[int, ...] = ()

    @property
    def presence(self) -> Mapping[str, Any]:
        """The presence options."""
        return options_section(self.entry, CONF_PRESENCE)

    @property
    def briefing_options(self) -> Mapping[str, Any]:
        """The briefing options."""
        return options_section(self.entry, CONF_BRIEFING)

    @property
    def has_briefing_targets(self) -> bool:
        """Whether the briefing has anywhere to go."""
        options = self.briefing_options
        return bool(options.get(CONF_BRIEFING_TARGETS) or options.get(CONF_DISCORD_WEBHOOK))

    async def async_start(self) -> None:
        """Load what was kept, then follow the people, the bedtime and the briefing time."""
        saved = await self._store.async_load() or {}
        self._before_away = dict(saved.get("before_away", {}))
        self._away_since = saved.get("away_since")
        self.last_failed = tuple(saved.get("last_failed", ()))
        entry = self.entry
        if persons := list(self.presence.get(CONF_PERSONS, [])):
            self._someone_home = self._anyone_home(persons)
            entry.async_on_unload(
                async_track_state_change_event(self.hass, persons, self._async_person_changed)
            )
        bedtime = options_section(entry, CONF_BEDTIME)
        if bedtime.get(CONF_BEDTIME_ENABLED, False):
            if at := bedtime.get(CONF_BEDTIME_TIME):
                entry.async_on_unload(self._at(at, "bedtime", self.async_bedtime))
            if entities := list(bedtime.get(CONF_BEDTIME_ENTITIES, [])):
                entry.async_on_unload(
                    async_track_state_change_event(self.hass, entities, self._async_bedtime_entity)
                )
        if self.briefing_options.get(CONF_BRIEFING_ENABLED, False):
            at = self.briefing_options.get(CONF_BRIEFING_TIME, DEFAULT_BRIEFING_TIME)
            entry.async_on_unload(self._at(at, "briefing", self._async_send_briefing))

    def _at(
        self, when: str, name: str, step: Callable[[Context | None], Any]
    ) -> Callable[[], None]:
        at: dt_time = cv.time(when)

        @callback
        def run(_now: Any) -> None:
            self._background(step(None), name)

        return async_track_time_change(
            self.hass, run, hour=at.hour, minute=at.minute, second=at.second
        )

    async def _async_send_briefing(self, context: Context | None) -> None:
        await self.async_briefing(send=True)

    def _background(self, job: Any, name: str) -> None:
        async def guarded() -> None:
            try:
                await job
            except HomeAssistantError as err:
                LOGGER.warning(
                    "Hydra's %s step on %s did not complete: %s", name, self.entry.title, err
                )

        self.entry.async_create_background_task(
            self.hass, guarded(), f"{DOMAIN} {name} {self.entry.entry_id}"
        )

    def _anyone_home(self, persons: Sequence[str]) -> bool | None:
        """Whether any chosen person is home; None while none of them is known yet."""
        states = [self.hass.states.get(person) for person in persons]
        known = [s.state for s in states if s and s.state not in (STATE_UNKNOWN, STATE_UNAVAILABLE)]
        if not known:
            return None
        return STATE_HOME in known

    @callback
    def _async_person_changed(self, event: Event[EventStateChangedData]) -> None:
        now_home = self._anyone_home(self.presence.get(CONF_PERSONS, []))
        before, self._someone_home = self._someone_home, now_home
        if now_home is None or before is None or now_home == before:
            return
        if not now_home and self.presence.get(CONF_AWAY_ENABLED, True):
            self._background(self.async_leave(Context()), "leave")
        elif now_home and self.presence.get(CONF_ARRIVE_ENABLED, True):
            self._background(self.async_arrive(Context()), "arrive")

    @callback
    def _async_bedtime_entity(self, event: Event[EventStateChangedData]) -> None:
        old, new = event.data["old_state"], event.data["new_state"]
        if new is None or new.state != STATE_ON:
            return
        if old is None or old.state in (STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN):
            return
        self._background(self.async_bedtime(Context()), "bedtime")

    # The steps. Each does all it can, then raises naming what failed.

    async def async_leave(
        self, context: Context | None, topics: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Everyone left: GPUs to eco (remembering each one's profile) and queue research."""
        errors: list[str] = []
        done: dict[str, Any] = {"step": "leave"}
        power = self._power()
        if power is not None and power.available:
            if self._away_since is None:
                self._before_away = {gpu.uuid: _setting(gpu) for gpu in power.gpus}
            self._away_since = self._away_since or dt_util.utcnow().timestamp()
            await self._async_save()
            done["power"] = await self._async_power(context, "eco", errors)
        if topics is None:
            topics = self.presence.get(CONF_RESEARCH_TOPICS, [])
        queued = []
        for topic in topics:
            if not (topic := topic.strip()):
                continue
            try:
                queued.append(await self._async_queue_research(context, topic))
            except HomeAssistantError as err:
                errors.append(f"research on {topic}: {err}")
        done["research_tasks"] = queued
        return self._finish(done, errors)

    async def async_arrive(self, context: Context | None) -> dict[str, Any]:
        """Someone came home: restore each GPU's profile from before and say how things are."""
        errors: list[str] = []
        done: dict[str, Any] = {"step": "arrive"}
        power = self._power()
        if power is not None and power.available:
            done["power"] = await self._async_restore(context, power, errors)
        since, self._away_since = self._away_since, None
        self._before_away = {}
        await self._async_save()
        if targets := list(self.briefing_options.get(CONF_BRIEFING_TARGETS, [])):
            message = await self._async_welcome(since, done.get("power"))
            delivery = await async_send(
                self.hass,
                targets,
                f"Welcome home ({self.entry.title})",
                message,
                about="coming home",
            )
            done["message"] = message
            done["notified"] = delivery.delivered
            errors.extend(f"{target}: {why}" for target, why in delivery.failed.items())
        return self._finish(done, errors)

    async def async_bedtime(self, context: Context | None) -> dict[str, Any]:
        """Bedtime: GPUs to full power, autonomous work on and the chapters waiting for the
        overnight pipeline queued, so the queue runs overnight."""
        errors: list[str] = []
        done: dict[str, Any] = {"step": "bedtime"}
        power = self._power()
        if power is not None and power.available:
            done["power"] = await self._async_power(context, "full", errors)
        if (tasks := self.entry.runtime_data.part(HydraTaskCoordinator)) is not None:
            try:
                scheduler = await async_set_paused(tasks, context, paused=False)
            except HomeAssistantError as err:
                errors.append(str(err))
            else:
                done["waiting"] = tasks_waiting(scheduler)
                await self._async_start_chapters(done, errors)
        return self._finish(done, errors)

    async def _async_start_chapters(self, done: dict[str, Any], errors: list[str]) -> None:
        """Queue the chapters waiting for the overnight pipeline (after autonomous work was
        turned on, which only an administrator or an automation may do)."""
        try:
            chapters = await async_start_waiting_chapters(self.entry)
        except HomeAssistantError as err:
            errors.append(f"chapters: {err}")
        else:
            if chapters is not None:
                done["chapters_started"] = [chapter.id for chapter in chapters]

    async def async_briefing(self, *, send: bool, hours: float | None = None) -> dict[str, Any]:
        """Compose the briefing; send it to the chosen targets when asked to."""
        options = self.briefing_options
        briefing = await async_compose(
            self.hass,
            self.entry,
            hours=hours or options.get(CONF_BRIEFING_HOURS, DEFAULT_BRIEFING_HOURS),
            calendars=options.get(CONF_CALENDARS, []),
            weather=options.get(CONF_WEATHER) or None,
        )
        self.last_failed = briefing.failed_tasks
        await self._async_save()
        response = briefing.as_response()
        if send:
            delivery = await self._async_deliver(briefing)
            response["delivered"] = delivery.delivered
            response["failed"] = delivery.failed
        self.hass.bus.async_fire(
            EVENT_BRIEFING,
            {"entry_id": self.entry.entry_id, "text": briefing.text, "sent": send},
        )
        return response

    async def _async_deliver(self, briefing: Briefing) -> Delivery:
        options = self.briefing_options
        return await async_send(
            self.hass,
            options.get(CONF_BRIEFING_TARGETS, []),
            briefing.title,
            briefing.text,
            about="the Hydra briefing",
            actions=phone_actions(self.entry, briefing),
            tag=f"{DOMAIN}-briefing-{self.entry.entry_id}",
            discord_webhook=options.get(CONF_DISCORD_WEBHOOK) or None,
        )

    async def async_phone_action(self, action: str, context: Context) -> None:
        """A button of the briefing's phone notification was pressed: do it, then say so."""
        tasks = self.entry.runtime_data.part(HydraTaskCoordinator)
        if tasks is None:
            return
        if action == ACTION_RETRY_FAILED:
            retried, failed = [], []
            for task_id in self.last_failed:
                try:
                    await async_retry_task(tasks, task_id)
                except HomeAssistantError as err:
                    LOGGER.warning("Could not retry task %s: %s", task_id, err)
                    failed.append(task_id)
                else:
                    retried.append(task_id)
            self.last_failed = tuple(failed)
            await self._async_save()
            message = (
                f"Queued again: {join([f'task {task_id}' for task_id in retried])}."
                if retried
                else "Nothing to retry."
            )
            if failed:
                message += f" Could not retry {join([f'task {task_id}' for task_id in failed])}."
        elif action == ACTION_PAUSE:
            try:
                await async_set_paused(tasks, context, paused=True)
            except HomeAssistantError as err:
                message = f"Could not pause autonomous work: {err}"
            else:
                message = "Autonomous work is paused; running tasks will finish."
        else:
            return
        await async_send(
            self.hass,
            self.briefing_options.get(CONF_BRIEFING_TARGETS, []),
            self.entry.title,
            message,
            about="a phone action",
            tag=f"{DOMAIN}-ack-{self.entry.entry_id}",
        )

    # Helpers of the steps.

    def _power(self) -> PowerStatus | None:
        power = self.entry.runtime_data.part(HydraPowerCoordinator)
        return None if power is None else power.data

    async def _async_power(self, context: Context | None, profile: str, errors: list[str]) -> str:
        power = self.entry.runtime_data.part(HydraPowerCoordinator)
        assert power is not None
        try:
            await async_set_power(power, context, profile=profile)
        except HomeAssistantError as err:
            errors.append(f"power profile {profile}: {err}")
            return "unchanged"
        return profile

    async def _async_restore(
        self, context: Context | None, power: PowerStatus, errors: list[str]
    ) -> dict[str, Any]:
        """Each GPU back to what it ran before the house emptied (or full, if nothing was
        chosen then); GPUs that share a setting are set together."""
        groups: dict[tuple[str | None, float | None], list[int]] = defaultdict(list)
        for gpu in power.gpus:
            before = self._before_away.get(gpu.uuid, {})
            profile, limit = before.get("profile"), before.get("limit_w")
            if profile is None:
                profile = RESTORE_DEFAULT
            groups[(profile, limit if profile == "custom" else None)].append(gpu.index)
        coordinator = self.entry.runtime_data.part(HydraPowerCoordinator)
        assert coordinator is not None
        restored: dict[str, Any] = {}
        for (profile, limit), indexes in groups.items():
            try:
                if limit is not None:
                    await async_set_power(coordinator, context, limit_w=limit, gpus=indexes)
                else:
                    await async_set_power(coordinator, context, profile=profile, gpus=indexes)
            except HomeAssistantError as err:
                errors.append(f"restoring GPUs {join([str(i) for i in indexes])}: {err}")
                continue
            for index in indexes:
                restored[str(index)] = f"{limit:g} W" if limit is not None else profile
        return restored

    async def _async_queue_research(self, context: Context | None, topic: str) -> int:
        tasks = require_part(self.entry, HydraTaskCoordinator)
        task = await async_queue_research(tasks, topic, context)
        return task.id

    async def _async_welcome(self, since: float | None, power: dict[str, Any] | None) -> str:
        """A few sentences for the person coming home: work done meanwhile, GPUs now."""
        parts: list[str] = []
        if since is not None:
            try:
                report = await TasksClient(self.entry.runtime_data.client).async_report(since)
            except HydraError as err:
                LOGGER.debug("No report for the welcome of %s: %s", self.entry.title, err)
            else:
                succeeded = sum(task.state == "succeeded" for task in report.tasks)
                failed = sum(task.state == "failed" for task in report.tasks)
                if succeeded or failed:
                    counts = [
                        text
                        for count, text in (
                            (succeeded, f"{plural(succeeded, 'task')} succeeded"),
                            (failed, f"{plural(failed, 'task')} failed"),
                        )
                        if count
                    ]
                    parts.append(f"While you were out, {join(counts)}.")
                if report.waiting:
                    parts.append(f"{plural(report.waiting, 'task')} still waiting.")
        if power:
            profiles = sorted(set(power.values()))
            parts.append(f"The GPUs are back to {join(profiles)} power.")
        status = self.entry.runtime_data.status
        if status.last_update_success and (gpus := status.data.gpu.gpus):
            busy = [gpu.utilization_percent for gpu in gpus if gpu.utilization_percent is not None]
            if busy:
                parts.append(f"GPU load is {round(max(busy))} percent.")
        return " ".join(parts) or "Welcome home. All is quiet."

    def _finish(self, done: dict[str, Any], errors: list[str]) -> dict[str, Any]:
        self.hass.bus.async_fire(
            EVENT_ROUTINE, {"entry_id": self.entry.entry_id, **done, "errors": errors}
        )
        if errors:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="routine_incomplete",
                translation_placeholders={"step": done["step"], "errors": "; ".join(errors)},
            )
        return done

    async def _async_save(self) -> None:
        await self._store.async_save(
            {
                "before_away": self._before_away,
                "away_since": self._away_since,
                "last_failed": list(self.last_failed),
            }
        )

    async def async_remove(self) -> None:
        """Forget what was kept (the entry is being deleted)."""
        await self._store.async_remove()


def _setting(gpu: GpuPower) -> dict[str, Any]:
    return {"profile": gpu.profile, "limit_w": gpu.target_w if gpu.profile == "custom" else None}


def _routine(call: ServiceCall) -> HydraRoutine:
    entry = action_entry(call)
    assert entry.runtime_data.routine is not None
    return entry.runtime_data.routine


async def _async_leave(call: ServiceCall) -> ServiceResponse:
    return await _routine(call).async_leave(call.context, call.data.get(ATTR_TOPICS))


async def _async_arrive(call: ServiceCall) -> ServiceResponse:
    return await _routine(call).async_arrive(call.context)


async def _async_bedtime(call: ServiceCall) -> ServiceResponse:
    return await _routine(call).async_bedtime(call.context)


async def _async_briefing(call: ServiceCall) -> ServiceResponse:
    return await _routine(call).async_briefing(
        send=call.data[ATTR_SEND], hours=call.data.get(ATTR_HOURS)
    )


ROUTINE_ACTIONS: Final[dict[str, Action]] = {
    SERVICE_LEAVE_HOME: (_async_leave, LEAVE_SCHEMA),
    SERVICE_ARRIVE_HOME: (_async_arrive, ENTRY_SCHEMA),
    SERVICE_BEDTIME: (_async_bedtime, ENTRY_SCHEMA),
    SERVICE_BRIEFING: (_async_briefing, BRIEFING_SCHEMA),
}


def _phone_step(action: str) -> PhoneAction:
    """A button of the briefing's phone notification: the routine of the entry does it."""

    def handle(
        entry: HydraConfigEntry, _detail: str, event: Event[dict[str, Any]]
    ) -> Coroutine[Any, Any, None] | None:
        routine = entry.runtime_data.routine
        return None if routine is None else routine.async_phone_action(action, event.context)

    return handle


# The buttons of the briefing's phone notification.
PHONE_ACTIONS: Final[dict[str, PhoneAction]] = {
    action: _phone_step(action) for action in (ACTION_RETRY_FAILED, ACTION_PAUSE)
}


__all__ = ["PHONE_ACTIONS", "ROUTINE_ACTIONS", "HydraRoutine", "options_section"]
