"""Home Assistant's real notify integration with recording targets: legacy notify services (as
mobile_app registers them, one of which can fail like a dead speaker) and a notify entity."""

from __future__ import annotations

from typing import Any

from homeassistant.components.notify import (
    ATTR_DATA,
    ATTR_TITLE,
    DOMAIN as NOTIFY_DOMAIN,
    BaseNotificationService,
    NotifyEntity,
)
from homeassistant.config_entries import ConfigEntry, ConfigFlow
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockModule,
    MockPlatform,
    mock_config_flow,
    mock_integration,
    mock_platform,
    setup_test_component_platform,
)

DESK = "notify.desk"

# (target, message, title, data) for each message sent.
type Sent = list[tuple[str, str, str | None, dict[str, Any] | None]]


class RecordingService(BaseNotificationService):
    """A legacy notify service that keeps what it gets (with its data), or fails if broken."""

    def __init__(self, sent: Sent, name: str, *, broken: bool) -> None:
        self._sent = sent
        self._name = name
        self._broken = broken

    async def async_send_message(self, message: str = "", **kwargs: Any) -> None:
        """Record the message, or fail as a dead speaker would."""
        if self._broken:
            raise HomeAssistantError("the speaker is offline")
        self._sent.append((self._name, message, kwargs.get(ATTR_TITLE), kwargs.get(ATTR_DATA)))


class RecordingDesk(NotifyEntity):
    """A notify entity (notify.desk) that keeps what it gets."""

    _attr_name = "Desk"

    def __init__(self, sent: Sent) -> None:
        self._sent = sent

    async def async_send_message(self, message: str, title: str | None = None) -> None:
        """Record the message."""
        self._sent.append((DESK, message, title, None))


async def async_setup_recording_notify(hass: HomeAssistant, services: dict[str, bool]) -> Sent:
    """Set up notify with a legacy service ``notify.<name>`` for each of ``services`` (name →
    broken) and the entity notify.desk; the list every message they are sent lands in."""
    messages: Sent = []
    for name, broken in services.items():

        async def get_service(*_args: Any, name: str = name, broken: bool = broken) -> Any:
            return RecordingService(messages, f"{NOTIFY_DOMAIN}.{name}", broken=broken)

        legacy = MockPlatform()
        legacy.async_get_service = get_service
        mock_platform(hass, f"recording_{name}.notify", legacy)
    assert await async_setup_component(
        hass,
        NOTIFY_DOMAIN,
        {NOTIFY_DOMAIN: [{"platform": f"recording_{name}", "name": name} for name in services]},
    )

    async def setup_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
        await hass.config_entries.async_forward_entry_setups(entry, [Platform.NOTIFY])
        return True

    mock_integration(hass, MockModule("test", async_setup_entry=setup_entry))
    mock_platform(hass, "test.config_flow")
    setup_test_component_platform(
        hass, NOTIFY_DOMAIN, [RecordingDesk(messages)], from_config_entry=True
    )
    with mock_config_flow("test", ConfigFlow):
        entry = MockConfigEntry(domain="test")
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    assert all(hass.services.has_service(NOTIFY_DOMAIN, name) for name in services)
    assert hass.states.get(DESK) is not None
    return messages
