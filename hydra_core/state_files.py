"""The worker's state files: written whole or not at all, and set aside when unusable.

``write_atomic`` writes a temporary file in the same folder, syncs it to disk, renames it over
the target and syncs the folder, so a crash or a power cut leaves the old content or the new,
never an empty or half-written file (an empty ``token`` would make the worker generate a new
token and lock Home Assistant out; an empty ``worker_id`` a new identity, and new devices).

``set_aside`` renames a file the worker cannot use (a corrupt SQLite database, a settings file
that is not JSON or does not fit its types) to ``<name>.corrupt-<UTC time>``, logs it and
remembers it for ``/api/v1/status`` (``set_aside``), which Home Assistant shows as a repair
until the user deletes or moves the file kept (or the worker restarts). The
worker then starts afresh without it: a bad file never makes it restart in a loop, and what was
in the file is kept for the user to look at.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
import secrets
import threading
import time

from .models import SetAsideFile

_LOGGER = logging.getLogger(__name__)

# What this process set aside (the stores open on their own threads).
_set_aside: list[SetAsideFile] = []
_set_aside_lock = threading.Lock()


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data``: old or new content after any crash, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own, so two writers of one file never share a temporary file.
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "wb") as file:
            # O_CREAT's mode is reduced by the umask; the file gets exactly ``mode``.
            os.fchmod(file.fileno(), mode)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, path)
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` survive a power cut."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def set_aside(path: Path, reason: str, *, companions: tuple[str, ...] = ()) -> SetAsideFile:
    """Rename an unusable file out of the way, with the time in its name; log and remember it.

    ``companions``: suffixes of files that belong to it (SQLite's ``-wal`` and ``-shm``), moved
    along with it when present.
    """
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    moved_to = path.with_name(f"{path.name}.corrupt-{stamp}")
    copy = 1
    while moved_to.exists():
        copy += 1
        moved_to = path.with_name(f"{path.name}.corrupt-{stamp}-{copy}")
    os.replace(path, moved_to)
    for suffix in companions:
        with contextlib.suppress(FileNotFoundError):
            os.replace(f"{path}{suffix}", f"{moved_to}{suffix}")
    _sync_folder(path.parent)
    entry = SetAsideFile(path=str(path), moved_to=str(moved_to), reason=reason, time=now)
    _LOGGER.error("Set %s aside as %s and started without it: %s", path, moved_to.name, reason)
    with _set_aside_lock:
        _set_aside.append(entry)
    return entry


def set_aside_files(folder: Path) -> tuple[SetAsideFile, ...]:
    """The files in ``folder`` (or below) this process set aside and that are still there,
    oldest first: once the user deleted or moved one, it is dealt with."""
    with _set_aside_lock:
        entries = [entry for entry in _set_aside if Path(entry.path).is_relative_to(folder)]
    return tuple(entry for entry in entries if Path(entry.moved_to).exists())
