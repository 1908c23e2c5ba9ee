"""Forecasts in a real Home Assistant, against the worker on loopback.

The worker's forecasts part runs as in production over a history of eight days in its store in
which a folder loses 2 GB a day; only the reading of the folder's file system (how much is free
now) is the test's, since no test can fill a real disk. The sensors show the days until full and
the predicted problem, a repair appears with its evidence and offers a prune, goes away when the
forecast clears, and the prune action answers a dry run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
import os
from pathlib import Path
import time

from aiohttp import web
from homeassistant.auth.const import GROUP_ID_USER
from homeassistant.components.sensor import DOMAIN as SENSOR_DOMAIN
from homeassistant.core import Context, HomeAssistant, ServiceResponse
from homeassistant.exceptions import Unauthorized
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.hydra.briefing import async_compose
from custom_components.hydra.const import DOMAIN
from hydra_core.audit import AuditLog
from hydra_core.containers import EngineClient
from hydra_core.events import EventBus
from hydra_core.forecasts.models import PathDisk
from hydra_core.forecasts.part import ForecastsPart
from hydra_core.forecasts.prune import Pruner
from hydra_core.forecasts.service import ForecastService
from hydra_core.forecasts.store import ForecastStore
from hydra_core.gpu import NvmlProbe
from hydra_core.scheduler import TaskQuery
from hydra_core.worker.app import create_app
from tests.fake_nvml import FakeNvml
from tests.podman import PodmanEngine

from .conftest import (
    WORKER_ID,
    LoopbackWorker,
    TaskWorker,
    entry_for,
    setup_entry,
    wait_until,
)

GB = 10**9
DAY_S = 86400.0


@dataclass
class ForecastWorker(LoopbackWorker):
    """The worker with the forecasts part watching ``data_dir/watched``; ``free`` is what its
    file system has free now."""

    data_dir: Path = field(default_factory=Path)
    free: int = 20 * GB
    # The container engine it follows, if any.
    docker_host: str | None = None
    engine: EngineClient | None = None
    service: ForecastService | None = None

    @property
    def watched(self) -> Path:
        return self.data_dir / "watched"

    def measure(self, path: Path) -> PathDisk:
        return PathDisk(
            path=str(path), exists=True, bytes=0, disk_free=self.free, disk_total=500 * GB
        )

    def build_app(self) -> web.Application:
        bus = EventBus()
        audit = AuditLog(self.data_dir / "audit.db")
        engine = self.engine = EngineClient(self.docker_host) if self.docker_host else None
        self.service = ForecastService(
            ForecastStore(self.data_dir / "forecasts.db"),
            paths=[self.watched],
            bus=bus,
            probe=NvmlProbe(self.nvml),
            engine=engine,
            interval_s=3600,
            measure_path=self.measure,
        )
        pruner = Pruner(data_dir=self.data_dir, audit=audit, engine=engine)
        return create_app(
            info=self.info,
            token=self.token,
            probe=NvmlProbe(self.nvml),
            audit=audit,
            bus=bus,
            parts=[ForecastsPart(self.service, pruner)],
        )

    async def stop(self) -> None:
        """Stop serving, and close the engine (the containers part's to close in a worker)."""
        await super().stop()
        if self.engine is not None:
            await self.engine.close()
            self.engine = None


@pytest.fixture
async def forecast_worker(nvml: FakeNvml, tmp_path: Path) -> AsyncIterator[ForecastWorker]:
    """A worker whose watched folder lost 2 GB a day for eight days, 20 GB free now."""
    worker = ForecastWorker(nvml, data_dir=tmp_path)
    worker.watched.mkdir()
    store = ForecastStore(tmp_path / "forecasts.db")
    await store.async_open()
    now = time.time()
    for hour in range(8 * 24):
        when = now - hour * 3600.0
        free = 20 * GB + 2 * GB * hour / 24
        await store.async_add_disk(when, [(str(worker.watched), int(free), 500 * GB)])
    await store.async_close()
    old = tmp_path / ".settings.json.dead.tmp"  # left by a crash two days ago
    old.write_bytes(b"x" * 2048)
    then = now - 2 * DAY_S
    os.utime(old, (then, then))
    async with worker:
        yield worker


@pytest.fixture
async def forecast_entry(hass: HomeAssistant, forecast_worker: ForecastWorker) -> MockConfigEntry:
    entry = entry_for(forecast_worker)
    await setup_entry(hass, entry)
    return entry


def _sensor(hass: HomeAssistant, key: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(SENSOR_DOMAIN, DOMAIN, f"{WORKER_ID}_{key}")
    assert entity_id is not None, key
    return entity_id


def _forecast_issues(hass: HomeAssistant, entry: MockConfigEntry) -> list[ir.IssueEntry]:
    return [
        issue
        for (domain, issue_id), issue in ir.async_get(hass).issues.items()
        if domain == DOMAIN and issue_id.startswith(f"forecast_{entry.entry_id}_")
    ]


async def test_sensors_and_a_repair_from_a_forecast_that_goes_when_it_clears(
    hass: HomeAssistant, forecast_worker: ForecastWorker, forecast_entry: MockConfigEntry
) -> None:
    path = str(forecast_worker.watched)
    days = hass.states.get(_sensor(hass, f"days_until_full_{path}"))
    assert days is not None
    assert float(days.state) == pytest.approx(10.0, abs=0.5)
    assert days.attributes["unit_of_measurement"] == "d"
    assert days.attributes["free_bytes"] == 20 * GB
    assert days.attributes["growth_bytes_per_day"] == pytest.approx(2 * GB, rel=0.02)
    problems = hass.states.get(_sensor(hass, "predicted_problems"))
    assert problems is not None
    assert problems.state == "1"
    assert hass.states.get(f"{SENSOR_DOMAIN}.gpubox_container_engine_disk_use") is None
    (problem,) = problems.attributes["problems"]
    assert problem["kind"] == "disk_full"
    assert problem["subject"] == path
    assert problem["fix"] == "prune"
    assert "points over 8.0 days" in problem["based_on"]

    (issue,) = _forecast_issues(hass, forecast_entry)
    assert issue.is_fixable
    assert issue.translation_key == "forecast_disk_full"
    assert issue.severity == ir.IssueSeverity.WARNING
    assert issue.translation_placeholders is not None
    assert "fills up in 10" in issue.translation_placeholders["summary"]
    assert "sure it is not chance" in issue.translation_placeholders["evidence"]

    briefing = await async_compose(hass, forecast_entry, hours=12)
    assert briefing.sections["coming_up"].startswith(f"Coming up: {path} fills up in ")

    # Space was freed: at this pace the disk is full in 250 days, beyond the horizon.
    forecast_worker.free = 500 * GB
    assert forecast_worker.service is not None
    await forecast_worker.service.async_sample()  # the worker pushes the change
    await wait_until(lambda: not _forecast_issues(hass, forecast_entry))
    await wait_until(
        lambda: (
            (state := hass.states.get(_sensor(hass, "predicted_problems"))) is not None
            and state.state == "0"
        )
    )
    briefing = await async_compose(hass, forecast_entry, hours=12)
    assert "coming_up" not in briefing.sections


async def test_prune_action_answers_a_dry_run(
    hass: HomeAssistant, forecast_worker: ForecastWorker, forecast_entry: MockConfigEntry
) -> None:
    response = await hass.services.async_call(
        DOMAIN, "prune", {}, blocking=True, return_response=True
    )
    assert response is not None
    assert response["dry_run"] is True
    assert response["items"] == [
        {
            "kind": "temp_file",
            "name": ".settings.json.dead.tmp",
            "bytes": 2048,
            "result": "would_remove",
            "detail": None,
        }
    ]
    assert response["freed_bytes"] == 2048
    assert (forecast_worker.data_dir / ".settings.json.dead.tmp").exists()


async def test_the_repair_fix_flow_prunes(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    forecast_worker: ForecastWorker,
    forecast_entry: MockConfigEntry,
) -> None:
    assert await async_setup_component(hass, "repairs", {})
    (issue,) = _forecast_issues(hass, forecast_entry)
    client = await hass_client()
    started = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue.issue_id}
    )
    assert started.status == 200, await started.text()
    form = await started.json()
    assert form["step_id"] == "confirm"
    assert form["description_placeholders"]["count"] == "1"
    assert form["description_placeholders"]["size"] == "2.0 kB"
    assert (forecast_worker.data_dir / ".settings.json.dead.tmp").exists()  # a dry run so far
    done = await client.post(f"/api/repairs/issues/fix/{form['flow_id']}", json={})
    assert done.status == 200, await done.text()
    assert (await done.json())["type"] == "create_entry"
    assert not (forecast_worker.data_dir / ".settings.json.dead.tmp").exists()


