"""Download speech models over HTTPS, atomically, with progress.

Each file is streamed into a staging folder next to the model folder as ``<file>.part``, its
sha256 checked where known (a pinned sum, or the ``X-Linked-Etag`` Hugging Face sends for large
files) and renamed; the staging folder becomes the model folder only when every file is there.
A failed or interrupted download leaves nothing behind, so a model folder is always complete.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
import hashlib
import logging
import os
from pathlib import Path
import re
import shutil
from typing import IO, Protocol

import aiohttp

_LOGGER = logging.getLogger(__name__)

HUGGINGFACE_URL = "https://huggingface.co"
KOKORO_BASE_URL = "https://github.com/thewh1teagle/kokoro-onnx/releases/download/model-files-v1.0"
KOKORO_MODEL_FILE = "kokoro-v1.0.int8.onnx"
KOKORO_VOICES_FILE = "voices-v1.0.bin"
#: Published sums of the kokoro-onnx v1.0 release files.
KOKORO_SHA256 = {
    KOKORO_MODEL_FILE: "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb",
    KOKORO_VOICES_FILE: "bca610b8308e8d99f32e6fe4197e7ec01679264efed0cac9140fe9c29f1fbf7d",
}

#: Hugging Face repositories of the CTranslate2 Whisper conversions.
WHISPER_REPOS = {
    "tiny": "Systran/faster-whisper-tiny",
    "tiny.en": "Systran/faster-whisper-tiny.en",
    "base": "Systran/faster-whisper-base",
    "base.en": "Systran/faster-whisper-base.en",
    "small": "Systran/faster-whisper-small",
    "small.en": "Systran/faster-whisper-small.en",
    "medium": "Systran/faster-whisper-medium",
    "medium.en": "Systran/faster-whisper-medium.en",
    "large-v3": "Systran/faster-whisper-large-v3",
    "distil-large-v3": "Systran/faster-distil-whisper-large-v3",
    "turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
}
#: The files of a Whisper model; each entry lists alternatives, the first one found is used.
WHISPER_FILES: tuple[tuple[str, ...], ...] = (
    ("config.json",),
    ("tokenizer.json",),
    ("vocabulary.txt", "vocabulary.json"),
    ("model.bin",),
)

_CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60)

ProgressCallback = Callable[[str, float], None]


_IDENTITY = {"Accept-Encoding": "identity"}


class _Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


class DownloadError(Exception):
    """A model could not be downloaded; nothing was left half-written."""


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch: its local name, the URLs to try in order, and its sha256 if known."""

    name: str
    urls: tuple[str, ...]
    sha256: str | None = None


@dataclass
class _Planned:
    remote: RemoteFile
    url: str
    size: int
    sha256: str | None


def whisper_files(model: str, base_url: str = HUGGINGFACE_URL) -> list[tuple[RemoteFile, ...]]:
    """The files of a known Whisper model, each as its alternatives."""
    try:
        repo = WHISPER_REPOS[model]
    except KeyError:
        known = ", ".join(WHISPER_REPOS)
        raise DownloadError(
            f"Whisper model {model!r} is not one that can be downloaded (known: {known})"
        ) from None
    base = base_url.rstrip("/")
    return [
        tuple(RemoteFile(name, (f"{base}/{repo}/resolve/main/{name}",)) for name in choice)
        for choice in WHISPER_FILES
    ]


def kokoro_files(base_url: str = KOKORO_BASE_URL) -> list[tuple[RemoteFile, ...]]:
    """The Kokoro int8 model and its voices, with their sums from ``KOKORO_SHA256``."""
    base = base_url.rstrip("/")
    return [
        (RemoteFile(name, (f"{base}/{name}",), KOKORO_SHA256.get(name)),)
        for name in (KOKORO_MODEL_FILE, KOKORO_VOICES_FILE)
    ]


async def download_whisper(
    model: str,
    dest: Path,
    *,
    base_url: str = HUGGINGFACE_URL,
    on_progress: ProgressCallback | None = None,
    session: aiohttp.ClientSession | None = None,
) -> Path:
    """Download Whisper ``model`` (CTranslate2) into folder ``dest``."""
    return await download_files(
        f"whisper/{model}",
        whisper_files(model, base_url),
        dest,
        on_progress=on_progress,
        session=session,
    )


async def download_kokoro(
    dest: Path,
    *,
    base_url: str = KOKORO_BASE_URL,
    on_progress: ProgressCallback | None = None,
    session: aiohttp.ClientSession | None = None,
) -> Path:
    """Download the Kokoro int8 model and voices into folder ``dest``."""
    return await download_files(
        "kokoro", kokoro_files(base_url), dest, on_progress=on_progress, session=session
    )


async def download_files(
    name: str,
    files: Sequence[tuple[RemoteFile, ...]],
    dest: Path,
    *,
    on_progress: ProgressCallback | None = None,
    session: aiohttp.ClientSession | None = None,
) -> Path:
    """Fetch ``files`` into ``dest`` atomically, reporting ``on_progress(name, 0..1)``.

    Files already in ``dest`` are kept. Raises ``DownloadError`` with the URL and reason.
    """
    if session is None:
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as own:
            return await _download(name, files, dest, on_progress, own)
    return await _download(name, files, dest, on_progress, session)


