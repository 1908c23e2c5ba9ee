"""Hydra in Assist: intents about the workers' GPUs, queue and autonomous work, and the English
sentences that reach them through Home Assistant's default conversation agent.

Intents. Each command is a Home Assistant intent (``HydraGpuTemperature`` ...), registered by
the ``intent`` integration, which loads this platform of every integration
(``async_setup_intents``), as it does for todo and shopping_list. Custom sentences,
``intent_script``, ``/api/intent/handle`` and LLM tools can therefore call them; they answer
from the coordinators (what the entities show) and the worker itself, never canned values.

Sentences. Home Assistant 2026.10 gives an integration outside home-assistant-intents three
ways into the default agent:

* files in ``<config>/custom_sentences/<language>/``: the user's own folder; an integration
  writing there edits the user's configuration behind their back;
* ``conversation: intents:`` (``AgentManager.update_config_intents``): replaced as a whole from
  configuration.yaml, and without lists, so no wildcard for a research topic;
* sentence triggers (``AgentManager.register_trigger``): what the ``conversation`` automation
  trigger uses. The agent matches them before its built-in intents (so "pause autonomous work"
  is never taken for HassTurnOff), every ``{list}`` in them is a wildcard, the callback's string
  is the answer, and agents that prefer handling commands locally try them too.

Hydra uses the triggers: ``hydra_core/voice/sentences/*.yaml`` (custom sentence format; it lives
in ``hydra_core`` because the worker's speech-to-text matches misheard commands against the same
file, see ``hydra_core.voice.commands``) is read once, each
intent's sentences become one trigger, and its callback hands the match to the intent through
``intent.async_handle``, so a spoken sentence and an LLM run the same handler. Trigger
sentences apply whatever the pipeline's language; only English ones are shipped.

Several workers: the GPU temperatures, how busy the cluster is and the overnight failures cover
every loaded worker; queueing, pausing and resuming act on the first loaded worker that runs a
task queue. "Overnight" is since 18:00 (Home Assistant's time zone) of the day before.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, override

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import intent
from homeassistant.util import dt as dt_util
from homeassistant.util.yaml import load_yaml_dict

from hydra_core.client import HydraError
from hydra_core.gpu.models import GpuInfo
from hydra_core.scheduler.client import TasksClient
from hydra_core.scheduler.models import SchedulerState, Task
from hydra_core.voice.commands import SENTENCES_DIR

from .const import DOMAIN, LOGGER
from .data import HydraConfigEntry, HydraData
from .parts.containers.coordinator import HydraContainerCoordinator
from .parts.creative.describe import started
from .parts.creative.requests import async_start_waiting_chapters
from .parts.knowledge.intents import knowledge_intents
from .parts.knowledge.requests import async_queue_research
from .parts.tasks.coordinator import HydraTaskCoordinator
from .parts.tasks.requests import async_set_paused, tasks_waiting
from .wording import NO_WORKER, gpu_names, plural, sentence, temperature

if TYPE_CHECKING:
    from hassil.recognize import RecognizeResult
    from homeassistant.components.conversation import ConversationInput

INTENT_GPU_TEMPERATURE: Final = "HydraGpuTemperature"
INTENT_CLUSTER_STATUS: Final = "HydraClusterStatus"
INTENT_QUEUE_RESEARCH: Final = "HydraQueueResearch"
INTENT_START_OVERNIGHT: Final = "HydraStartOvernightPipeline"
INTENT_PAUSE_WORK: Final = "HydraPauseAutonomousWork"
INTENT_RESUME_WORK: Final = "HydraResumeAutonomousWork"
INTENT_OVERNIGHT_FAILURES: Final = "HydraOvernightFailures"
INTENT_BRIEFING: Final = "HydraBriefing"

# "Overnight" starts at this hour (local time) of the day before.
OVERNIGHT_FROM_HOUR: Final = 18
# Failed tasks read from each worker, newest first; more than a night's worth.
FAILED_TASKS_READ: Final = 100
# Failures named one by one; the rest are counted.
FAILURES_SPOKEN: Final = 5
# GPUs named one by one in "how busy"; more are summed up.
GPUS_SPOKEN: Final = 4
ERROR_SPOKEN_CHARS: Final = 160
_GIB: Final = 1024**3

NO_QUEUE: Final = "No Hydra worker runs a task queue."


async def async_setup_intents(hass: HomeAssistant) -> None:
    """Register the intents and their sentences (called by the ``intent`` integration)."""
    for handler in (
        GpuTemperatureIntent(),
        ClusterStatusIntent(),
        QueueResearchIntent(),
        StartOvernightPipelineIntent(),
        SetAutonomousWorkIntent(INTENT_PAUSE_WORK, paused=True),
        SetAutonomousWorkIntent(INTENT_RESUME_WORK, paused=False),
        OvernightFailuresIntent(),
        BriefingIntent(),
        *knowledge_intents(),
    ):
        intent.async_register(hass, handler)
    await async_register_sentences(hass)


async def async_register_sentences(hass: HomeAssistant) -> None:
    """Have the default agent answer Hydra's sentences by running Hydra's intents."""
    try:
        from homeassistant.components.conversation.agent_manager import (  # noqa: PLC0415
            get_agent_manager,
        )
    except ImportError:  # Conversation's requirements are missing: nothing to talk to.
        LOGGER.debug("No conversation agent: Hydra's sentences are not registered")
        return
    sentences = await hass.async_add_executor_job(_load_sentences)
    manager = get_agent_manager(hass)
    for intent_type, templates in sentences.items():
        manager.register_trigger(templates, _trigger_callback(hass, intent_type))


def _load_sentences() -> dict[str, list[str]]:
    """Every intent's sentence templates, from every language file."""
    sentences: dict[str, list[str]] = {}
    for path in sorted(SENTENCES_DIR.glob("*.yaml")):
        for intent_type, config in load_yaml_dict(path).get("intents", {}).items():
            for data in config.get("data", []):
                sentences.setdefault(intent_type, []).extend(data["sentences"])
    return sentences


