"""One worker per data dir: an exclusive lock on ``DATA_DIR/lock``, held while the worker runs.

The lock is taken before anything reads or changes the data dir (token, worker id, the queue's
start-up recovery), so a second worker started by mistake on the same folder leaves at once and
cannot put the first one's running tasks back in the queue. It is ``flock``, not a pid file:
the kernel drops it when the process ends, however it ends (kill -9 included), so a stale lock
never blocks a restart. The holder's pid is written into the file only to name it in the
refusal. ``flock`` holds between processes on one machine (on NFS, Linux maps it to an NFS lock);
two machines sharing one data dir over a network file system are not supported.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
import fcntl
import os
from pathlib import Path

LOCK_FILE = "lock"


class DataDirLockedError(Exception):
    """Another worker holds the data dir's lock."""

    def __init__(self, data_dir: Path, holder: str) -> None:
        """``holder``: the pid the lock file names (empty when it could not be read)."""
        who = f"pid {holder}" if holder else "pid unknown"
        super().__init__(
            f"{data_dir} is in use by another Hydra worker ({who}); stop that worker first,"
            " or give this one its own --data-dir"
        )


@contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Hold the data dir's lock; raise DataDirLockedError at once when another worker does."""
    data_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
            raise DataDirLockedError(data_dir, holder) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        # Closing the descriptor releases the lock.
        os.close(descriptor)
