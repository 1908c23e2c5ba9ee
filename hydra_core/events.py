"""The worker's event bus: what ``/api/v1/events`` streams to Home Assistant."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import logging
import time
from typing import Any

from .errors import Refusal
from .models import WorkerEvent

_LOGGER = logging.getLogger(__name__)


# Event streams a worker serves at once: a Home Assistant holds one per worker entry, so a few
# dozen is room for several installations and tools, yet bounds what a stranger can hold open.
# The worker's own parts that follow the bus (metrics, forecasts) are not counted.
MAX_LISTENERS = 32


class Subscription:
    """One listener's queue. A listener too slow to keep up is cut off, not allowed to grow."""

    def __init__(self, bus: EventBus, maxsize: int) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[WorkerEvent | None] = asyncio.Queue(maxsize)
        self.overflowed = False

    def put(self, event: WorkerEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            _LOGGER.warning(
                "An event listener fell %d events behind; closing it", self._queue.maxsize
            )
            self.overflowed = True
            self.close()

    def close(self) -> None:
        """End the listener's iteration; what it has not read yet is dropped."""
        self._bus.unsubscribe(self)
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def next(self, wait_s: float) -> WorkerEvent | None:
        """The next event, None once closed; TimeoutError if none comes within ``wait_s``."""
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation that
        # arrives with an event, and a stopping worker would wait on this stream again.
        async with asyncio.timeout(wait_s):
            return await self._queue.get()

    async def __aiter__(self) -> AsyncIterator[WorkerEvent]:
        while (event := await self._queue.get()) is not None:
            yield event


class TooManyListenersError(Refusal, code="too_many_listeners", status=503):
    """The worker already streams events to as many listeners as it serves."""


class EventBus:
    """Fan-out of worker events to every subscriber."""

    def __init__(self, max_listeners: int = MAX_LISTENERS) -> None:
        self._subscriptions: set[Subscription] = set()
        # The subscriptions served to clients, which the limit counts.
        self._streams: set[Subscription] = set()
        self._max_listeners = max_listeners

    def subscribe(self, maxsize: int = 1000, *, internal: bool = False) -> Subscription:
        """A new listener; close it when done. A stream served to a client
        (``internal=False``) raises TooManyListenersError past the limit; one of the worker's
        own parts always gets one."""
        if not internal and len(self._streams) >= self._max_listeners:
            raise TooManyListenersError(
                f"The worker already streams events to {self._max_listeners} listeners;"
                " close one first"
            )
        subscription = Subscription(self, maxsize)
        self._subscriptions.add(subscription)
        if not internal:
            self._streams.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget a listener."""
        self._subscriptions.discard(subscription)
        self._streams.discard(subscription)

    def close_all(self) -> None:
        """End every listener's iteration (the worker is shutting down)."""
        for subscription in list(self._subscriptions):
            subscription.close()

    def publish(self, event_type: str, data: dict[str, Any]) -> None:
        """Send an event to every listener (never blocks)."""
        event = WorkerEvent(type=event_type, time=time.time(), data=data)
        for subscription in list(self._subscriptions):
            subscription.put(event)