def _trigger_callback(
    hass: HomeAssistant, intent_type: str
) -> Callable[[ConversationInput, RecognizeResult], Awaitable[str | None]]:
    """What runs when one of the intent's sentences is heard: the intent; its speech answers."""

    async def async_answer(user_input: ConversationInput, result: RecognizeResult) -> str:
        slots = {
            name: {
                "value": entity.value.strip() if isinstance(entity.value, str) else entity.value,
                "text": entity.text.strip(),
            }
            for name, entity in result.entities.items()
        }
        try:
            response = await intent.async_handle(
                hass,
                DOMAIN,
                intent_type,
                slots,
                text_input=user_input.text,
                context=user_input.context,
                language=user_input.language,
                assistant="conversation",
                device_id=user_input.device_id,
                satellite_id=user_input.satellite_id,
                conversation_agent_id=user_input.agent_id,
            )
        except intent.InvalidSlotInfo:
            return "Sorry, I did not catch what to do that with."
        except intent.IntentError as err:
            LOGGER.debug("%s failed: %s", intent_type, err)
            return f"Sorry, Hydra could not do that: {err}"
        return str(response.speech.get("plain", {}).get("speech", ""))

    return async_answer


# Answers


def _answer(intent_obj: intent.Intent, speech: str) -> intent.IntentResponse:
    response = intent_obj.create_response()
    response.async_set_speech(speech)
    return response


def _refusal(intent_obj: intent.Intent, speech: str) -> intent.IntentResponse:
    """An answer that says why nothing was done (an error response, spoken as it is)."""
    response = intent_obj.create_response()
    response.async_set_error(intent.IntentResponseErrorCode.FAILED_TO_HANDLE, speech)
    return response


def _loaded(hass: HomeAssistant) -> list[HydraConfigEntry]:
    return hass.config_entries.async_loaded_entries(DOMAIN)


def _queue(hass: HomeAssistant) -> tuple[HydraConfigEntry, HydraTaskCoordinator] | str:
    """The first loaded worker that runs a task queue, or what to say instead."""
    entries = _loaded(hass)
    for entry in entries:
        if (tasks := entry.runtime_data.part(HydraTaskCoordinator)) is not None:
            return entry, tasks
    return NO_QUEUE if entries else NO_WORKER


def _on(hass: HomeAssistant, entry: HydraConfigEntry) -> str:
    """Which worker acted, where there are several to tell apart."""
    return f" on {entry.title}" if len(_loaded(hass)) > 1 else ""


