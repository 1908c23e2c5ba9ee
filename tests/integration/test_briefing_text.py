"""How the briefing words what the worker reports: the sections a night with containers,
several GPUs and repairs produces, in the user's units, read as plain sentences."""

from __future__ import annotations

from dataclasses import replace

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util.unit_system import US_CUSTOMARY_SYSTEM

from custom_components.hydra.briefing import _creative, _health, _work, async_compose
from custom_components.hydra.const import DOMAIN
from hydra_core.creative.models import ChapterStatus, Progress
from hydra_core.gpu.models import GpuNight
from hydra_core.models import Actor, AuditEntry
from hydra_core.scheduler.models import NightReport, Task

from .conftest import RoutineWorker, entry_for

HEALER = Actor(type="self_heal", name="Self-healing")


def _audit(number: int, container: str, result: str = "ok", actor: Actor = HEALER) -> AuditEntry:
    return AuditEntry(
        id=number, time=number, actor=actor, container=container, action="restart", result=result
    )


def _night(index: int, **readings: float) -> GpuNight:
    return GpuNight(
        index=index, uuid=f"gpu-{index}", name="NVIDIA GeForce RTX 4090", samples=100, **readings
    )


def _task(number: int, kind: str, state: str, **fields: object) -> Task:
    return Task(
        id=number,
        kind=kind,
        payload=dict(fields.pop("payload", {})),  # type: ignore[arg-type]
        priority=50,
        state=state,
        actor=Actor(type="user"),
        **fields,  # type: ignore[arg-type]
    )


REPORT = NightReport(
    since=0,
    until=36_000,
    tasks=(
        _task(
            1,
            "research",
            "succeeded",
            payload={"topic": "solar batteries"},
            started_at=0,
            finished_at=4_000,
        ),
        _task(2, "maintenance", "succeeded", started_at=10, finished_at=50),
        _task(3, "quality_scoring", "failed", attempts=3, error="CUDA out of memory.\ntrace"),
        _task(4, "research", "cancelled", payload={"topic": "RoPE"}),
    ),
    waiting=1,
    gpus=(
        _night(0, peak_temperature_c=71, energy_wh=1_500),
        _night(1, peak_temperature_c=64, energy_wh=900),
    ),
    healing=(
        _audit(1, "comfyui"),
        _audit(2, "comfyui"),
        _audit(3, "postgres", "refused"),
        _audit(4, "ollama", actor=Actor(type="user", name="Ada")),
    ),
    unhealthy=("ollama", "redis"),
    containers_available=True,
)


def test_work_names_tasks_durations_errors_and_what_waits() -> None:
    """Counts first, then what was done (with durations), what failed (first line of its
    error), and what waits."""
    assert _work(REPORT, paused=True) == (
        "Overnight, 4 tasks ended: 2 succeeded, 1 failed and 1 cancelled. "
        "Done: research on solar batteries in 1 hour 7 minutes and maintenance in 40 "
        "seconds. Failed: quality scoring after 3 attempts (CUDA out of memory). "
        "1 task is waiting in the queue, and autonomous work is paused."
    )
    assert _work(NightReport(since=0, until=1), paused=False) is None


def test_work_leaves_chapters_to_the_creative_section() -> None:
    """The tasks the pipeline queued for a chapter (its own, its images, voice lines and
    package) are not counted or named: the Creative section tells how each chapter went."""
    chapter_tasks = (
        _task(10, "chapter_generation", "succeeded", payload={"chapter_id": 4}),
        *(
            _task(11 + n, "asset_generation", "succeeded", payload={"chapter_id": 4})
            for n in range(6)
        ),
        _task(17, "voice_line", "failed", payload={"chapter_id": 4, "address": "v1"}),
    )
    with_chapter = replace(REPORT, tasks=(*REPORT.tasks, *chapter_tasks))
    assert _work(with_chapter, paused=True) == _work(REPORT, paused=True)
    assert _work(replace(REPORT, tasks=chapter_tasks, waiting=0), paused=False) is None


def _chapter(number: int, state: str, **fields: object) -> ChapterStatus:
    return ChapterStatus(
        id=number,
        title=f"Chapter {number}",
        project="glass-crown",
        state=state,
        **fields,  # type: ignore[arg-type]
    )


def test_creative_tells_what_each_chapter_made_and_what_waits() -> None:
    """Chapters that ended in the span, in the order they ended: what each made (auto-accepted,
    waiting for review, voice lines) or why it failed; then what still runs and waits. Older
    chapters are left out."""
    chapters = [
        _chapter(7, "waiting"),
        _chapter(6, "waiting"),
        _chapter(5, "running", stage="voices", percent=61.6),
        _chapter(
            4,
            "failed",
            finished_at=30_000,
            error="ComfyUI did not answer.\nTraceback",
        ),
        _chapter(
            3,
            "succeeded",
            name="The Glass Crown",
            finished_at=20_000,
            images=Progress(done=24, total=24),
            voices=Progress(done=20, total=20),
            auto_accepted=21,
            pending_review=3,
            package="/data/creative/glass-crown/3.zip",
        ),
        _chapter(2, "cancelled", finished_at=25_000),
        _chapter(1, "succeeded", finished_at=100, images=Progress(done=4, total=4)),
    ]
    assert _creative(chapters, since=1_000) == (
        "The Glass Crown is packaged, with 24 images (21 accepted automatically, 3 wait for "
        "review) and 20 voice lines. Chapter 2 was cancelled. Chapter 4 failed (ComfyUI did "
        "not answer). Chapter 5 is still running (speaking its lines, 62 percent done). "
        "2 chapters wait for the overnight pipeline."
    )
    assert _creative([chapters[-1]], since=1_000) is None


async def test_health_in_the_users_units(hass: HomeAssistant) -> None:
    """The hottest card by name (two of a model get their index), energy summed, what
    self-healing and people did, and what is unhealthy now."""
    hass.config.units = US_CUSTOMARY_SYSTEM
    assert _health(hass, REPORT) == (
        "The GPUs peaked at 160 °F on the RTX 4090 number 0 and used 2.4 kilowatt-hours. "
        "Self-healing restarted comfyui twice, self-healing tried to restart (refused) "
        "postgres once and Ada restarted ollama once. ollama and redis are unhealthy now."
    )


async def test_alerts_name_open_repairs_and_firing_alerts(
    hass: HomeAssistant, routine_worker: RoutineWorker
) -> None:
    """Repairs read as Repairs titles them; a dismissed one is left out; alerts that are on."""
    entry = entry_for(routine_worker)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    for issue_id in ("one", "two"):
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key="power_not_permitted",
            translation_placeholders={"worker": issue_id, "error": "no"},
        )
    ir.async_get(hass).async_ignore(DOMAIN, "two", True)
    hass.states.async_set("alert.freezer_door", "on", {"friendly_name": "Freezer door"})
    hass.states.async_set("alert.garage", "off", {"friendly_name": "Garage"})
    briefing = await async_compose(hass, entry, hours=1)
    assert briefing.sections["alerts"] == (
        "Home Assistant has 1 open repair: Hydra worker one may not change GPU power limits. "
        "The alert Freezer door is on."
    )
