"""What the worker's container events become on Home Assistant's event bus: every action once
(and so in the logbook), and an event when self-healing gives up on a container."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from homeassistant.core import Context, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.translation import async_get_translations

from hydra_core.models import AuditEntry

from ...const import DOMAIN, EVENT_CONTAINER_ACTION, EVENT_CONTAINER_HEAL_FAILED
from .device import container_identifier

if TYPE_CHECKING:
    from ...data import HydraConfigEntry

# Most audit entries fetched after a reconnection to catch up on what happened meanwhile.
CATCH_UP_LIMIT = 1000


class ContainerEvents:
    """Fires one worker's container events, each audit entry once."""

    def __init__(self, hass: HomeAssistant, entry: HydraConfigEntry, worker_id: str) -> None:
        """Nothing was fired yet."""
        self._hass = hass
        self._entry = entry
        self._worker_id = worker_id
        # Where a catch-up on the audit log starts, and what was already fired (as id, time).
        self.audit_since: float | None = None
        self._fired: deque[tuple[int, float]] = deque(maxlen=CATCH_UP_LIMIT)

    @callback
    def fire_audit(self, entry: AuditEntry) -> None:
        """Tell the event bus (and so the logbook) about an action, each one once."""
        if (entry.id, entry.time) in self._fired:
            return
        self._fired.append((entry.id, entry.time))
        self.audit_since = max(self.audit_since or entry.time, entry.time)
        actor = entry.actor
        self._hass.bus.async_fire(
            EVENT_CONTAINER_ACTION,
            {
                **self._container_data(entry.container),
                "action": entry.action,
                "result": entry.result,
                "reason": entry.reason,
                "detail": entry.detail,
                "actor_type": actor.type,
                "actor_id": actor.id,
                "actor_name": actor.name,
                "audit_id": entry.id,
            },
            context=Context(user_id=actor.id) if actor.type == "user" else None,
        )

    async def async_fire_heal_failed(
        self, restarts: int, window_s: float, placeholders: dict[str, str]
    ) -> None:
        """An event an automation can turn into a notification, worded as the repairs issue."""
        texts = await async_get_translations(
            self._hass, self._hass.config.language, "issues", {DOMAIN}
        )
        key = f"component.{DOMAIN}.issues.heal_exhausted"
        self._hass.bus.async_fire(
            EVENT_CONTAINER_HEAL_FAILED,
            {
                **self._container_data(placeholders["container"]),
                "restarts": restarts,
                "window_s": window_s,
                "title": texts[f"{key}.title"].format(**placeholders),
                "message": texts[f"{key}.description"].format(**placeholders),
            },
        )

    def _container_data(self, name: str) -> dict[str, Any]:
        """What identifies a container in an event: its name and, if it has one, its device."""
        device = dr.async_get(self._hass).async_get_device_by_identifier(
            (DOMAIN, container_identifier(self._worker_id, name)),
            self._entry.entry_id,
        )
        return {
            "entry_id": self._entry.entry_id,
            "device_id": device.id if device else None,
            "container": name,
        }
