"""Worker cost of one container status cycle with 64 running containers, and push latency.

Run: .venv-worker/bin/python -m benchmarks.containers_cycle [--count 64] [--cycles 20]

A private podman engine (tests/podman.py) with N running containers; the worker's real
ContainerService follows it. Prints the worker's CPU time and wall time per status cycle (list,
stats, healing; inspects only for what changed) and the latency from a container being killed
in the engine to the worker pushing the change on its event bus, which is what Home Assistant
receives over /api/v1/events.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
import statistics
import tempfile
import time

from benchmarks.podman_fleet import create_fleet
from hydra_core.audit import AuditLog
from hydra_core.containers import (
    ContainerService,
    EngineClient,
    EngineError,
    ProtectionPolicy,
)
from hydra_core.containers.models import EVENT_CONTAINER, HealingSettings
from hydra_core.events import EventBus
from tests.podman import PodmanEngine


async def _run(engine: PodmanEngine, cycles: int, kills: int) -> dict[str, float]:
    bus = EventBus()
    with tempfile.TemporaryDirectory() as data_dir:
        audit = AuditLog(Path(data_dir) / "audit.db")
        await audit.async_open()
        service = ContainerService(
            EngineClient(engine.docker_host),
            policy=ProtectionPolicy(),
            audit=audit,
            bus=bus,
            data_dir=Path(data_dir),
            healing=HealingSettings(enabled=False),
            interval_s=3600,
        )
        await service.async_start()
        await service.async_refresh()  # second sample: CPU % from now on
        cpu, wall = [], []
        for _ in range(cycles):
            started_cpu, started_wall = time.process_time(), time.perf_counter()
            await service.async_refresh()
            cpu.append(time.process_time() - started_cpu)
            wall.append(time.perf_counter() - started_wall)
        latencies = []
        subscription = bus.subscribe()
        for index in range(kills):
            name = f"fleet-{index:02d}"
            started = time.perf_counter()
            await asyncio.to_thread(engine.kill, name, wait=False)
            while True:
                event = await subscription.next(5)
                if (
                    event
                    and event.type == EVENT_CONTAINER
                    and event.data["name"] == name
                    and event.data["state"] == "exited"
                ):
                    latencies.append(time.perf_counter() - started)
                    break
        subscription.close()
        report = service.report()
        await service.async_stop()
        await audit.async_close()
    measured = sum(1 for c in report.containers if c.cpu_percent is not None)
    return {
        "cpu_ms_median": 1000 * statistics.median(cpu),
        "cpu_ms_max": 1000 * max(cpu),
        "wall_ms_median": 1000 * statistics.median(wall),
        "wall_ms_max": 1000 * max(wall),
        "push_ms_median": 1000 * statistics.median(latencies),
        "push_ms_max": 1000 * max(latencies),
        "containers_with_cpu": measured,
    }


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument(
        "--per-container",
        action="store_true",
        help="one stats call per container, as on a Docker engine (no podman batch call)",
    )
    args = parser.parse_args()
    if args.per_container:

        async def no_batch(_engine: EngineClient) -> list[dict[str, object]]:
            raise EngineError("benchmarking the per-container path")

        EngineClient.podman_stats = no_batch  # type: ignore[method-assign]
    with PodmanEngine() as engine:
        began = time.perf_counter()
        create_fleet(engine, args.count)
        print(f"{args.count} containers created in {time.perf_counter() - began:.1f} s")
        figures = asyncio.run(_run(engine, args.cycles, args.kills))
    print(
        f"status cycle with {args.count} running containers ({args.cycles} cycles): "
        f"worker CPU median {figures['cpu_ms_median']:.1f} ms (max {figures['cpu_ms_max']:.1f}),"
        f" wall median {figures['wall_ms_median']:.1f} ms (max {figures['wall_ms_max']:.1f})"
    )
    print(
        f"container killed -> change pushed by the worker: median "
        f"{figures['push_ms_median']:.0f} ms, max {figures['push_ms_max']:.0f} ms "
        f"({args.kills} kills)"
    )
    print(f"containers with a CPU %: {figures['containers_with_cpu']}")


if __name__ == "__main__":
    main()