def _per_worker(entries: Sequence[HydraConfigEntry], answers: Sequence[str]) -> str:
    """One worker's answer as it is; several, each behind its worker's name."""
    if len(entries) == 1:
        return answers[0]
    return " ".join(
        f"{entry.title}: {answer}" for entry, answer in zip(entries, answers, strict=True)
    )


def _unreachable(data: HydraData) -> bool:
    return not data.status.last_update_success


class GpuTemperatureIntent(intent.IntentHandler):
    """The temperature of every GPU of every loaded worker."""

    intent_type = INTENT_GPU_TEMPERATURE
    description = "Tells the temperature of every GPU of every Hydra worker"

    @override
    async def async_handle(self, intent_obj: intent.Intent) -> intent.IntentResponse:
        hass = intent_obj.hass
        if not (entries := _loaded(hass)):
            return _refusal(intent_obj, NO_WORKER)
        answers = [self._worker(hass, entry.runtime_data) for entry in entries]
        return _answer(intent_obj, _per_worker(entries, answers))

    @staticmethod
    def _worker(hass: HomeAssistant, data: HydraData) -> str:
        if _unreachable(data):
            return "The worker is not answering."
        gpus = data.status.data.gpu.gpus
        if not gpus:
            return "The worker reports no GPU."
        names = gpu_names(gpus)
        return sentence(
            [
                f"{names[gpu.uuid]} is at {temperature(hass, gpu.temperature_c)}"
                if gpu.temperature_c is not None
                else f"{names[gpu.uuid]} does not report its temperature"
                for gpu in gpus
            ]
        )


class ClusterStatusIntent(intent.IntentHandler):
    """How busy every loaded worker is: GPU load and VRAM, tasks, containers."""

    intent_type = INTENT_CLUSTER_STATUS
    description = (
        "Tells how busy the Hydra cluster is: GPU utilization and VRAM in use, running and "
        "queued tasks, running containers and containers with problems"
    )

    @override
    async def async_handle(self, intent_obj: intent.Intent) -> intent.IntentResponse:
        if not (entries := _loaded(intent_obj.hass)):
            return _refusal(intent_obj, NO_WORKER)
        answers = [await self._async_worker(entry.runtime_data) for entry in entries]
        return _answer(intent_obj, _per_worker(entries, answers))

    async def _async_worker(self, data: HydraData) -> str:
        if _unreachable(data):
            return "The worker is not answering."
        parts = [self._gpus(data.status.data.gpu.gpus)]
        if (tasks := data.part(HydraTaskCoordinator)) is not None:
            parts.append(await self._async_tasks(tasks))
        if (containers := data.part(HydraContainerCoordinator)) is not None:
            if not containers.data.engine_available:
                parts.append("its container engine is unreachable")
            else:
                running = sum(c.state == "running" for c in containers.containers.values())
                problems = sum(c.problem for c in containers.containers.values())
                text = f"{plural(running, 'container')} running"
                if problems:
                    text += f", {plural(problems, 'container')} with problems"
                parts.append(text)
        text = "; ".join(parts)
        return f"{text[:1].upper()}{text[1:]}."

    @staticmethod
    def _gpus(gpus: Sequence[GpuInfo]) -> str:
        if not gpus:
            return "no GPU"
        if len(gpus) > GPUS_SPOKEN:
            known = [gpu.utilization_percent for gpu in gpus if gpu.utilization_percent is not None]
            text = f"{len(gpus)} GPUs"
            if known:
                text += f" at {sum(known) / len(known):.0f} % on average"
            used = sum(gpu.memory_used_bytes or 0 for gpu in gpus)
            total = sum(gpu.memory_total_bytes or 0 for gpu in gpus)
            if total:
                text += f", {used / _GIB:.1f} of {total / _GIB:.1f} GiB VRAM in use"
            return text
        names = gpu_names(gpus)
        phrases = []
        for gpu in gpus:
            text = names[gpu.uuid]
            if gpu.utilization_percent is not None:
                text += f" at {gpu.utilization_percent:.0f} %"
            if gpu.memory_used_bytes is not None and gpu.memory_total_bytes:
                text += (
                    f" with {gpu.memory_used_bytes / _GIB:.1f} of "
                    f"{gpu.memory_total_bytes / _GIB:.1f} GiB VRAM in use"
                )
            phrases.append(text)
        return ", ".join(phrases)

    @staticmethod
    async def _async_tasks(tasks: HydraTaskCoordinator) -> str:
        # The counts from the worker now; what was last pushed if it does not answer.
        try:
            scheduler = await tasks.api.async_scheduler()
        except HydraError:
            scheduler = tasks.data.scheduler
        text = f"{plural(_running(scheduler), 'task')} running, {tasks_waiting(scheduler)} queued"
        if scheduler.settings.paused:
            text += " (autonomous work is paused)"
        return text


