"""Words for people: what Assist says and what the briefing reads, in one way of speaking."""

from __future__ import annotations

from collections.abc import Sequence

from homeassistant.const import UnitOfTemperature
from homeassistant.core import HomeAssistant
from homeassistant.util.unit_conversion import TemperatureConverter

from hydra_core.gpu.models import GpuInfo

# What Assist says when no Hydra worker is loaded.
NO_WORKER = "No Hydra worker is connected."
_NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def plural(count: int, noun: str) -> str:
    """``1 task``, ``2 tasks``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def times(count: int) -> str:
    """``once``, ``twice``, ``3 times``."""
    return {1: "once", 2: "twice"}.get(count, f"{count} times")


def number_word(count: int) -> str:
    """Small counts as words ("two tasks"), larger ones as digits."""
    return _NUMBERS[count] if 0 <= count < len(_NUMBERS) else str(count)


def join(parts: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def sentence(parts: Sequence[str]) -> str:
    """Phrases joined into one sentence: "A, b and c."."""
    text = join(parts)
    return f"{text[:1].upper()}{text[1:]}."


def gpu_names(gpus: Sequence[GpuInfo]) -> dict[str, str]:
    """Each GPU's spoken name, by UUID: the model without the vendor, with its index where
    two cards share a model."""
    return spoken_gpu_names([(gpu.uuid, gpu.index, gpu.name) for gpu in gpus])


def spoken_gpu_names(gpus: Sequence[tuple[str, int, str]]) -> dict[str, str]:
    """``gpu_names`` for (uuid, index, model) triples."""
    short = {uuid: name.removeprefix("NVIDIA ").removeprefix("GeForce ") for uuid, _, name in gpus}
    models = list(short.values())
    return {
        uuid: short[uuid] if models.count(short[uuid]) == 1 else f"{short[uuid]} number {index}"
        for uuid, index, _ in gpus
    }


def temperature(hass: HomeAssistant, celsius: float) -> str:
    """A temperature in the user's unit system, rounded to a degree."""
    unit = hass.config.units.temperature_unit
    value = TemperatureConverter.convert(celsius, UnitOfTemperature.CELSIUS, unit)
    return f"{round(value)} {unit}"


def duration(seconds: float) -> str:
    """``under a second``, ``40 seconds``, ``12 minutes``, ``1 hour 5 minutes``."""
    if seconds < 1:
        return "under a second"
    seconds = round(seconds)
    if seconds < 60:
        return plural(seconds, "second")
    minutes = round(seconds / 60)
    if minutes < 60:
        return plural(minutes, "minute")
    hours, minutes = divmod(minutes, 60)
    return plural(hours, "hour") + (f" {plural(minutes, 'minute')}" if minutes else "")


def energy(watt_hours: float) -> str:
    """``under a watt-hour``, ``420 watt-hours`` or ``1.8 kilowatt-hours``: units spelt out, as
    they are read aloud."""
    if watt_hours < 1:
        return "under a watt-hour"
    if watt_hours < 1000:
        return plural(round(watt_hours), "watt-hour")
    return f"{watt_hours / 1000:.1f} kilowatt-hours"
