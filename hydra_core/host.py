"""Facts about the machine the worker runs on, read without third-party libraries."""

from __future__ import annotations

import functools
import os
from pathlib import Path
import platform
import socket

from .models import HostInfo

_PROC = Path("/proc")


@functools.cache
def _identity() -> tuple[str, str, str, str, int]:
    """What does not change while the worker runs: read once."""
    return (
        socket.gethostname(),
        _os_name(),
        platform.release(),
        platform.python_version(),
        os.cpu_count() or 1,
    )


def read_host_info(proc: Path = _PROC) -> HostInfo:
    """Return the host's identity, memory and load. Missing facts (non-Linux) are None.

    Quick enough for the event loop (the identity is read once; memory and load are two small
    reads of the kernel's procfs, which never waits on a disk), so a status answers in one pass
    of the loop even when the loop is busy."""
    meminfo = _read_meminfo(proc / "meminfo")
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    hostname, os_name, kernel, python, cpu_count = _identity()
    return HostInfo(
        hostname=hostname,
        os=os_name,
        kernel=kernel,
        python=python,
        cpu_count=cpu_count,
        memory_total_bytes=meminfo.get("MemTotal"),
        memory_available_bytes=meminfo.get("MemAvailable"),
        load_average=(round(load[0], 2), round(load[1], 2), round(load[2], 2)) if load else None,
        boot_time=_boot_time(proc / "stat"),
    )


def _os_name() -> str:
    try:
        return platform.freedesktop_os_release()["PRETTY_NAME"]
    except (OSError, KeyError):
        return f"{platform.system()} {platform.release()}"


def _read_meminfo(path: Path) -> dict[str, int]:
    """Parse /proc/meminfo into bytes."""
    try:
        text = path.read_text()
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            values[key] = int(fields[0]) * (1024 if fields[1:] == ["kB"] else 1)
    return values


def _boot_time(path: Path) -> float | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except (OSError, ValueError):
        pass
    return None
