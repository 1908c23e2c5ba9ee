"""Where the head's placer puts an attempt, from what it last saw of the nodes (no Ray runs
here: the nodes are as its looks and the nodes' reports left them).

The real cluster tests (``tests/cluster``) look at the nodes every 0.5 s, so they cannot show
what happens between two looks: a burst of tasks admitted at once, and a task whose room was
taken after the queue admitted it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
import time
from typing import Any, ClassVar

import pytest

from hydra_core.cluster.models import ClusterNode, NodeResources
from hydra_core.cluster.node import RayNode
from hydra_core.cluster.options import ClusterOptions
from hydra_core.cluster.placer import NodeLostError, RayPlacer
from hydra_core.events import EventBus
from hydra_core.gpu import SimulatedProbe
from hydra_core.gpu.models import GpuInfo
from hydra_core.models import Actor
from hydra_core.scheduler.handlers import TaskContext, TaskHandler
from hydra_core.scheduler.models import Task

MIB = 1024**2


class Medium(TaskHandler):
    """6,000 MB of VRAM, on any node with the room."""

    kind: ClassVar[str] = "medium"
    needs_gpu = True
    vram_gb: ClassVar[float] = 6000 / 1024

    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    async def run(self, payload: dict[str, Any], context: TaskContext) -> dict[str, Any]:
        raise AssertionError("placed tasks run on their node's worker, not here")


def _node(node_id: str, vram_mb: float, *, free_mb: float | None = None) -> ClusterNode:
    """A node offering ``vram_mb``, none of it given out by Ray; its worker reported one card
    with ``free_mb`` free (all of it when None)."""
    card = GpuInfo(
        index=0,
        uuid=f"GPU-{node_id}",
        name="card",
        memory_free_bytes=int((vram_mb if free_mb is None else free_mb) * MIB),
    )
    resources = NodeResources(cpus=2, gpus=1, vram_mb=vram_mb)
    return ClusterNode(
        node_id=node_id,
        name=node_id,
        address="127.0.0.1",
        total=resources,
        available=resources,
        gpus=(card,),
        reported=time.time(),
        latency_ms=1.0,
    )


@pytest.fixture
def placer(tmp_path: Path) -> RayPlacer:
    """A head's placer that routes medium to any node, as if connected, with nodes a (24,000
    MB) and b (8,000 MB) seen at its last look."""
    options = ClusterOptions(
        cluster="head", cluster_address="127.0.0.1:6379", cluster_routes=("medium=*",)
    )
    node = RayNode(
        options,
        name="head",
        probe=SimulatedProbe(0),
        data_dir=tmp_path,
        api_url="http://127.0.0.1:1/api/v1",
        token="t" * 32,
    )
    placer = RayPlacer(options, node=node, bus=EventBus())
    placer._ready.set()
    placer._nodes = {"a": _node("a", 24_000), "b": _node("b", 8_000)}
    placer._looked_at = time.monotonic()
    return placer


class RaySubmit:
    """Ray's remote function as ``async_run`` uses it (``options(...).remote(...)`` giving a
    stream of object refs), recording the node each attempt was pinned to; each attempt runs
    until ``finish`` is set. A stand-in for Ray's API: the real one runs in tests/cluster."""

    def __init__(self) -> None:
        self.pinned_to: list[str] = []
        self.finish = asyncio.Event()
        self._options: dict[str, Any] = {}

    def options(self, **options: Any) -> RaySubmit:
        self._options = options
        return self

    def remote(self, request: dict[str, Any], box: object) -> AsyncIterator[Awaitable[Any]]:
        node = self._options["scheduling_strategy"]
        self.pinned_to.append(node)
        return self._stream(node)

    async def _stream(self, node: str) -> AsyncIterator[Awaitable[Any]]:
        yield _ready({"node": node})
        await self.finish.wait()
        yield _ready({"answer": {"node": node, "result": {}}})


def _ready(value: Any) -> Awaitable[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future


@pytest.fixture
def submit(placer: RayPlacer) -> RaySubmit:
    submit = RaySubmit()
    placer._remote = submit
    placer._affinity = lambda node_id, soft: node_id
    return submit


def _task(task_id: int) -> Task:
    return Task(
        id=task_id,
        kind="medium",
        payload={},
        priority=50,
        state="running",
        actor=Actor(type="user", name="Ada"),
        attempts=1,
    )


async def _report(node: str, percent: float | None, message: str | None) -> None:
    """Progress from the node: none here."""


async def test_a_burst_between_two_looks_spreads_by_the_room_left(
    placer: RayPlacer, submit: RaySubmit
) -> None:
    """Five medium tasks running at once, placed before the next look: a takes three (24,000
    → 6,000 MB left), then b has more room, then a again; no node is given more than it has."""
    runs = []
    for task_id in range(1, 6):
        runs.append(asyncio.create_task(placer.async_run(_task(task_id), Medium(), _report)))
        while len(submit.pinned_to) < task_id:
            await asyncio.sleep(0)
    submit.finish.set()
    await asyncio.gather(*runs)
    assert submit.pinned_to == ["a", "a", "a", "b", "a"]


async def test_tasks_one_after_another_stay_on_the_node_with_the_most_room(
    placer: RayPlacer, submit: RaySubmit
) -> None:
    """Five medium tasks, each finished before the next: each finds a's 24,000 MB free again
    (an attempt that ended no longer counts), so none drifts to the smaller b."""
    submit.finish.set()
    for task_id in range(1, 6):
        await placer.async_run(_task(task_id), Medium(), _report)
    assert submit.pinned_to == ["a"] * 5


async def test_room_taken_after_admission_hands_the_attempt_back_unbegun(
    placer: RayPlacer,
) -> None:
    """The queue admitted a medium task; before it was submitted, loads on both nodes' own
    workers took their room (the nodes' next reports): the attempt ends as not begun, so the
    queue does not count it, and the reason names each node's room."""
    placer._nodes = {
        "a": _node("a", 24_000, free_mb=4000),
        "b": _node("b", 8_000, free_mb=2000),
    }
    with pytest.raises(NodeLostError) as lost:
        await placer.async_run(_task(7), Medium(), _report)
    assert lost.value.started is False
    assert "no node has 6000 MB of VRAM free now (a: 4000 MB free, b: 2000 MB free)" in str(
        lost.value
    )
