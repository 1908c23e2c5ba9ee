"""GPU power profiles: eco, balanced or full power (or a limit in watts) per GPU, kept enforced.

NVML forgets a limit on a driver reload or a GPU reset, so the choice for each GPU (by UUID) is
kept in ``DATA_DIR/power.json``, applied again when the worker starts, and watched: whenever a
card's enforced limit drifts from its target, the target is set again.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
import logging
import math
from pathlib import Path
from typing import Any

from ..background import cancel, repeat
from ..errors import Refusal
from ..events import EventBus
from ..gpu.base import GpuProbe, PowerLimitError
from ..gpu.models import GpuInfo, GpuReport
from ..models import Actor
from ..settings_file import load_settings, save_settings
from ..wire import dump
from .models import EVENT_POWER, POWER_CUSTOM, POWER_PROFILES, GpuPower, PowerSettings, PowerStatus

_LOGGER = logging.getLogger(__name__)

SETTINGS_FILE = "power.json"
DEFAULT_INTERVAL_S = 30.0
# A card that enforces its target within this many watts needs nothing done.
_TOLERANCE_W = 0.5
# What the API answers when setting a limit failed, by PowerLimitError code.
_FAILURE_ANSWERS = {
    "not_permitted": (403, "power_not_permitted"),
    "not_supported": (409, "power_unavailable"),
    "out_of_range": (400, "power_limit_out_of_range"),
    "failed": (503, "power_failed"),
}


class PowerRequestError(Refusal):
    """A request the power manager refuses; ``status`` and ``code`` are what the API answers."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message, code=code, status=status)


@dataclass(frozen=True, slots=True)
class _Choice:
    """What was asked for a GPU: a profile, or ``custom`` with a limit in watts."""

    profile: str
    limit_w: float | None = None

    def __str__(self) -> str:
        return f"{self.limit_w:g} W" if self.profile == POWER_CUSTOM else self.profile


@dataclass(frozen=True, slots=True)
class _Target:
    """The limit a choice means for one card; ``wanted_w`` is set when it had to be clamped."""

    watts: float
    wanted_w: float | None = None


