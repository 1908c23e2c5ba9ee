"""The forecasts part: disk use and what the worker sees coming.

A "days until full" sensor per watched folder, a "predicted problems" sensor whose attributes
hold each forecast with its evidence, a repair per predicted problem (raised before the failure,
gone when the forecast clears; a disk filling up offers "run a prune now" as its fix), and the
``hydra.prune`` action, which answers what a prune would remove (a dry run, the default) or did.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
import hashlib
from typing import Any, Final, override

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import Platform, UnitOfInformation, UnitOfTime
from homeassistant.core import Context, ServiceCall, ServiceResponse, callback
from homeassistant.helpers import config_validation as cv, issue_registry as ir
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util
import probatio

from hydra_core.client import HydraError
from hydra_core.forecasts.client import ForecastsClient
from hydra_core.forecasts.models import (
    EVENT_FORECASTS,
    PRUNE_IMAGES,
    DiskReport,
    EngineDisk,
    Forecast,
    ForecastReport,
    PathDisk,
    PruneReport,
)
from hydra_core.models import WorkerEvent
from hydra_core.wire import dump, load

from ..actions import ATTR_CONFIG_ENTRY_ID, action_part
from ..const import DOMAIN, FORECASTS_SCAN_INTERVAL
from ..coordinator import HydraPartCoordinator
from ..data import HydraConfigEntry
from ..entity import HydraWorkerPartEntity, async_actor
from ..helpers import worker_error
from ..part import Part

SERVICE_PRUNE: Final = "prune"
ATTR_DRY_RUN: Final = "dry_run"
ATTR_IMAGES: Final = "images"
ATTR_BUDGET_GB: Final = "budget_gb"
# What a repair's fix flow carries: which worker, and what to do.
ISSUE_ENTRY: Final = "entry_id"
ISSUE_FIX: Final = "fix"
FIX_PRUNE: Final = "prune"
_GB: Final = 10**9
# How many predicted problems the briefing names.
BRIEFING_NAMED: Final = 4

PRUNE_SCHEMA: Final = probatio.Schema(
    {
        probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        probatio.Optional(ATTR_DRY_RUN, default=True): cv.boolean,
        probatio.Optional(ATTR_IMAGES): probatio.In(PRUNE_IMAGES),
        probatio.Optional(ATTR_BUDGET_GB): probatio.All(
            probatio.Coerce(float), probatio.Range(min=0)
        ),
    }
)


@dataclass(frozen=True, slots=True)
class HydraForecastData:
    """The watched folders and the predicted problems."""

    disk: DiskReport
    forecasts: ForecastReport


def issue_id(entry: HydraConfigEntry, forecast: Forecast) -> str:
    """The repair of one forecast: the worker's, by kind and subject (hashed: a path has
    characters an issue id should not)."""
    subject = hashlib.sha256(forecast.subject.encode()).hexdigest()[:12]
    return f"{issue_prefix(entry)}{forecast.kind}_{subject}"


def issue_prefix(entry: HydraConfigEntry) -> str:
    return f"forecast_{entry.entry_id}_"


class HydraForecastCoordinator(HydraPartCoordinator[HydraForecastData, ForecastsClient]):
    """Disk use and forecasts, polled every five minutes; a change of forecasts is pushed."""

    part = "forecasts"
    api_type = ForecastsClient
    disabled = "forecasts_disabled"
    interval = FORECASTS_SCAN_INTERVAL

    @override
    async def async_fetch(self) -> HydraForecastData:
        disk, forecasts = await asyncio.gather(self.api.async_disk(), self.api.async_forecasts())
        return HydraForecastData(disk=disk, forecasts=forecasts)

    @override
    async def _async_update_data(self) -> HydraForecastData:
        data = await super()._async_update_data()
        self._update_issues(data.forecasts)
        return data

    @callback
    @override
    def async_set_updated_data(self, data: HydraForecastData) -> None:
        self._update_issues(data.forecasts)
        super().async_set_updated_data(data)

    @override
    async def async_handle_event(self, event: WorkerEvent) -> None:
        forecasts = load(ForecastReport, event.data)
        self.async_set_updated_data(replace(self.data, forecasts=forecasts))

    @override
    def diagnostics(self) -> dict[str, Any]:
        return {
            **super().diagnostics(),
            "forecasts": dump(self.data.forecasts),
            "disk": dump(self.data.disk),
        }

    def _update_issues(self, report: ForecastReport) -> None:
        """A repair per predicted problem; those no longer predicted go."""
        entry = self.config_entry
        wanted = {issue_id(entry, forecast): forecast for forecast in report.forecasts}
        registry = ir.async_get(self.hass)
        prefix = issue_prefix(entry)
        for domain, existing in list(registry.issues):
            if domain == DOMAIN and existing.startswith(prefix) and existing not in wanted:
                ir.async_delete_issue(self.hass, DOMAIN, existing)
        for key, forecast in wanted.items():
            fixable = forecast.fix == FIX_PRUNE
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                key,
                is_fixable=fixable,
                is_persistent=False,
                severity=ir.IssueSeverity.ERROR
                if forecast.severity == "critical"
                else ir.IssueSeverity.WARNING,
                translation_key=f"forecast_{forecast.kind}",
                translation_placeholders={
                    "worker": entry.title,
                    "subject": forecast.label,
                    "summary": forecast.summary,
                    "evidence": evidence(forecast),
                },
                data={ISSUE_ENTRY: entry.entry_id, ISSUE_FIX: FIX_PRUNE} if fixable else None,
            )


def evidence(forecast: Forecast) -> str:
    """What a forecast rests on, in one sentence."""
    basis = forecast.basis
    days = basis.window_s / 86400
    return (
        f"{basis.samples} points over {days:.1f} days; the trend is {basis.slope_per_day:+.3g}"
        f" {basis.unit} a day (95 % between {basis.slope_low_per_day:+.3g} and"
        f" {basis.slope_high_per_day:+.3g}; least squares {basis.ls_slope_per_day:+.3g}, R²"
        f" {basis.r2:.2f}), {basis.confidence:.1%} sure it is not chance"
    )


def size_text(count: int) -> str:
    """Bytes as people read them (decimal units, as disks are sold)."""
    size = float(count)
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def coming_up(coordinator: HydraForecastCoordinator | None) -> str | None:
    """The briefing's "Coming up": what the worker predicts, soonest first."""
    if coordinator is None:
        return None
    summaries = [forecast.summary for forecast in coordinator.data.forecasts.forecasts]
    if not summaries:
        return None
    named = summaries[:BRIEFING_NAMED]
    if len(summaries) > BRIEFING_NAMED:
        named.append(f"and {len(summaries) - BRIEFING_NAMED} more predicted problems")
    return "Coming up: " + "; ".join(named) + "."