def _running(scheduler: SchedulerState) -> int:
    return scheduler.counts.get("running", 0)


@dataclass(frozen=True, slots=True)
class _QueueJob:
    """What a queue intent acts with: the intent, its slots, and the worker whose queue it is."""

    intent_obj: intent.Intent
    slots: dict[str, Any]
    entry: HydraConfigEntry
    tasks: HydraTaskCoordinator

    @property
    def on(self) -> str:
        return _on(self.intent_obj.hass, self.entry)

    @property
    def topic(self) -> str:
        return str(self.slots["topic"]["value"]).strip()


class _QueueIntentHandler(intent.IntentHandler, ABC):
    """An intent that acts on the task queue of the first loaded worker that runs one; says why
    not where there is none, and what went wrong where the worker refuses."""

    @override
    async def async_handle(self, intent_obj: intent.Intent) -> intent.IntentResponse:
        slots = self.async_validate_slots(intent_obj.slots)
        if isinstance(queue := _queue(intent_obj.hass), str):
            return _refusal(intent_obj, queue)
        job = _QueueJob(intent_obj, slots, *queue)
        try:
            speech = await self._async_act(job)
        except HomeAssistantError as err:
            return _refusal(intent_obj, f"I could not {self._attempt(job)}: {err}")
        return _answer(intent_obj, speech)

    @abstractmethod
    async def _async_act(self, job: _QueueJob) -> str:
        """Act on the queue; what to say."""

    @abstractmethod
    def _attempt(self, job: _QueueJob) -> str:
        """What was tried, for "I could not …"."""


class QueueResearchIntent(_QueueIntentHandler):
    """Queue a research task on a topic."""

    intent_type = INTENT_QUEUE_RESEARCH
    description = "Queues a research task about a topic on the Hydra worker"

    @property
    @override
    def slot_schema(self) -> dict[str, Callable[[Any], str]]:
        return {"topic": intent.non_empty_string}

    @override
    async def _async_act(self, job: _QueueJob) -> str:
        task = await async_queue_research(job.tasks, job.topic, job.intent_obj.context)
        return f"Queued research on {job.topic}{job.on} (task {task.id})."

    @override
    def _attempt(self, job: _QueueJob) -> str:
        return f"queue research on {job.topic}"


class SetAutonomousWorkIntent(_QueueIntentHandler):
    """Pause or resume the worker's autonomous work (running tasks finish either way)."""

    def __init__(self, intent_type: str, *, paused: bool) -> None:
        """Describe the intent that pauses (or resumes) autonomous work."""
        self.intent_type = intent_type
        self.paused = paused
        self.description = (
            "Pauses the Hydra worker's autonomous work: queued tasks wait, running ones finish"
            if paused
            else "Resumes the Hydra worker's autonomous work: queued tasks start when GPUs have "
            "room"
        )

    @override
    async def _async_act(self, job: _QueueJob) -> str:
        scheduler = await async_set_paused(job.tasks, job.intent_obj.context, paused=self.paused)
        on = job.on
        if scheduler.settings.paused:
            speech = f"Autonomous work{on} is paused"
            if running := _running(scheduler):
                speech += f"; {plural(running, 'running task')} will finish"
            return f"{speech}."
        return f"Autonomous work{on} is running; {_waiting(scheduler)}."

    @override
    def _attempt(self, job: _QueueJob) -> str:
        return "change autonomous work"


def _waiting(scheduler: SchedulerState) -> str:
    if not (queued := tasks_waiting(scheduler)):
        return "nothing is queued"
    verb = "is" if queued == 1 else "are"
    return f"{plural(queued, 'task')} {verb} queued and will run when the GPUs have room"


