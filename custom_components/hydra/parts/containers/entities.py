"""The containers' entities: each container's state, health, CPU, memory, restarts and problem,
its running switch and restart button; the engine's connectivity and the self-healing switch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, override

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.components.button.const import ButtonDeviceClass
from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.components.switch.const import SwitchDeviceClass
from homeassistant.const import EntityCategory, UnitOfInformation
from homeassistant.core import callback
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from hydra_core.containers.models import CONTAINER_HEALTH, CONTAINER_STATES, ContainerInfo

from ...data import HydraConfigEntry
from ...entity import HydraEntity, HydraWorkerPartEntity, async_actor
from ...helpers import async_worker_request
from ...measurement import data_size, percent
from .coordinator import HydraContainerCoordinator
from .device import container_device_info, container_identifier
from .tracker import EntityFactory


@dataclass(frozen=True, kw_only=True)
class HydraContainerSensorDescription(SensorEntityDescription):
    """A container sensor."""

    value_fn: Callable[[ContainerInfo], str | float | int | None]


def _enum(
    key: str, options: tuple[str, ...], read: Callable[[ContainerInfo], str]
) -> HydraContainerSensorDescription:
    """An enum sensor. A value it does not know (an engine's odd state) shows as unknown, not
    an error."""
    return HydraContainerSensorDescription(
        key=key,
        translation_key=f"container_{key}",
        device_class=SensorDeviceClass.ENUM,
        options=list(options),
        value_fn=lambda container: value if (value := read(container)) in options else None,
    )


CONTAINER_SENSORS: tuple[HydraContainerSensorDescription, ...] = (
    _enum("state", CONTAINER_STATES, lambda container: container.state),
    _enum("health", CONTAINER_HEALTH, lambda container: container.health),
    HydraContainerSensorDescription(
        key="cpu",
        translation_key="container_cpu",
        **percent(1),
        # Changes every minute for every container: recorded only where the user wants it.
        entity_registry_enabled_default=False,
        value_fn=lambda container: container.cpu_percent,
    ),
    HydraContainerSensorDescription(
        key="memory",
        translation_key="memory_used",
        **data_size(UnitOfInformation.MEBIBYTES, 0),
        entity_registry_enabled_default=False,
        value_fn=lambda container: container.memory_used_bytes,
    ),
    HydraContainerSensorDescription(
        key="restarts",
        translation_key="container_restarts",
        # A recreated container starts counting again from zero: a reset, not a decrease.
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda container: container.restart_count,
    ),
)
PROBLEM = BinarySensorEntityDescription(key="problem", device_class=BinarySensorDeviceClass.PROBLEM)
ENGINE = BinarySensorEntityDescription(
    key="engine",
    translation_key="container_engine",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
)
RESTART = ButtonEntityDescription(key="restart", device_class=ButtonDeviceClass.RESTART)
RUNNING = SwitchEntityDescription(
    key="running", translation_key="running", device_class=SwitchDeviceClass.SWITCH
)
SELF_HEALING = SwitchEntityDescription(
    key="self_healing", translation_key="self_healing", entity_category=EntityCategory.CONFIG
)


def _for_each_container(
    coordinator: HydraContainerCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
    factory: EntityFactory,
) -> None:
    """Add a platform's entities for every container the user wants, now and as they appear."""
    if coordinator.tracker is not None:
        coordinator.tracker.async_add_platform(async_add_entities, factory)


@callback
def async_setup_sensors(
    entry: HydraConfigEntry,
    coordinator: HydraContainerCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Each container's sensors."""
    _for_each_container(
        coordinator,
        async_add_entities,
        lambda containers, container: (
            HydraContainerSensor(containers, container, description)
            for description in CONTAINER_SENSORS
        ),
    )


@callback
def async_setup_binary_sensors(
    entry: HydraConfigEntry,
    coordinator: HydraContainerCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The engine's connectivity and each container's problem sensor."""
    async_add_entities([HydraEngineBinarySensor(coordinator, ENGINE)])
    _for_each_container(
        coordinator,
        async_add_entities,
        lambda containers, container: [HydraContainerProblemSensor(containers, container, PROBLEM)],
    )


@callback
def async_setup_buttons(
    entry: HydraConfigEntry,
    coordinator: HydraContainerCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """A restart button on every container that is not protected."""
    if coordinator.tracker is not None:
        coordinator.tracker.async_add_controls(
            async_add_entities,
            lambda containers, container: [
                HydraContainerRestartButton(containers, container, RESTART)
            ],
        )


@callback
def async_setup_switches(
    entry: HydraConfigEntry,
    coordinator: HydraContainerCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The self-healing switch, and a running switch on every container that is not protected."""
    async_add_entities([HydraSelfHealingSwitch(coordinator, SELF_HEALING)])
    if coordinator.tracker is not None:
        coordinator.tracker.async_add_controls(
            async_add_entities,
            lambda containers, container: [
                HydraContainerRunningSwitch(containers, container, RUNNING)
            ],
        )


class HydraEngineEntity(HydraWorkerPartEntity[HydraContainerCoordinator]):
    """An entity of the worker's container engine, on the worker's device."""


class HydraContainerEntity(HydraEntity[HydraContainerCoordinator]):
    """An entity of one container, followed by its name (a recreated container has a new id)."""

    def __init__(
        self,
        coordinator: HydraContainerCoordinator,
        container: ContainerInfo,
        description: EntityDescription,
    ) -> None:
        """Attach the entity to the container's device."""
        super().__init__(
            coordinator, description, container_identifier(coordinator.worker_id, container.name)
        )
        self.container_name = container.name
        self._seen: tuple[bool, ContainerInfo | None] | None = None
        self._attr_device_info = container_device_info(coordinator, container)

    @property
    def container(self) -> ContainerInfo | None:
        """The container as last reported; None while the engine does not list it."""
        return self.coordinator.containers.get(self.container_name)

    @callback
    @override
    def _handle_coordinator_update(self) -> None:
        # Every pushed event updates the coordinator; with dozens of containers, only the
        # entities of the container it was about need writing.
        seen = (self.available, self.container)
        if seen == self._seen:
            return
        self._seen = seen
        super()._handle_coordinator_update()

    @property
    @override
    def available(self) -> bool:
        return (
            super().available
            and self.coordinator.data.engine_available
            and self.container is not None
        )

    async def async_container_action(self, action: str) -> None:
        """Start, stop or restart the container on behalf of whoever asked."""
        actor = await async_actor(self.hass, self._context, admin="containers")
        await async_worker_request(
            self.coordinator,
            self.coordinator.api.async_container_action(self.container_name, action, actor),
            failed_key="container_action_failed",
            name=self.container_name,
            action=action,
        )
        if not self.coordinator.pushed:
            await self.coordinator.async_request_refresh()


class HydraContainerSensor(HydraContainerEntity, SensorEntity):
    """A sensor of one container."""

    entity_description: HydraContainerSensorDescription

    @property
    @override
    def native_value(self) -> str | float | int | None:
        container = self.container
        return None if container is None else self.entity_description.value_fn(container)


class HydraContainerProblemSensor(HydraContainerEntity, BinarySensorEntity):
    """On when the container is unhealthy, dead, or exited with an error."""

    @property
    @override
    def is_on(self) -> bool | None:
        container = self.container
        return None if container is None else container.problem


class HydraEngineBinarySensor(HydraEngineEntity, BinarySensorEntity):
    """On while the worker can reach its container engine."""

    @property
    @override
    def is_on(self) -> bool:
        return self.coordinator.data.engine_available


class HydraContainerRestartButton(HydraContainerEntity, ButtonEntity):
    """Restarts the container (none for protected containers, which the worker never touches)."""

    @override
    async def async_press(self) -> None:
        await self.async_container_action("restart")


class HydraContainerRunningSwitch(HydraContainerEntity, SwitchEntity):
    """On while the container runs; turning it on starts it, off stops it."""

    @property
    @override
    def is_on(self) -> bool | None:
        container = self.container
        return None if container is None else container.state == "running"

    @override
    async def async_turn_on(self, **kwargs: Any) -> None:
        await self.async_container_action("start")

    @override
    async def async_turn_off(self, **kwargs: Any) -> None:
        await self.async_container_action("stop")


class HydraSelfHealingSwitch(HydraEngineEntity, SwitchEntity):
    """Whether the worker restarts broken containers by itself."""

    @property
    @override
    def is_on(self) -> bool:
        return self.coordinator.data.healing.enabled

    @override
    async def async_turn_on(self, **kwargs: Any) -> None:
        await self._async_set(enabled=True)

    @override
    async def async_turn_off(self, **kwargs: Any) -> None:
        await self._async_set(enabled=False)

    async def _async_set(self, *, enabled: bool) -> None:
        await async_actor(self.hass, self._context, admin="containers")
        healing = await async_worker_request(
            self.coordinator,
            self.coordinator.api.async_set_healing(enabled=enabled),
        )
        self.coordinator.async_apply_healing(healing)
