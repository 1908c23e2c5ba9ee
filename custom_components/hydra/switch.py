"""Switches: run or stop each container, switch the worker's self-healing on or off, and pause
or resume its autonomous work."""

from typing import Any, override

from homeassistant.components.switch import (
    SwitchDeviceClass,
    SwitchEntity,
    SwitchEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from hydra_core.client import HydraError
from hydra_core.models import ContainerInfo

from .coordinator import HydraConfigEntry, HydraContainerCoordinator, HydraTaskCoordinator
from .entity import HydraContainerEntity, HydraEngineEntity, HydraQueueEntity, client_error
from .tasks import async_set_paused

# Each change is one request to the worker; the worker serialises what the engine cannot.
PARALLEL_UPDATES = 0

RUNNING = SwitchEntityDescription(
    key="running", translation_key="running", device_class=SwitchDeviceClass.SWITCH
)
SELF_HEALING = SwitchEntityDescription(
    key="self_healing", translation_key="self_healing", entity_category=EntityCategory.CONFIG
)
AUTONOMOUS_WORK = SwitchEntityDescription(key="autonomous_work", translation_key="autonomous_work")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HydraConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the autonomous work switch, the self-healing switch and a running switch to every
    container, as far as the worker runs a task queue and follows a container engine."""
    data = entry.runtime_data
    if data.tasks is not None:
        async_add_entities([HydraAutonomousWorkSwitch(data.tasks)])
    if data.containers is None or data.tracker is None:
        return
    async_add_entities([HydraSelfHealingSwitch(data.containers)])
    data.tracker.async_add_platform(
        async_add_entities,
        lambda containers, container: [HydraContainerRunningSwitch(containers, container)],
    )


class HydraContainerRunningSwitch(HydraContainerEntity, SwitchEntity):
    """On while the container runs; turning it on starts it, off stops it."""

    entity_description = RUNNING

    def __init__(self, coordinator: HydraContainerCoordinator, container: ContainerInfo) -> None:
        """Describe the switch."""
        super().__init__(coordinator, container, RUNNING.key)

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

    entity_description = SELF_HEALING

    def __init__(self, coordinator: HydraContainerCoordinator) -> None:
        """Describe the switch."""
        super().__init__(coordinator, SELF_HEALING.key)

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
        try:
            healing = await self.coordinator.client.async_set_healing(enabled=enabled)
        except HydraError as err:
            raise client_error(self.coordinator, err) from err
        self.coordinator.async_apply_healing(healing)


class HydraAutonomousWorkSwitch(HydraQueueEntity, SwitchEntity):
    """On while the worker starts queued tasks by itself; off pauses the queue (running tasks
    finish)."""

    entity_description = AUTONOMOUS_WORK

    def __init__(self, coordinator: HydraTaskCoordinator) -> None:
        """Describe the switch."""
        super().__init__(coordinator, AUTONOMOUS_WORK.key)

    @property
    @override
    def is_on(self) -> bool:
        return not self.coordinator.data.scheduler.settings.paused

    @override
    async def async_turn_on(self, **kwargs: Any) -> None:
        await self._async_set(paused=False)

    @override
    async def async_turn_off(self, **kwargs: Any) -> None:
        await self._async_set(paused=True)

    async def _async_set(self, *, paused: bool) -> None:
        await async_set_paused(self.coordinator, paused=paused)