class StartOvernightPipelineIntent(_QueueIntentHandler):
    """Turn autonomous work on, start the chapters waiting for it, and say what will run."""

    intent_type = INTENT_START_OVERNIGHT
    description = (
        "Starts the Hydra overnight pipeline: resumes autonomous work, starts the chapters "
        "waiting for it, and tells how many tasks and chapters are queued"
    )

    @override
    async def _async_act(self, job: _QueueJob) -> str:
        scheduler = await async_set_paused(job.tasks, job.intent_obj.context, paused=False)
        speech = f"The overnight pipeline{job.on} is on: {_waiting(scheduler)}"
        if running := _running(scheduler):
            speech += f", and {running} {'is' if running == 1 else 'are'} running"
        speech += "."
        try:
            chapters = await async_start_waiting_chapters(job.entry)
        except HomeAssistantError as err:
            return f"{speech} The chapters waiting for it could not be started: {err}."
        return f"{speech} {started(chapters)}" if chapters else speech

    @override
    def _attempt(self, job: _QueueJob) -> str:
        return "start the overnight pipeline"


class OvernightFailuresIntent(intent.IntentHandler):
    """The tasks that failed since 18:00 yesterday, on every loaded worker."""

    intent_type = INTENT_OVERNIGHT_FAILURES
    description = (
        "Tells which Hydra tasks failed overnight (since 18:00 the day before), with their errors"
    )

    @override
    async def async_handle(self, intent_obj: intent.Intent) -> intent.IntentResponse:
        if not (entries := _loaded(intent_obj.hass)):
            return _refusal(intent_obj, NO_WORKER)
        queues = [e for e in entries if e.runtime_data.part(HydraTaskCoordinator) is not None]
        if not queues:
            return _refusal(intent_obj, NO_QUEUE)
        since = overnight_start().timestamp()
        failed: list[tuple[HydraConfigEntry, Task]] = []
        silent: list[str] = []
        for entry in queues:
            try:
                tasks = await TasksClient(entry.runtime_data.client).async_tasks(
                    state="failed", limit=FAILED_TASKS_READ
                )
            except HydraError as err:
                LOGGER.debug("Could not read the failed tasks of %s: %s", entry.title, err)
                silent.append(entry.title)
                continue
            failed.extend((entry, task) for task in tasks if (task.finished_at or 0) >= since)
        failed.sort(key=lambda item: item[1].finished_at or 0)
        several = len(queues) > 1
        if not failed:
            speech = "Nothing failed overnight."
        else:
            named = [_failure(entry, task, several=several) for entry, task in failed]
            if len(named) > FAILURES_SPOKEN:
                rest = len(named) - FAILURES_SPOKEN
                named = [*named[:FAILURES_SPOKEN], f"{rest} more"]
            speech = f"{plural(len(failed), 'task')} failed overnight: {'; '.join(named)}."
        if silent:
            speech += f" {' and '.join(silent)} did not answer."
        return _answer(intent_obj, speech)


class BriefingIntent(intent.IntentHandler):
    """The morning briefing of every loaded worker, read aloud (nothing is sent)."""

    intent_type = INTENT_BRIEFING
    description = (
        "Reads the Hydra briefing: last night's tasks, chapters and research, the feeds, "
        "flagged mail, cluster health, open repairs, today's calendar and the weather"
    )

    @override
    async def async_handle(self, intent_obj: intent.Intent) -> intent.IntentResponse:
        entries = [e for e in _loaded(intent_obj.hass) if e.runtime_data.routine is not None]
        if not entries:
            return _refusal(intent_obj, NO_WORKER)
        speeches = []
        for entry in entries:
            routine = entry.runtime_data.routine
            assert routine is not None
            briefing = await routine.async_briefing(send=False)
            # Paragraphs and the lines within a section are read on, as one text.
            speeches.append(" ".join(briefing["text"].split()))
        return _answer(intent_obj, " ".join(speeches))


def overnight_start() -> datetime:
    """18:00 of the day before, in Home Assistant's time zone."""
    yesterday = dt_util.now() - timedelta(days=1)
    return yesterday.replace(hour=OVERNIGHT_FROM_HOUR, minute=0, second=0, microsecond=0)


def _failure(entry: HydraConfigEntry, task: Task, *, several: bool) -> str:
    text = f"{task.kind} task {task.id}"
    if several:
        text += f" on {entry.title}"
    error = (task.error or "no error given").strip().splitlines()[0]
    if len(error) > ERROR_SPOKEN_CHARS:
        error = f"{error[: ERROR_SPOKEN_CHARS - 1]}…"
    return f"{text} ({error})"
