"""The worker's event stream: each event goes, by its type, to the coordinator of the part whose
registry entry lists that type.

One WebSocket per entry, run as the entry's background task. It reconnects by itself with a
growing pause; after every (re)connection the coordinators are refreshed and the parts catch up
on what the stream could not tell meanwhile (container actions are fired late rather than never).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant, callback

from hydra_core.client import HydraAuthError, HydraError
from hydra_core.models import EVENT_HELLO, WorkerEvent

from .const import DOMAIN, LOGGER, RECONNECT_DELAYS_S
from .registry import PARTS

if TYPE_CHECKING:
    from .coordinator import HydraPartCoordinator
    from .data import HydraConfigEntry


class HydraEventStream:
    """Follows ``/api/v1/events`` for as long as the entry is loaded."""

    def __init__(self, hass: HomeAssistant, entry: HydraConfigEntry) -> None:
        """Route each event type to the part that takes it; ``async_start`` connects."""
        self._hass = hass
        self._entry = entry
        data = entry.runtime_data
        self._client = data.client
        self._status = data.status
        self._parts = list(data.parts.values())
        self._routes: dict[str, HydraPartCoordinator[Any, Any]] = {
            event_type: coordinator
            for part in PARTS
            if (coordinator := data.parts.get(part.name)) is not None
            for event_type in part.events
        }
        self._pushed = False

    @callback
    def async_start(self) -> None:
        """Connect in the background; the task ends when the entry unloads."""
        self._entry.async_create_background_task(
            self._hass, self._async_run(), f"{DOMAIN} event stream {self._entry.title}"
        )

    async def _async_run(self) -> None:
        failures = 0
        connected_before = False
        while True:
            try:
                async for event in self._client.async_events():
                    if event.type == EVENT_HELLO:
                        failures = 0
                        await self._async_resync(event, reconnected=connected_before)
                        # Live and caught up: from now on changes arrive without a poll.
                        self._set_pushed(True)
                        connected_before = True
                    else:
                        await self._async_handle(event)
            except HydraAuthError:
                self._set_pushed(False)
                LOGGER.warning("The Hydra worker refused the token on its event stream")
                self._entry.async_start_reauth(self._hass)
                return
            except HydraError as err:
                log = LOGGER.info if self._pushed else LOGGER.debug
                log("Hydra event stream of %s: %s", self._entry.title, err)
            except Exception:
                # A bug must not end the push updates for good: log it, then reconnect.
                LOGGER.exception("Hydra event stream of %s failed", self._entry.title)
            self._set_pushed(False)
            await asyncio.sleep(RECONNECT_DELAYS_S[min(failures, len(RECONNECT_DELAYS_S) - 1)])
            failures += 1

    def _set_pushed(self, pushed: bool) -> None:
        """Tell the coordinators whether changes reach them without a poll."""
        self._pushed = pushed
        for coordinator in self._parts:
            coordinator.pushed = pushed

    async def _async_resync(self, hello: WorkerEvent, *, reconnected: bool) -> None:
        """Catch up on what the stream could not tell: from now on it is live."""
        for coordinator in self._parts:
            await coordinator.async_refresh()
        if reconnected:
            await self._status.async_refresh()
        for coordinator in self._parts:
            await coordinator.async_stream_live(hello, reconnected=reconnected)

    async def _async_handle(self, event: WorkerEvent) -> None:
        if (coordinator := self._routes.get(event.type)) is None:
            return
        try:
            await coordinator.async_handle_event(event)
        except (KeyError, TypeError, ValueError) as err:
            LOGGER.warning("Ignoring a malformed %s event from the worker: %r", event.type, err)
