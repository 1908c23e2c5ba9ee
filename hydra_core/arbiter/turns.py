"""One decision at a time, highest priority first.

Two loads racing for the last gigabyte must not both see it free: every decision that loads or
evicts takes a turn. Callers waiting for one are served by priority (an interactive voice
request before background work that queued earlier), then in the order they came.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
import heapq
import itertools


class Turns:
    """A lock whose waiters are woken by priority, then arrival."""

    def __init__(self) -> None:
        self._busy = False
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def waiting(self) -> int:
        """Callers waiting for a turn."""
        return sum(1 for _, _, future in self._waiting if not future.done())

    async def acquire(self, priority: int) -> None:
        """Wait for the turn."""
        if not self._busy:
            self._busy = True
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (-priority, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the turn came with the cancellation: pass it on
            raise

    def release(self) -> None:
        """Hand the turn to the first waiter still waiting, or free it."""
        while self._waiting:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                future.set_result(None)
                return
        self._busy = False

    @contextlib.asynccontextmanager
    async def turn(self, priority: int) -> AsyncIterator[None]:
        """Hold the turn for the body."""
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()
