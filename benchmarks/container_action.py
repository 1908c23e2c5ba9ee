"""What reading a container afresh before every action costs.

Run: .venv-worker/bin/python -m benchmarks.container_action [--count 32] [--actions 200]

A private podman engine (tests/podman.py) with N running containers, one of them protected by
label; the worker's real ContainerService follows it. An action resolves the name on the engine
(one inspect) and checks protection on that answer before it acts. Prints the inspect's round
trip (the step every action now pays), a whole ``start`` of a running container (resolve,
the engine's 304, the audit entry, the inspect after it) and a refused ``stop`` of the
protected one (resolve and audit only), each beside its goal.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
import logging
from pathlib import Path
import statistics
import tempfile
import time

from benchmarks.podman_fleet import create_fleet
from hydra_core.audit import AuditLog
from hydra_core.containers import (
    ContainerProtectedError,
    ContainerService,
    EngineClient,
    ProtectionPolicy,
)
from hydra_core.containers.models import HealingSettings
from hydra_core.events import EventBus
from hydra_core.models import Actor
from tests.podman import PodmanEngine

ACTOR = Actor(type="api", name="benchmark")
# Goals: the fresh read adds little to an action; an action answers well within a UI's patience.
INSPECT_GOAL_MS = 10.0
ACTION_GOAL_MS = 50.0


async def _timed(work: Callable[[], Awaitable[object]], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await work()
        times.append(1000 * (time.perf_counter() - started))
    return times


async def _run(engine: PodmanEngine, actions: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as data_dir:
        audit = AuditLog(Path(data_dir) / "audit.db")
        await audit.async_open()
        client = EngineClient(engine.docker_host)
        service = ContainerService(
            client,
            policy=ProtectionPolicy(),
            audit=audit,
            bus=EventBus(),
            data_dir=Path(data_dir),
            healing=HealingSettings(enabled=False),
            interval_s=3600,
        )
        await service.async_start()

        async def refused() -> None:
            try:
                await service.async_action("vault", "stop", ACTOR)
            except ContainerProtectedError:
                return
            raise AssertionError("the protected container was not refused")

        figures = {
            "inspect": await _timed(lambda: client.inspect("fleet-00"), actions),
            "start": await _timed(
                lambda: service.async_action("fleet-00", "start", ACTOR), actions
            ),
            "refused": await _timed(refused, actions),
        }
        await service.async_stop()
        await audit.async_close()
    return figures


def _line(label: str, times: list[float], goal: str) -> str:
    p95 = statistics.quantiles(times, n=20)[-1]
    return f"{label}: median {statistics.median(times):.1f} ms, p95 {p95:.1f} ms  (goal: {goal})"


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--actions", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # not every refusal's warning
    with PodmanEngine() as engine:
        create_fleet(engine, args.count)
        engine.run("vault", labels={"hydra.protected": "true"}, init=True)
        figures = asyncio.run(_run(engine, args.actions))
    print(f"{args.count + 1} running containers, {args.actions} of each")
    print(_line("inspect (the fresh read)", figures["inspect"], f"< {INSPECT_GOAL_MS:g} ms"))
    print(_line("start of a running container", figures["start"], f"< {ACTION_GOAL_MS:g} ms"))
    print(_line("refused stop of a protected one", figures["refused"], f"< {ACTION_GOAL_MS:g} ms"))


if __name__ == "__main__":
    main()
