"""The host's disk I/O counters from the kernel's ``/proc/diskstats``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import re

# The kernel counts in 512-byte sectors whatever the disk's own sector size.
SECTOR_BYTES = 512
# Whole disks only, as node_exporter's default: partitions would count the same bytes twice,
# and loop, RAM and floppy devices are not disks.
_IGNORED = re.compile(r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p|mmcblk\d+p)\d+$")


@dataclass(frozen=True, slots=True, kw_only=True)
class DiskIo:
    """One disk's counters since boot."""

    device: str
    reads: int
    read_bytes: int
    writes: int
    written_bytes: int
    io_time_s: float


def read_diskstats(path: Path = Path("/proc/diskstats")) -> list[DiskIo]:
    """Every whole disk's counters; none where the file cannot be read (not Linux)."""
    try:
        text = path.read_text()
    except OSError:
        return []
    disks = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 14 or _IGNORED.match(fields[2]) or not fields[3].isdecimal():
            continue
        disks.append(
            DiskIo(
                device=fields[2],
                reads=int(fields[3]),
                read_bytes=int(fields[5]) * SECTOR_BYTES,
                writes=int(fields[7]),
                written_bytes=int(fields[9]) * SECTOR_BYTES,
                io_time_s=int(fields[12]) / 1000,
            )
        )
    return disks