def forecast_attributes(forecast: Forecast) -> dict[str, Any]:
    """One forecast as the predicted problems sensor shows it."""
    return {
        "kind": forecast.kind,
        "subject": forecast.label,
        "severity": forecast.severity,
        "summary": forecast.summary,
        "days_until": None if forecast.days_until is None else round(forecast.days_until, 2),
        "expected_at": None
        if forecast.expected_at is None
        else dt_util.utc_from_timestamp(forecast.expected_at).isoformat(),
        "based_on": evidence(forecast),
        "fix": forecast.fix,
    }


async def async_prune(
    coordinator: HydraForecastCoordinator,
    context: Context | None,
    *,
    dry_run: bool = True,
    images: str | None = None,
    budget_bytes: int | None = None,
) -> PruneReport:
    """Prune on behalf of the user or automation of ``context`` (a dry run is open to every
    user; removing takes an administrator), then read the disks again."""
    actor = await async_actor(coordinator.hass, context, admin=None if dry_run else "delete")
    try:
        report = await coordinator.api.async_prune(
            actor=actor, dry_run=dry_run, images=images, budget_bytes=budget_bytes
        )
    except HydraError as err:
        raise worker_error(coordinator, err, failed_key="prune_failed") from err
    if not dry_run:
        await coordinator.async_request_refresh()
    return report


def prune_response(report: PruneReport) -> dict[str, Any]:
    """The action's answer."""
    return {
        "dry_run": report.dry_run,
        "freed_bytes": report.freed_bytes,
        "budget_bytes": report.budget_bytes,
        "items": [
            {
                "kind": item.kind,
                "name": item.name,
                "bytes": item.bytes,
                "result": item.result,
                "detail": item.detail,
            }
            for item in report.items
        ],
        "kept_in_use": report.kept_in_use,
        "protected": list(report.protected),
        "skipped": list(report.skipped),
    }


async def _async_prune(call: ServiceCall) -> ServiceResponse:
    budget = call.data.get(ATTR_BUDGET_GB)
    report = await async_prune(
        action_part(call, HydraForecastCoordinator),
        call.context,
        dry_run=call.data[ATTR_DRY_RUN],
        images=call.data.get(ATTR_IMAGES),
        budget_bytes=None if budget is None else round(budget * _GB),
    )
    return prune_response(report)


