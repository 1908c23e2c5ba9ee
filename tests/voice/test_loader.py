"""LazyModel: load on first use (once, in a thread), run off the loop, unload when idle."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import threading
import time
from typing import TypeVar

import pytest

from hydra_core.voice.loader import LazyModel, ModelClosedError, ModelState
from tests.voice.weights import wait_until

R = TypeVar("R")


class Model:
    """Stands in for a loaded model: records where it was loaded and whether it was freed."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.thread = threading.get_ident()
        self.freed = False


class Factory:
    """A blocking load function that counts its calls."""

    def __init__(self, delay: float = 0.0, fail: int = 0) -> None:
        self.delay = delay
        self.fail = fail
        self.calls = 0
        self.unloaded: list[Model] = []

    def load(self) -> Model:
        self.calls += 1
        time.sleep(self.delay)
        if self.fail:
            self.fail -= 1
            raise OSError("model.bin is truncated")
        return Model(self.calls)

    def unload(self, model: Model) -> None:
        model.freed = True
        self.unloaded.append(model)


async def hold(
    lazy: LazyModel[Model], result: Callable[[Model], R]
) -> tuple[asyncio.Future[R], threading.Event]:
    """Start an inference that holds the model until the returned event is set, and wait until
    it runs; ``result`` is what it returns, read from the model before it lets go."""
    started = threading.Event()
    release = threading.Event()

    def infer(model: Model) -> R:
        started.set()
        release.wait(5)
        return result(model)

    running = asyncio.ensure_future(lazy.run(infer))
    await asyncio.to_thread(started.wait, 5)
    return running, release


async def test_loads_on_first_use_in_a_worker_thread() -> None:
    factory = Factory(delay=0.05)
    lazy = LazyModel("test", factory.load, unload=factory.unload)
    assert lazy.state is ModelState.NOT_LOADED
    assert not lazy.loaded
    loading = asyncio.ensure_future(lazy.load())
    await asyncio.sleep(0.01)
    assert lazy.state is ModelState.LOADING
    model = await loading
    assert lazy.state is ModelState.LOADED
    assert model.thread != threading.get_ident()
    assert lazy.load_seconds is not None
    assert lazy.load_seconds >= 0.05
    # Inference runs in a worker thread as well.
    assert await lazy.run(lambda m: threading.get_ident()) != threading.get_ident()
    assert factory.calls == 1
    await lazy.close()
    assert factory.unloaded == [model]


async def test_concurrent_first_users_load_once() -> None:
    factory = Factory(delay=0.2)
    lazy = LazyModel("test", factory.load)
    numbers = await asyncio.gather(*(lazy.run(lambda m: m.number) for _ in range(8)))
    assert numbers == [1] * 8
    assert factory.calls == 1
    assert lazy.load_count == 1
    await lazy.close()


async def test_load_error_state_then_retry() -> None:
    factory = Factory(fail=1)
    lazy = LazyModel("test", factory.load)
    with pytest.raises(OSError, match="truncated"):
        await lazy.run(lambda m: m.number)
    assert lazy.state is ModelState.ERROR
    assert lazy.error == "model.bin is truncated"
    # The next use tries again.
    assert await lazy.run(lambda m: m.number) == 2
    assert lazy.state is ModelState.LOADED
    assert lazy.error is None
    await lazy.close()


async def test_prepare_runs_before_the_load_and_its_failure_is_the_error() -> None:
    factory = Factory()
    steps: list[str] = []

    async def prepare() -> None:
        steps.append("prepare")
        if len(steps) == 1:
            raise RuntimeError("download failed: HTTP 404")

    lazy = LazyModel("test", factory.load, prepare=prepare)
    with pytest.raises(RuntimeError, match="404"):
        await lazy.load()
    assert lazy.state is ModelState.ERROR
    assert lazy.error == "download failed: HTTP 404"
    assert factory.calls == 0
    await lazy.load()
    assert steps == ["prepare", "prepare"]
    assert factory.calls == 1
    await lazy.close()


async def test_idle_unload_and_reload() -> None:
    factory = Factory()
    lazy = LazyModel("test", factory.load, unload=factory.unload, idle_unload_s=0.1)
    first = await lazy.run(lambda m: m)
    assert lazy.loaded
    await wait_until(lambda: not lazy.loaded)
    assert lazy.state is ModelState.NOT_LOADED
    assert first.freed
    second = await lazy.run(lambda m: m)
    assert second is not first
    assert lazy.load_count == 2
    await lazy.close()


async def test_use_keeps_the_model_loaded_past_the_idle_time() -> None:
    factory = Factory()
    lazy = LazyModel("test", factory.load, idle_unload_s=0.05)
    running, release = await hold(lazy, lambda model: model.number)
    await asyncio.sleep(0.3)  # six idle periods pass while the inference holds the model
    assert lazy.loaded
    assert lazy.in_use == 1
    release.set()
    assert await running == 1
    await wait_until(lambda: not lazy.loaded)
    assert lazy.load_count == 1
    await lazy.close()


async def test_a_cancelled_caller_holds_the_model_until_its_thread_ends() -> None:
    factory = Factory()
    lazy = LazyModel("test", factory.load, idle_unload_s=0.05)
    running, release = await hold(lazy, lambda model: model.number)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await asyncio.sleep(0.2)
    assert lazy.in_use == 1
    assert lazy.loaded
    release.set()
    await wait_until(lambda: lazy.in_use == 0)
    await wait_until(lambda: not lazy.loaded)
    await lazy.close()


async def test_zero_idle_time_never_unloads() -> None:
    factory = Factory()
    lazy = LazyModel("test", factory.load, idle_unload_s=0)
    await lazy.load()
    await asyncio.sleep(0.2)
    assert lazy.loaded
    await lazy.close()
    assert not lazy.loaded


async def test_close_waits_for_inference_then_refuses_work() -> None:
    factory = Factory()
    lazy = LazyModel("test", factory.load, unload=factory.unload)
    running, release = await hold(lazy, lambda model: model.freed)
    closing = asyncio.ensure_future(lazy.close())
    await asyncio.sleep(0.1)
    assert not closing.done()
    release.set()
    assert await running is False  # the model was not freed under the inference
    await closing
    assert not lazy.loaded
    with pytest.raises(ModelClosedError):
        await lazy.run(lambda m: m)


async def test_explicit_unload() -> None:
    factory = Factory()
    lazy = LazyModel("test", factory.load)
    assert await lazy.unload() is False
    await lazy.load()
    assert await lazy.unload() is True
    assert lazy.state is ModelState.NOT_LOADED
    await lazy.close()
