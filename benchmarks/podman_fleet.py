"""A fleet of N running busybox containers on a private podman engine, and what it costs.

As a module: ``create_fleet(engine, count)`` and ``measure(engine, ids)`` for benchmarks that
bring their own ``PodmanEngine`` (tests/podman.py). As a program::

    python -m benchmarks.podman_fleet --count 64            # start, create, wait for Ctrl-C
    python -m benchmarks.podman_fleet --count 64 --measure --no-wait

prints how long creating the containers took (and with ``--measure`` the memory they use and
the wall / CPU cost of one list and of N one-shot stats calls), then keeps the engine and its
containers until Ctrl-C with DOCKER_HOST printed for other processes; Ctrl-C removes it all.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
import json
import os
from pathlib import Path
import signal
import sys
import time
from typing import Any

from tests.podman import DOCKER_API, LIBPOD_API, PodmanEngine

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def create_fleet(
    engine: PodmanEngine,
    count: int,
    *,
    prefix: str = "fleet",
    labels: dict[str, str] | None = None,
) -> list[str]:
    """Run ``count`` containers (``sleep 3600``) named ``{prefix}-00`` ...; returns their ids."""
    width = max(2, len(str(count - 1)))
    return [engine.run(f"{prefix}-{index:0{width}d}", labels=labels) for index in range(count)]


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) that a process has used so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def process_rss(pid: int) -> int:
    """Resident memory of a process in bytes (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as file:
            return int(file.read().split()[1]) * _PAGE
    except OSError:
        return 0


def process_pss(pid: int) -> int:
    """Proportional set size in bytes (shared pages split between their users; 0 if gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as file:
            for line in file:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def directory_size(path: Path) -> int:
    """Bytes of the regular files below ``path``."""
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            try:
                stat = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if not os.path.islink(os.path.join(dirpath, name)):
                total += stat.st_size
    return total


def timed(engine: PodmanEngine, action: Callable[[], Any], repeat: int = 10) -> dict[str, float]:
    """``action`` run ``repeat`` times: median wall time, mean CPU time of the podman service
    (which does the work; the kernel counts it in 10 ms ticks, hence the mean) and of this
    process (the client)."""
    service_pid = engine.service_pid
    service_before = process_cpu(service_pid)
    own_before = time.process_time()
    walls = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        walls.append(time.perf_counter() - started)
    return {
        "wall_ms": round(sorted(walls)[len(walls) // 2] * 1000, 2),
        "service_cpu_ms": round((process_cpu(service_pid) - service_before) * 1000 / repeat, 2),
        "client_cpu_ms": round((time.process_time() - own_before) * 1000 / repeat, 2),
    }


def measure(engine: PodmanEngine, ids: Sequence[str], *, repeat: int = 10) -> dict[str, Any]:
    """Memory of the fleet and the cost of listing it and of reading its stats (see ``timed``)."""

    def median(action: Callable[[], Any]) -> dict[str, float]:
        return timed(engine, action, repeat)

    def list_all() -> None:
        engine.api("GET", f"{DOCKER_API}/containers/json?all=1")

    def stats_each() -> None:
        for container_id in ids:
            engine.api("GET", f"{DOCKER_API}/containers/{container_id}/stats?stream=false")

    def stats_all() -> None:
        engine.api("GET", f"{LIBPOD_API}/containers/stats?stream=false")

    def inspect_each() -> None:
        for container_id in ids:
            engine.inspect(container_id)

    assert engine.root is not None
    conmons = [pid for pid in engine.helper_pids() if _is_conmon(pid)]
    all_stats = engine.api("GET", f"{LIBPOD_API}/containers/stats?stream=false")["Stats"]
    return {
        "containers": len(ids),
        "memory_mib": {
            "podman_service_rss": _mib(process_rss(engine.service_pid)),
            "podman_service_pss": _mib(process_pss(engine.service_pid)),
            "conmon_rss_total": _mib(sum(process_rss(pid) for pid in conmons)),
            "conmon_pss_total": _mib(sum(process_pss(pid) for pid in conmons)),
            "conmon_processes": len(conmons),
            "containers_cgroup_usage_total": _mib(sum(s["MemUsage"] for s in all_stats)),
            "storage_on_disk": _mib(directory_size(engine.root)),
        },
        "list_all": median(list_all),
        f"stats_one_shot_x{len(ids)}": median(stats_each),
        "libpod_stats_all": median(stats_all),
        f"inspect_x{len(ids)}": median(inspect_each),
    }


def _is_conmon(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8") as file:
            return file.read().strip() == "conmon"
    except OSError:
        return False


def _mib(size: int) -> float:
    return round(size / 2**20, 1)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: start, create, (measure), wait for Ctrl-C, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=64, help="containers to create (64)")
    parser.add_argument("--measure", action="store_true", help="print memory and API costs")
    parser.add_argument("--no-wait", action="store_true", help="clean up at once, no Ctrl-C")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)

    # SIGINT (even where a background job ignores it) and SIGTERM end the program the way
    # Ctrl-C does, so the engine is always cleaned up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    results: dict[str, Any] = {}
    engine = PodmanEngine()
    try:
        engine.start()
        results["engine_start_s"] = round(engine.timings["start"], 3)
        started = time.perf_counter()
        ids = create_fleet(engine, args.count)
        elapsed = time.perf_counter() - started
        results["create_s"] = round(elapsed, 2)
        results["create_per_container_ms"] = round(elapsed / max(args.count, 1) * 1000, 1)
        if args.measure:
            results.update(measure(engine, ids))
        if args.json:
            print(json.dumps(results, indent=2))
        else:
            print(f"engine started in {results['engine_start_s']} s")
            print(f"{args.count} containers running after {results['create_s']} s")
            for key, value in results.items():
                if key not in ("engine_start_s", "create_s"):
                    print(f"  {key}: {value}")
        if not args.no_wait:
            print(f"export DOCKER_HOST={engine.docker_host}")
            print("Ctrl-C removes the containers and stops the engine.", flush=True)
            while engine.running:
                time.sleep(1)
            print(f"podman service exited: {engine.log_tail()}", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        print("\nstopping", file=sys.stderr)
    finally:
        engine.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