DAYS_UNTIL_FULL = SensorEntityDescription(
    key="days_until_full",
    translation_key="days_until_full",
    native_unit_of_measurement=UnitOfTime.DAYS,
    state_class=SensorStateClass.MEASUREMENT,
    suggested_display_precision=1,
)
ENGINE_DISK = SensorEntityDescription(
    key="engine_disk",
    translation_key="engine_disk",
    device_class=SensorDeviceClass.DATA_SIZE,
    state_class=SensorStateClass.MEASUREMENT,
    native_unit_of_measurement=UnitOfInformation.BYTES,
    suggested_unit_of_measurement=UnitOfInformation.GIGABYTES,
    suggested_display_precision=1,
)
PREDICTED_PROBLEMS = SensorEntityDescription(
    key="predicted_problems",
    translation_key="predicted_problems",
    state_class=SensorStateClass.MEASUREMENT,
)


@callback
def async_setup_sensors(
    entry: HydraConfigEntry,
    forecasts: HydraForecastCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The predicted problems, the engine's disk use where the worker follows an engine, and
    days until full per watched folder (new ones too)."""
    entities: list[SensorEntity] = [HydraPredictedProblemsSensor(forecasts, PREDICTED_PROBLEMS)]
    if forecasts.data.disk.engine is not None:
        entities.append(HydraEngineDiskSensor(forecasts, ENGINE_DISK))
    async_add_entities(entities)
    known: set[str] = set()

    @callback
    def add_new() -> None:
        new = [disk.path for disk in forecasts.data.disk.paths if disk.path not in known]
        if new:
            known.update(new)
            async_add_entities([HydraDaysUntilFullSensor(forecasts, path) for path in new])

    add_new()
    entry.async_on_unload(forecasts.async_add_listener(add_new))


class HydraPredictedProblemsSensor(HydraWorkerPartEntity[HydraForecastCoordinator], SensorEntity):
    """How many problems the worker predicts within its horizon; each in the attributes."""

    @property
    @override
    def native_value(self) -> int:
        return len(self.coordinator.data.forecasts.forecasts)

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any]:
        report = self.coordinator.data.forecasts
        return {
            "horizon_days": report.horizon_days,
            "problems": [forecast_attributes(forecast) for forecast in report.forecasts],
        }


class HydraEngineDiskSensor(HydraWorkerPartEntity[HydraForecastCoordinator], SensorEntity):
    """What the container engine keeps on disk: images, build cache, volumes and the
    containers' writable layers; each, and what a prune could free, in the attributes."""

    @property
    def engine(self) -> EngineDisk | None:
        """The engine's disk use; None while it is not reported."""
        return self.coordinator.data.disk.engine

    @property
    @override
    def available(self) -> bool:
        return super().available and self.engine is not None and self.engine.available

    @property
    @override
    def native_value(self) -> int | None:
        engine = self.engine
        if engine is None:
            return None
        return (
            engine.images_bytes
            + engine.build_cache_bytes
            + engine.volumes_bytes
            + engine.containers_bytes
        )

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any]:
        engine = self.engine
        return {} if engine is None else dump(engine)


class HydraDaysUntilFullSensor(HydraWorkerPartEntity[HydraForecastCoordinator], SensorEntity):
    """Days until a watched folder's file system is full at its current growth; unknown while
    it does not certainly grow."""

    def __init__(self, coordinator: HydraForecastCoordinator, path: str) -> None:
        """One folder of the worker, on the worker's device."""
        description = replace(
            DAYS_UNTIL_FULL,
            key=f"days_until_full_{path}",
            translation_placeholders={"path": path},
        )
        super().__init__(coordinator, description)
        self.path = path

    @property
    def disk(self) -> PathDisk | None:
        """The folder as last measured; None once the worker no longer watches it."""
        return next((d for d in self.coordinator.data.disk.paths if d.path == self.path), None)

    @property
    @override
    def available(self) -> bool:
        disk = self.disk
        return super().available and disk is not None and disk.exists and disk.error is None

    @property
    @override
    def native_value(self) -> float | None:
        disk = self.disk
        return None if disk is None else disk.days_until_full

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any]:
        disk = self.disk
        if disk is None:
            return {}
        return {
            "path": disk.path,
            "folder_bytes": disk.bytes,
            "free_bytes": disk.disk_free,
            "total_bytes": disk.disk_total,
            "growth_bytes_per_day": None
            if disk.growth_bytes_per_day is None
            else round(disk.growth_bytes_per_day),
            "hours_sampled": disk.samples,
        }


FORECASTS = Part(
    coordinator=HydraForecastCoordinator,
    events=frozenset({EVENT_FORECASTS}),
    platforms={Platform.SENSOR: async_setup_sensors},
    actions={SERVICE_PRUNE: (_async_prune, PRUNE_SCHEMA)},
)