class PowerManager:
    """Applies the chosen power profiles and keeps them applied.

    Requests and the watch loop take turns (one lock), and read the GPUs through the probe's
    shared ``async_read``; every change of what ``status`` says is published as EVENT_POWER.
    """

    def __init__(
        self,
        probe: GpuProbe,
        *,
        path: Path,
        settings: PowerSettings | None = None,
        bus: EventBus | None = None,
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        """Prepare; ``async_start`` applies what was kept and starts watching."""
        self.settings = settings or PowerSettings()
        self._probe = probe
        self._path = path
        self._bus = bus
        self._interval_s = interval_s
        self._choices: dict[str, _Choice] = {}
        # Why a GPU does not enforce its target, by UUID; logged when it first happens.
        self._errors: dict[str, PowerLimitError] = {}
        self._lock = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None
        self._published: PowerStatus | None = None

    # Life cycle

    async def async_start(self) -> None:
        """Load the kept choices, apply them, and watch that they stay applied."""
        saved = await asyncio.get_running_loop().run_in_executor(
            None, load_settings, self._path, ("gpus",)
        )
        self._choices = _parse_choices(saved.get("gpus"), self._path)
        await self._async_enforce()
        self._watcher = asyncio.create_task(
            repeat(
                self._async_enforce,
                self._interval_s,
                logger=_LOGGER,
                failure="Checking the GPU power limits failed",
            ),
            name="hydra power watch",
        )

    async def async_stop(self) -> None:
        """Stop watching; the cards keep their limits."""
        await cancel(self._watcher)
        self._watcher = None

    # Requests

    async def async_status(self) -> PowerStatus:
        """Every GPU's profile, target and enforced limit, as they are now."""
        return self._status(await self._probe.async_read())

    async def async_set(
        self,
        actor: Actor,
        *,
        profile: str | None = None,
        limit_w: float | None = None,
        gpus: list[int] | None = None,
    ) -> PowerStatus:
        """Set a profile, or a limit in watts, on some GPUs (default: all) and keep it.

        Everything is checked before anything changes: an unknown profile or GPU, or a limit
        outside a card's range, changes nothing. A card that refuses the limit keeps the choice
        (it is applied once it may) and the request fails with what the card said.
        """
        if (profile is None) == (limit_w is None):
            raise PowerRequestError(
                400,
                "invalid_body",
                f'Send {{"profile": one of {", ".join(POWER_PROFILES)}}} or {{"limit_w": watts}}',
            )
        if profile is not None and profile not in POWER_PROFILES:
            raise PowerRequestError(
                400,
                "invalid_profile",
                f"Unknown power profile {profile!r}; use {', '.join(POWER_PROFILES)}",
            )
        choice = _Choice(profile) if profile is not None else _Choice(POWER_CUSTOM, limit_w)
        async with self._lock:
            report = await self._probe.async_read()
            if not report.available:
                raise PowerRequestError(
                    409,
                    "power_unavailable",
                    f"This worker cannot manage GPU power: {report.reason or 'no GPU'}",
                )
            chosen = _chosen(report, gpus)
            targets = [self._target(choice, gpu) for gpu in chosen]
            _LOGGER.info(
                "%s sets GPU power to %s on GPU %s",
                _who(actor),
                choice,
                ", ".join(str(gpu.index) for gpu in chosen),
            )
            for gpu in chosen:
                self._choices[gpu.uuid] = choice
            await asyncio.get_running_loop().run_in_executor(None, self._save)
            failures: list[PowerLimitError] = []
            for gpu, target in zip(chosen, targets, strict=True):
                if target.wanted_w is not None:
                    _LOGGER.info(
                        "%s on GPU %d means %g W, outside the card's range %s: using %g W",
                        choice,
                        gpu.index,
                        target.wanted_w,
                        _range(gpu),
                        target.watts,
                    )
                if _enforces(gpu, target.watts):
                    self._clear_error(gpu)
                elif (error := await self._async_apply(gpu, target.watts)) is not None:
                    failures.append(error)
            status = await self._async_publish(reread=True)
        if failures:
            raise _failure(choice, failures)
        return status

    # Enforcement

    async def _async_enforce(self) -> None:
        """Set the target again on every card whose enforced limit drifted from it."""
        async with self._lock:
            report = await self._probe.async_read()
            applied = False
            for gpu in report.gpus:
                if (choice := self._choices.get(gpu.uuid)) is None:
                    continue
                try:
                    target = self._target(choice, gpu)
                except PowerRequestError as err:
                    code = "not_supported" if err.status == 409 else "failed"
                    self._record_error(gpu, PowerLimitError(code, err.message))
                    continue
                if _enforces(gpu, target.watts):
                    self._clear_error(gpu)
                    continue
                if gpu.uuid not in self._errors:
                    _LOGGER.info(
                        "GPU %d enforces %s W instead of %g W (%s); setting it again",
                        gpu.index,
                        "no" if gpu.power_limit_w is None else f"{gpu.power_limit_w:g}",
                        target.watts,
                        choice,
                    )
                await self._async_apply(gpu, target.watts)
                applied = True
            await self._async_publish(reread=applied, report=report)

    async def _async_apply(self, gpu: GpuInfo, watts: float) -> PowerLimitError | None:
        """Set one card's limit; what went wrong is recorded (and returned)."""
        try:
            await self._probe.async_set_power_limit(gpu.index, gpu.uuid, watts)
        except PowerLimitError as err:
            self._record_error(gpu, err)
            return err
        _LOGGER.info("GPU %d power limit set to %g W", gpu.index, watts)
        self._clear_error(gpu)
        return None

    def _record_error(self, gpu: GpuInfo, error: PowerLimitError) -> None:
        previous = self._errors.get(gpu.uuid)
        self._errors[gpu.uuid] = error
        if previous is None or (previous.code, previous.message) != (error.code, error.message):
            _LOGGER.warning("GPU %d does not enforce its power profile: %s", gpu.index, error)

    def _clear_error(self, gpu: GpuInfo) -> None:
        if self._errors.pop(gpu.uuid, None) is not None:
            _LOGGER.info("GPU %d enforces its power profile again", gpu.index)

    async def _async_publish(self, *, reread: bool, report: GpuReport | None = None) -> PowerStatus:
        """The status now; published when it differs from what was published last."""
        if reread or report is None:
            report = await self._probe.async_read()
        status = self._status(report)
        if status != self._published:
            self._published = status
            if self._bus is not None:
                self._bus.publish(EVENT_POWER, dump(status))
        return status

    # What the choices mean

    def _target(self, choice: _Choice, gpu: GpuInfo) -> _Target:
        """The limit ``choice`` means for ``gpu``; PowerRequestError when there is none."""
        low, high = gpu.power_limit_min_w, gpu.power_limit_max_w
        if choice.profile == POWER_CUSTOM:
            assert choice.limit_w is not None
            if low is None or high is None:
                raise PowerRequestError(
                    409,
                    "power_unavailable",
                    f"GPU {gpu.index} ({gpu.name}) does not report the range of its power limit",
                )
            if not low <= choice.limit_w <= high:
                raise PowerRequestError(
                    400,
                    "power_limit_out_of_range",
                    f"{choice.limit_w:g} W is outside the power limit range of GPU {gpu.index}"
                    f" ({gpu.name}): {_range(gpu)}",
                )
            return _Target(choice.limit_w)
        if (default := gpu.power_limit_default_w) is None:
            raise PowerRequestError(
                409,
                "power_unavailable",
                f"GPU {gpu.index} ({gpu.name}) does not report its default power limit",
            )
        percent = {
            "eco": self.settings.eco_percent,
            "balanced": self.settings.balanced_percent,
        }.get(choice.profile, 100.0)
        # Whole milliwatts: what NVML takes, and what it reports back.
        wanted = round(default * percent * 10) / 1000
        watts = wanted
        if low is not None:
            watts = max(watts, low)
        if high is not None:
            watts = min(watts, high)
        return _Target(watts, None if watts == wanted else wanted)

    def _status(self, report: GpuReport) -> PowerStatus:
        if not report.available:
            return PowerStatus(
                available=False, reason=report.reason or "No GPU", settings=self.settings
            )
        return PowerStatus(
            available=True,
            settings=self.settings,
            gpus=tuple(self._gpu_power(gpu) for gpu in report.gpus),
        )

    def _gpu_power(self, gpu: GpuInfo) -> GpuPower:
        choice = self._choices.get(gpu.uuid)
        target: float | None = None
        if choice is not None:
            with contextlib.suppress(PowerRequestError):
                target = self._target(choice, gpu).watts
        error = self._errors.get(gpu.uuid)
        return GpuPower(
            index=gpu.index,
            uuid=gpu.uuid,
            name=gpu.name,
            profile=choice.profile if choice else None,
            target_w=target,
            enforced_w=gpu.power_limit_w,
            default_w=gpu.power_limit_default_w,
            min_w=gpu.power_limit_min_w,
            max_w=gpu.power_limit_max_w,
            error=error.message if error else None,
            error_code=error.code if error else None,
        )

    def _save(self) -> None:
        save_settings(
            self._path, {"gpus": {uuid: dump(choice) for uuid, choice in self._choices.items()}}
        )


def _chosen(report: GpuReport, indexes: list[int] | None) -> list[GpuInfo]:
    """The GPUs a request names (all when none); 404 for an index no GPU has."""
    if indexes is None:
        return list(report.gpus)
    by_index = {gpu.index: gpu for gpu in report.gpus}
    missing = sorted(set(indexes) - set(by_index))
    if missing:
        raise PowerRequestError(
            404, "gpu_not_found", f"No GPU with index {', '.join(map(str, missing))}"
        )
    return [by_index[index] for index in sorted(set(indexes))]


def _enforces(gpu: GpuInfo, watts: float) -> bool:
    return gpu.power_limit_w is not None and abs(gpu.power_limit_w - watts) <= _TOLERANCE_W


def _range(gpu: GpuInfo) -> str:
    low, high = gpu.power_limit_min_w, gpu.power_limit_max_w
    return f"{'?' if low is None else f'{low:g}'} to {'?' if high is None else f'{high:g}'} W"


def _who(actor: Actor) -> str:
    name = actor.name or actor.id
    return f"{actor.type} {name}" if name else actor.type


def _failure(choice: _Choice, failures: list[PowerLimitError]) -> PowerRequestError:
    """What the API answers when cards refused: the gravest refusal, every card's reason."""
    first = min(failures, key=lambda error: list(_FAILURE_ANSWERS).index(error.code))
    status, code = _FAILURE_ANSWERS[first.code]
    message = "; ".join(error.message for error in failures)
    if first.code != "out_of_range":
        message += f". Hydra keeps {choice} and applies it as soon as the card accepts it"
    return PowerRequestError(status, code, message)


def _parse_choices(raw: Any, path: Path) -> dict[str, _Choice]:
    """The kept choices; entries that make no sense are left out (and logged)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        _LOGGER.warning("Ignoring the GPU power choices in %s: not an object", path)
        return {}
    choices: dict[str, _Choice] = {}
    for uuid, entry in raw.items():
        profile = entry.get("profile") if isinstance(entry, dict) else None
        limit = entry.get("limit_w") if isinstance(entry, dict) else None
        if profile in POWER_PROFILES:
            choices[uuid] = _Choice(profile)
        elif (
            profile == POWER_CUSTOM
            and isinstance(limit, int | float)
            and not isinstance(limit, bool)
            and math.isfinite(limit)
        ):
            choices[uuid] = _Choice(POWER_CUSTOM, float(limit))
        else:
            _LOGGER.warning("Ignoring the power choice for %s in %s: %r", uuid, path, entry)
    return choices
