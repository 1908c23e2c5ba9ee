"""GPU sensors as a user sees them, fed by a real worker over loopback HTTP."""

from __future__ import annotations

from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import (
    ATTR_UNIT_OF_MEASUREMENT,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
    UnitOfTemperature,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util.unit_system import US_CUSTOMARY_SYSTEM
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.hydra.const import DOMAIN
from tests.fake_nvml import make_gpu

from .conftest import WORKER_ID, LoopbackWorker

GPU0 = "sensor.gpubox_gpu_0"
GPU1 = "sensor.gpubox_gpu_1"


async def _tick(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Run the coordinator's next scheduled update now."""
    await entry.runtime_data.status.async_refresh()
    await hass.async_block_till_done()


async def test_gpu_readings(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    """Each reading carries its unit and device class, so HA graphs and converts it."""
    temperature = hass.states.get(f"{GPU0}_temperature")
    assert temperature.state == "61.0"
    assert temperature.attributes[ATTR_UNIT_OF_MEASUREMENT] == UnitOfTemperature.CELSIUS
    assert temperature.attributes["device_class"] == SensorDeviceClass.TEMPERATURE
    assert temperature.attributes["state_class"] == SensorStateClass.MEASUREMENT
    assert temperature.attributes["friendly_name"] == "gpubox GPU 0 Temperature"

    assert hass.states.get(f"{GPU0}_utilization").state == "37.0"
    assert hass.states.get(f"{GPU0}_utilization").attributes[ATTR_UNIT_OF_MEASUREMENT] == "%"
    assert hass.states.get(f"{GPU0}_memory_usage").state == "25.0"
    # 6 GiB used of 24 GiB, shown in GiB.
    used = hass.states.get(f"{GPU0}_memory_used")
    assert used.attributes[ATTR_UNIT_OF_MEASUREMENT] == "GiB"
    assert float(used.state) == 6.0
    assert float(hass.states.get(f"{GPU0}_memory_free").state) == 18.0
    power = hass.states.get(f"{GPU0}_power_draw")
    assert (power.state, power.attributes[ATTR_UNIT_OF_MEASUREMENT]) == ("187.5", "W")
    assert power.attributes["device_class"] == SensorDeviceClass.POWER
    assert hass.states.get(f"{GPU0}_power_limit").state == "450.0"
    assert hass.states.get(f"{GPU0}_fan_speed").state == "45.0"
    assert hass.states.get("sensor.gpubox_gpus").state == "2"
    assert float(hass.states.get(f"{GPU1}_memory_used").state) == 20.0


async def test_unsupported_value_means_no_entity(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """The A100 has no fan: it gets no fan entity, yet all its other sensors."""
    assert hass.states.get(f"{GPU1}_fan_speed") is None
    assert hass.states.get(f"{GPU1}_temperature").state == "48.0"


async def test_devices(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    """The worker is a device; each GPU a device connected through it."""
    worker = device_registry.async_get_device_by_identifier(
        (DOMAIN, WORKER_ID), init_integration.entry_id
    )
    assert (worker.name, worker.model, worker.sw_version) == ("gpubox", "Hydra worker", "0.1.0")
    devices = dr.async_entries_for_config_entry(device_registry, init_integration.entry_id)
    gpus = [d for d in devices if d.via_device_id == worker.id]
    assert sorted((d.name, d.model, d.manufacturer) for d in gpus) == [
        ("gpubox GPU 0", "NVIDIA GeForce RTX 4090", "NVIDIA"),
        ("gpubox GPU 1", "NVIDIA A100-SXM4-80GB", "NVIDIA"),
    ]
    total = entity_registry.async_get(f"{GPU0}_memory_total")
    assert total.entity_category == "diagnostic"
    controller = entity_registry.async_get(f"{GPU0}_memory_controller_utilization")
    assert controller.disabled_by == er.RegistryEntryDisabler.INTEGRATION


async def test_fahrenheit_for_us_customary_users(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    """A user who chose US customary units sees °F."""
    await hass.config.async_update(unit_system="us_customary")
    assert hass.config.units is US_CUSTOMARY_SYSTEM
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    state = hass.states.get(f"{GPU0}_temperature")
    assert state.attributes[ATTR_UNIT_OF_MEASUREMENT] == UnitOfTemperature.FAHRENHEIT
    assert float(state.state) == 141.8  # 61 °C


async def test_gpu_added_at_runtime(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    worker: LoopbackWorker,
) -> None:
    """A card that appears later gets its entities at the next update, without a reload."""
    assert hass.states.get("sensor.gpubox_gpu_2_temperature") is None
    worker.nvml.gpus.append(make_gpu(2, temperature=70, unsupported={"nvmlDeviceGetMemoryInfo"}))
    await _tick(hass, init_integration)
    assert hass.states.get("sensor.gpubox_gpu_2_temperature").state == "70.0"
    # This card does not report its memory: those readings are unknown, not made up.
    assert hass.states.get("sensor.gpubox_gpu_2_memory_usage").state == STATE_UNKNOWN
    assert hass.states.get("sensor.gpubox_gpu_2_memory_used").state == STATE_UNKNOWN
    assert hass.states.get("sensor.gpubox_gpus").state == "3"


async def test_values_follow_the_gpu(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    worker: LoopbackWorker,
) -> None:
    """New readings reach the entities at the next update."""
    worker.nvml.gpus[0].temperature = 83
    worker.nvml.gpus[0].gpu_util = 99
    await _tick(hass, init_integration)
    assert hass.states.get(f"{GPU0}_temperature").state == "83.0"
    assert hass.states.get(f"{GPU0}_utilization").state == "99.0"


async def test_worker_down_and_back(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    worker: LoopbackWorker,
) -> None:
    """When the worker stops, its entities go unavailable; they return when it does."""
    await worker.stop()
    await _tick(hass, init_integration)
    assert hass.states.get(f"{GPU0}_temperature").state == STATE_UNAVAILABLE
    assert hass.states.get("sensor.gpubox_gpus").state == STATE_UNAVAILABLE

    await worker.start()
    await _tick(hass, init_integration)
    assert hass.states.get(f"{GPU0}_temperature").state == "61.0"
    assert hass.states.get("sensor.gpubox_gpus").state == "2"


async def test_lost_gpu_goes_unavailable_and_can_be_removed(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    worker: LoopbackWorker,
    device_registry: dr.DeviceRegistry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """A GPU that falls off the bus is unavailable, the rest stay; only it may be deleted."""
    worker.nvml.gpus[1].lost = True
    await _tick(hass, init_integration)
    assert hass.states.get(f"{GPU1}_temperature").state == STATE_UNAVAILABLE
    assert hass.states.get(f"{GPU0}_temperature").state == "61.0"

    lost = device_registry.async_get_device_by_identifier(
        (DOMAIN, worker.nvml.gpus[1].uuid), init_integration.entry_id
    )
    live = device_registry.async_get_device_by_identifier(
        (DOMAIN, worker.nvml.gpus[0].uuid), init_integration.entry_id
    )
    host = device_registry.async_get_device_by_identifier(
        (DOMAIN, WORKER_ID), init_integration.entry_id
    )
    assert await _remove_device(hass, hass_ws_client, lost.id)
    assert not await _remove_device(hass, hass_ws_client, live.id)
    assert not await _remove_device(hass, hass_ws_client, host.id)
    assert device_registry.async_get(lost.id) is None
    assert device_registry.async_get(live.id) is not None


async def _remove_device(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator, device_id: str
) -> bool:
    """What the device page's Delete button sends."""
    assert await async_setup_component(hass, "config", {})
    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {"type": "config/device_registry/remove", "device_id": device_id}
    )
    response = await client.receive_json()
    return response["success"]