async def test_only_an_administrator_may_have_a_prune_remove_files(
    hass: HomeAssistant,
    hass_admin_user: MockUser,
    forecast_worker: ForecastWorker,
    forecast_entry: MockConfigEntry,
) -> None:
    member = await hass.auth.async_create_user("Bob", group_ids=[GROUP_ID_USER])
    temp = forecast_worker.data_dir / ".settings.json.dead.tmp"

    async def prune(user_id: str, **data: object) -> ServiceResponse:
        return await hass.services.async_call(
            DOMAIN,
            "prune",
            data,
            blocking=True,
            return_response=True,
            context=Context(user_id=user_id),
        )

    with pytest.raises(Unauthorized) as caught:
        await prune(member.id, dry_run=False)
    assert caught.value.translation_key == "admin_delete"
    assert temp.exists()
    assert (await prune(member.id))["dry_run"] is True  # a dry run is anyone's
    done = await prune(hass_admin_user.id, dry_run=False)
    assert [item["result"] for item in done["items"]] == ["ok"]
    assert not temp.exists()


async def test_a_prune_task_that_removes_files_is_an_administrators_to_queue(
    hass: HomeAssistant,
    hass_owner_user: MockUser,
    task_worker: TaskWorker,
    tasks_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, tasks_entry)
    # Not the first user, which would be the owner.
    member = await hass.auth.async_create_user("Bob", group_ids=[GROUP_ID_USER])
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            DOMAIN,
            "queue_task",
            {"kind": "prune", "payload": {"dry_run": False}},
            blocking=True,
            context=Context(user_id=member.id),
        )
    assert task_worker.scheduler is not None
    assert await task_worker.scheduler.async_list(TaskQuery(kind="prune")) == []


async def test_the_engine_disk_use_sensor(
    hass: HomeAssistant, nvml: FakeNvml, podman: PodmanEngine, tmp_path: Path
) -> None:
    worker = ForecastWorker(nvml, data_dir=tmp_path, docker_host=podman.docker_host)
    worker.watched.mkdir()
    async with worker:
        await setup_entry(hass, entry_for(worker))
        state = hass.states.get(_sensor(hass, "engine_disk"))
        assert state is not None
        images = podman.api("GET", "/v1.41/images/json")
        assert state.attributes["images"] == len(images)
        assert state.attributes["images_bytes"] == sum(image["Size"] for image in images)
        assert float(state.state) > 0
        assert state.attributes["unit_of_measurement"] == "GB"
