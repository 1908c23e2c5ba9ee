"""The fields a measuring sensor's description shares with its kind: percentages, byte counts
and watts, for the GPU sensors and the parts' alike."""

from typing import TypedDict

from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import PERCENTAGE, UnitOfInformation, UnitOfPower


class MeasurementFields(TypedDict, total=False):
    """SensorEntityDescription fields, to unpack into a description."""

    device_class: SensorDeviceClass
    native_unit_of_measurement: str
    suggested_unit_of_measurement: str
    suggested_display_precision: int
    state_class: SensorStateClass | None


def percent(precision: int = 0) -> MeasurementFields:
    """A percentage, measured."""
    return {
        "native_unit_of_measurement": PERCENTAGE,
        "state_class": SensorStateClass.MEASUREMENT,
        "suggested_display_precision": precision,
    }


def data_size(
    shown_in: UnitOfInformation,
    precision: int,
    state_class: SensorStateClass | None = SensorStateClass.MEASUREMENT,
) -> MeasurementFields:
    """A count of bytes, shown in ``shown_in``; a fixed size has no ``state_class``."""
    return {
        "device_class": SensorDeviceClass.DATA_SIZE,
        "native_unit_of_measurement": UnitOfInformation.BYTES,
        "suggested_unit_of_measurement": shown_in,
        "suggested_display_precision": precision,
        "state_class": state_class,
    }


def watts() -> MeasurementFields:
    """A power in watts, measured, shown whole."""
    return {
        "device_class": SensorDeviceClass.POWER,
        "native_unit_of_measurement": UnitOfPower.WATT,
        "state_class": SensorStateClass.MEASUREMENT,
        "suggested_display_precision": 0,
    }
