"""Background tasks of the worker's services: the loops they repeat and how they stop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import contextlib
import logging
from typing import Any


async def repeat(
    step: Callable[[], Awaitable[object]],
    interval_s: float,
    *,
    logger: logging.Logger,
    failure: str,
    at_once: bool = False,
) -> None:
    """Run ``step`` every ``interval_s`` seconds until cancelled, the first time after one
    interval (``at_once``: right away).

    A step that fails is logged as ``failure`` and the loop goes on: one bug or one bad reading
    must not end the service's background work for good.
    """
    if not at_once:
        await asyncio.sleep(interval_s)
    while True:
        try:
            await step()
        except Exception:
            logger.exception(failure)
        await asyncio.sleep(interval_s)


async def cancel(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (None: there is none) and wait until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
