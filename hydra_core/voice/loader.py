"""A model that loads on first use and gives its memory back when idle.

``LazyModel`` wraps a blocking load function (a Whisper or Kokoro constructor). The first user
loads it in a worker thread while later users wait on the same lock, so concurrent first
requests cause one load. Inference runs in worker threads too (``run``), holding a use count so
the idle timer never unloads a model that is in use. After ``idle_unload_s`` seconds without
use the model is dropped (memory, VRAM) and the next use loads it again; 0 keeps it loaded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor
import contextlib
from enum import StrEnum
import gc
import logging
import time
from typing import Generic, TypeVar

from ..background import cancel

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class ModelState(StrEnum):
    """Where a lazily loaded model stands."""

    NOT_LOADED = "not_loaded"
    LOADING = "loading"
    LOADED = "loaded"
    ERROR = "error"


class ModelClosedError(RuntimeError):
    """The model was closed and takes no more work."""


class LazyModel(Generic[T]):
    """One model, loaded on first use in a worker thread and unloaded when idle.

    ``load`` is the blocking constructor; ``prepare`` is an optional coroutine run first under
    the same lock (e.g. downloading the files); ``unload`` is an optional blocking hook given the
    model when it is dropped. Loading and inference run on ``executor`` (None: the event loop's
    default one).
    """

    def __init__(
        self,
        name: str,
        load: Callable[[], T],
        *,
        prepare: Callable[[], Awaitable[None]] | None = None,
        unload: Callable[[T], None] | None = None,
        idle_unload_s: float = 0.0,
        executor: Executor | None = None,
    ) -> None:
        self.name = name
        self._executor = executor
        self._load = load
        self._prepare = prepare
        self._unload = unload
        self.idle_unload_s = idle_unload_s
        self._model: T | None = None
        self._state = ModelState.NOT_LOADED
        self._error: str | None = None
        self._lock = asyncio.Lock()
        self._users = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._timer: asyncio.Task[None] | None = None
        self._closed = False
        # Awaited before each load, under the lock: the VRAM arbiter makes room here.
        self.before_load: Callable[[], Awaitable[None]] | None = None
        self.last_used: float | None = None
        self.load_count = 0
        self.load_seconds: float | None = None

    @property
    def state(self) -> ModelState:
        """not_loaded, loading, loaded or error."""
        return self._state

    @property
    def error(self) -> str | None:
        """Why the last load failed (None unless the state is error)."""
        return self._error

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory now."""
        return self._model is not None

    @property
    def in_use(self) -> int:
        """How many inferences hold the model now."""
        return self._users

    async def load(self) -> T:
        """Load the model now if it is not loaded, and return it."""
        async with self._lock:
            return await self._ensure_loaded()

    async def _ensure_loaded(self) -> T:
        """Load under the lock (held by the caller)."""
        if self._closed:
            raise ModelClosedError(f"{self.name} is closed")
        if self._model is not None:
            return self._model
        self._state = ModelState.LOADING
        self._error = None
        started = time.perf_counter()
        try:
            if self.before_load is not None:
                await self.before_load()
            if self._prepare is not None:
                await self._prepare()
            model = await asyncio.get_running_loop().run_in_executor(self._executor, self._load)
        except asyncio.CancelledError:
            self._state = ModelState.NOT_LOADED
            raise
        except Exception as err:
            self._state = ModelState.ERROR
            self._error = str(err) or type(err).__name__
            _LOGGER.warning("Could not load %s: %s", self.name, self._error)
            raise
        self._model = model
        self._state = ModelState.LOADED
        self.load_count += 1
        self.load_seconds = time.perf_counter() - started
        self.last_used = time.monotonic()
        _LOGGER.info("Loaded %s in %.2f s", self.name, self.load_seconds)
        self._schedule_idle_unload()
        return model

    async def _acquire(self) -> T:
        async with self._lock:
            model = await self._ensure_loaded()
            self._users += 1
            self._idle.clear()
            return model

    def _release(self) -> None:
        self._users -= 1
        self.last_used = time.monotonic()
        if self._users == 0:
            self._idle.set()
            self._schedule_idle_unload()

    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[T]:
        """Hold the model (loading it first if needed); it is not unloaded while held."""
        model = await self._acquire()
        try:
            yield model
        finally:
            self._release()

    async def run(self, func: Callable[[T], R]) -> R:
        """Run blocking ``func(model)`` on the executor, off the event loop.

        If the caller is cancelled the thread still finishes, and the model stays held until
        it has.
        """
        model = await self._acquire()
        future = asyncio.get_running_loop().run_in_executor(self._executor, func, model)
        future.add_done_callback(lambda _: self._release())
        return await asyncio.shield(future)

    def _schedule_idle_unload(self) -> None:
        if self.idle_unload_s <= 0 or self._closed:
            return
        if self._timer is None or self._timer.done():
            self._timer = asyncio.get_running_loop().create_task(
                self._idle_timer(), name=f"{self.name} idle unload"
            )

    async def _idle_timer(self) -> None:
        while True:
            if self._users or self._model is None or self.last_used is None:
                return  # the last user to leave starts the timer again
            remaining = self.last_used + self.idle_unload_s - time.monotonic()
            if remaining > 0:
                await asyncio.sleep(remaining)
                continue
            async with self._lock:
                if self._users or self.last_used + self.idle_unload_s > time.monotonic():
                    continue
                _LOGGER.info("Unloading %s after %.0f s idle", self.name, self.idle_unload_s)
                await self._drop()
            return

    async def _drop(self) -> None:
        """Forget the model (lock held, no users)."""
        model = self._model
        if model is not None and self._unload is not None:
            try:
                await asyncio.to_thread(self._unload, model)
            except Exception:
                _LOGGER.exception("Error unloading %s", self.name)
        self._model = None
        if self._state is not ModelState.ERROR:
            self._state = ModelState.NOT_LOADED
        if model is not None:
            del model
            gc.collect()

    async def unload(self) -> bool:
        """Unload now once no inference holds the model; True if a model was dropped."""
        await self._idle.wait()
        async with self._lock:
            await self._idle.wait()
            loaded = self._model is not None
            await self._drop()
            return loaded

    async def close(self) -> None:
        """Refuse new work, wait for running inferences, and unload."""
        self._closed = True
        timer, self._timer = self._timer, None
        if timer is not asyncio.current_task():
            await cancel(timer)
        await self.unload()