async def _download(
    name: str,
    files: Sequence[tuple[RemoteFile, ...]],
    dest: Path,
    on_progress: ProgressCallback | None,
    session: aiohttp.ClientSession,
) -> Path:
    staging = dest.with_name(f".{dest.name}.download")
    await asyncio.to_thread(_reset_dir, staging)
    try:
        wanted = [choice for choice in files if not any((dest / f.name).is_file() for f in choice)]
        plan = [await _plan(session, choice) for choice in wanted]
        progress = _Progress(name, sum(item.size for item in plan), on_progress)
        progress.report(0.0)
        for item in plan:
            await _fetch(session, item, staging, progress)
        await asyncio.to_thread(_install, staging, dest)
        # Done once the files are where the model is loaded from, not when the last byte came.
        progress.finish()
    except BaseException:
        await asyncio.shield(asyncio.to_thread(shutil.rmtree, staging, True))
        raise
    _LOGGER.info("Downloaded %s into %s", name, dest)
    return dest


def _reset_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)


def _install(staging: Path, dest: Path) -> None:
    if not dest.exists():
        staging.rename(dest)
        return
    for item in staging.iterdir():
        item.replace(dest / item.name)
    staging.rmdir()


async def _plan(session: aiohttp.ClientSession, choice: tuple[RemoteFile, ...]) -> _Planned:
    """Find which alternative exists, its size and its announced sha256."""
    reasons: list[str] = []
    for remote in choice:
        for url in remote.urls:
            try:
                async with session.head(url, allow_redirects=True, headers=_IDENTITY) as resp:
                    if resp.status >= 400:
                        reasons.append(f"{url}: HTTP {resp.status}")
                        continue
                    size = int(resp.headers.get("Content-Length", "0") or 0)
                    sha = remote.sha256 or _announced_sha256(resp)
                    return _Planned(remote, url, size, sha)
            except (aiohttp.ClientError, TimeoutError) as err:
                reasons.append(f"{url}: {_describe(err)}")
    names = " or ".join(remote.name for remote in choice)
    raise DownloadError(f"Could not download {names}: {'; '.join(reasons)}")


def _announced_sha256(resp: aiohttp.ClientResponse) -> str | None:
    """The sha256 Hugging Face gives large (LFS) files, on the redirect or the answer."""
    for answer in (*resp.history, resp):
        for header in ("X-Linked-Etag", "X-Linked-ETag"):
            value = answer.headers.get(header, "").strip().removeprefix("W/").strip('"').lower()
            if _SHA256.fullmatch(value):
                return value
    return None


def _describe(err: BaseException) -> str:
    return str(err) or type(err).__name__


class _Progress:
    """Overall progress over every file, reported at most every 1 % and never backwards."""

    def __init__(self, name: str, total: int, callback: ProgressCallback | None) -> None:
        self.name = name
        self.total = total
        self.callback = callback
        self.done = 0
        self.last = -1.0

    def add(self, count: int) -> None:
        self.done += count
        if self.total > 0:
            self.report(min(self.done / self.total, 0.999))

    def report(self, fraction: float) -> None:
        if self.callback is None or fraction < self.last + 0.01:
            return
        self.last = fraction
        self.callback(self.name, fraction)

    def finish(self) -> None:
        if self.callback is not None and self.last < 1.0:
            self.last = 1.0
            self.callback(self.name, 1.0)


def _write(handle: IO[bytes], digest: _Digest, data: bytes) -> None:
    handle.write(data)
    digest.update(data)


async def _fetch(
    session: aiohttp.ClientSession, item: _Planned, staging: Path, progress: _Progress
) -> None:
    part = staging / f"{item.remote.name}.part"
    digest = hashlib.sha256()
    received = 0
    try:
        async with session.get(item.url, headers=_IDENTITY) as resp:
            if resp.status >= 400:
                raise DownloadError(f"Could not download {item.url}: HTTP {resp.status}")
            expected = resp.content_length
            sha = item.sha256 or _announced_sha256(resp)
            handle = await asyncio.to_thread(part.open, "wb")
            try:
                buffer = bytearray()
                async for data in resp.content.iter_chunked(256 * 1024):
                    buffer += data
                    received += len(data)
                    if len(buffer) >= _CHUNK:
                        await asyncio.to_thread(_write, handle, digest, bytes(buffer))
                        buffer.clear()
                    progress.add(len(data))
                if buffer:
                    await asyncio.to_thread(_write, handle, digest, bytes(buffer))
                await asyncio.to_thread(os.fsync, handle.fileno())
            finally:
                await asyncio.to_thread(handle.close)
    except (aiohttp.ClientError, TimeoutError) as err:
        raise DownloadError(
            f"Download of {item.url} failed after {received} bytes: {_describe(err)}"
        ) from err
    if expected is not None and received != expected:
        raise DownloadError(
            f"Download of {item.url} was cut off: {received} of {expected} bytes arrived"
        )
    if sha is not None and digest.hexdigest() != sha:
        raise DownloadError(
            f"Download of {item.url} is corrupt: sha256 {digest.hexdigest()}, expected {sha}"
        )
    await asyncio.to_thread(part.replace, staging / item.remote.name)
