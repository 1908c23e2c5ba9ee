"""Model downloads from a loopback server that serves the real test weights.

The server answers like Hugging Face (``/{repo}/resolve/main/{file}`` redirects to a CDN path,
the redirect carrying the file's sha256 in ``X-Linked-Etag``) and like GitHub releases.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import hashlib
import itertools
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer
import pytest

from hydra_core.voice import download
from hydra_core.voice.download import DownloadError, download_whisper, whisper_files
from hydra_core.voice.loader import ModelState
from hydra_core.voice.stt import SttEngine, SttError
from hydra_core.voice.tts import TtsEngine, TtsError
from tests.voice.weights import COMMAND, WHISPER_FILES, VoiceWeights, words

# Loopback TCP only; Home Assistant's test plugin would block it otherwise.
pytestmark = pytest.mark.usefixtures("loopback_sockets")

TINY = "/Systran/faster-whisper-tiny.en/resolve/main"
KOKORO = "/thewh1teagle/kokoro-onnx/releases/download/model-files-v1.0"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class ModelServer:
    """Serves files by URL path; can answer 404, cut a download short or announce sums."""

    def __init__(self) -> None:
        self.files: dict[str, Path] = {}
        self.etags: dict[str, str] = {}
        self.missing: set[str] = set()
        self.cut: dict[str, int] = {}
        # A pause after each megabyte sent: a slow link, so a download lasts a while.
        self.pace_s = 0.0
        self.requests: list[tuple[str, str]] = []
        self.url = ""

    def add(self, path: str, file: Path, *, etag: str | None = None) -> None:
        self.files[path] = file
        if etag is not None:
            self.etags[path] = etag

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        path = request.path
        if "/resolve/main/" in path and not path.startswith("/cdn/"):  # Hugging Face
            headers = {"Location": f"/cdn{path}"}
            if path in self.etags:
                headers["X-Linked-Etag"] = f'"{self.etags[path]}"'
            if path not in self.files or path in self.missing:
                raise web.HTTPNotFound
            raise web.HTTPFound(headers=headers, location=f"/cdn{path}")
        path = path.removeprefix("/cdn")
        if path not in self.files or path in self.missing:
            raise web.HTTPNotFound
        file = self.files[path]
        response = web.StreamResponse()
        response.content_length = file.stat().st_size
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        limit = self.cut.get(path)
        sent = 0
        with file.open("rb") as source:
            while block := source.read(1 << 20):
                if limit is not None and sent + len(block) > limit:
                    await response.write(block[: limit - sent])
                    assert request.transport is not None
                    request.transport.close()  # the connection drops mid-file
                    return response
                await response.write(block)
                sent += len(block)
                if self.pace_s:
                    await asyncio.sleep(self.pace_s)
        await response.write_eof()
        return response

    def downloads(self) -> list[str]:
        """The files sent (GET requests that were not redirects)."""
        return [
            path for method, path in self.requests if method == "GET" and path.startswith("/cdn/")
        ]


@pytest.fixture
async def model_server(voice_weights: VoiceWeights) -> AsyncIterator[ModelServer]:
    """A loopback server with Whisper tiny.en (Hugging Face layout) and Kokoro (GitHub)."""
    models = ModelServer()
    for name in WHISPER_FILES:
        file = voice_weights.whisper_tiny_en / name
        models.add(f"{TINY}/{name}", file, etag=sha256(file) if name == "model.bin" else None)
    models.add(f"{KOKORO}/kokoro-v1.0.int8.onnx", voice_weights.kokoro_model)
    models.add(f"{KOKORO}/voices-v1.0.bin", voice_weights.kokoro_voices)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", models.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    models.url = str(server.make_url("")).rstrip("/")
    yield models
    await server.close()


def leftovers(folder: Path) -> list[str]:
    """Everything under ``folder`` (relative paths)."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


async def test_first_transcribe_downloads_with_progress_then_uses_the_files(
    tmp_path: Path, model_server: ModelServer, command_speech: bytes
) -> None:
    progress: list[tuple[str, float]] = []
    engine = SttEngine(
        tmp_path,
        download_base_url=model_server.url,
        on_progress=lambda name, fraction: progress.append((name, fraction)),
    )
    assert engine.installed_models() == []
    assert engine.unavailable_reason() is None  # downloadable
    assert words(await engine.transcribe(command_speech)) == words(COMMAND)
    assert engine.installed_models() == ["tiny.en"]
    assert leftovers(tmp_path) == [
        "whisper",
        "whisper/tiny.en",
        *(f"whisper/tiny.en/{name}" for name in sorted(WHISPER_FILES)),
    ]
    assert sorted(model_server.downloads()) == sorted(
        f"/cdn{TINY}/{name}" for name in WHISPER_FILES
    )

    assert {name for name, _ in progress} == {"whisper/tiny.en"}
    fractions = [fraction for _, fraction in progress]
    assert fractions[0] == 0.0
    assert fractions[-1] == 1.0
    assert fractions == sorted(fractions)
    assert all(0.0 <= fraction <= 1.0 for fraction in fractions)
    assert 20 <= len(fractions) <= 102  # about every 1 %, not per network read
    assert all(b - a >= 0.01 for a, b in itertools.pairwise(fractions))

    # The next transcription, and a new engine (a restart), use the files as they are.
    requests = len(model_server.requests)
    assert words(await engine.transcribe(command_speech)) == words(COMMAND)
    await engine.close()
    again = SttEngine(tmp_path, download_base_url=model_server.url, offline=True)
    assert words(await again.transcribe(command_speech)) == words(COMMAND)
    await again.close()
    assert len(model_server.requests) == requests


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (lambda s: s.missing.add(f"{TINY}/model.bin"), "HTTP 404"),
        (lambda s: s.cut.update({f"{TINY}/model.bin": 10_000_000}), "model.bin"),
        (lambda s: s.etags.update({f"{TINY}/model.bin": "0" * 64}), "corrupt"),
    ],
    ids=["not-found", "connection-cut", "wrong-sha256"],
)
async def test_a_failed_download_leaves_no_model_folder(
    tmp_path: Path, model_server: ModelServer, break_it: object, message: str
) -> None:
    break_it(model_server)  # type: ignore[operator]
    engine = SttEngine(tmp_path, download_base_url=model_server.url)
    with pytest.raises(SttError, match=r"Could not download Whisper model 'tiny\.en'") as caught:
        await engine.transcribe(b"\x10\x20" * 16000)
    assert message in str(caught.value)
    assert "model.bin" in str(caught.value)
    assert engine.state is ModelState.ERROR
    assert engine.error is not None
    assert message in engine.error
    assert leftovers(tmp_path) == ["whisper"]  # no model folder, no .part file
    assert engine.installed_models() == []


async def test_a_cut_connection_is_reported_as_such(
    tmp_path: Path, model_server: ModelServer
) -> None:
    model_server.cut[f"{TINY}/model.bin"] = 5_000_000
    with pytest.raises(DownloadError, match=r"cut off|failed after") as caught:
        await download_whisper("tiny.en", tmp_path / "tiny.en", base_url=model_server.url)
    assert f"{TINY}/model.bin" in str(caught.value)
    assert leftovers(tmp_path) == []


async def test_only_missing_files_are_fetched(
    tmp_path: Path, model_server: ModelServer, voice_weights: VoiceWeights
) -> None:
    folder = tmp_path / "tiny.en"
    folder.mkdir()
    (folder / "config.json").write_bytes(
        (voice_weights.whisper_tiny_en / "config.json").read_bytes()
    )
    await download_whisper("tiny.en", folder, base_url=model_server.url)
    assert sorted(model_server.downloads()) == sorted(
        f"/cdn{TINY}/{name}" for name in ("model.bin", "tokenizer.json", "vocabulary.txt")
    )
    assert leftovers(tmp_path) == [
        "tiny.en",
        *(f"tiny.en/{name}" for name in sorted(WHISPER_FILES)),
    ]


async def test_one_of_the_vocabulary_files(
    tmp_path: Path, model_server: ModelServer, voice_weights: VoiceWeights
) -> None:
    """large-v3 models ship vocabulary.json instead of vocabulary.txt."""
    repo = "/Systran/faster-whisper-large-v3/resolve/main"
    source = voice_weights.whisper_tiny_en
    for name in ("config.json", "tokenizer.json"):
        model_server.add(f"{repo}/{name}", source / name)
    model_server.add(f"{repo}/vocabulary.json", source / "config.json")
    model_server.add(f"{repo}/model.bin", source / "vocabulary.txt")
    await download_whisper("large-v3", tmp_path / "large-v3", base_url=model_server.url)
    assert sorted(p.name for p in (tmp_path / "large-v3").iterdir()) == [
        "config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.json",
    ]


def test_whisper_repositories() -> None:
    assert [f.urls for (f,) in whisper_files("turbo", "https://hf.test")[:1]] == [
        ("https://hf.test/mobiuslabsgmbh/faster-whisper-large-v3-turbo/resolve/main/config.json",)
    ]
    assert download.WHISPER_REPOS["distil-large-v3"] == "Systran/faster-distil-whisper-large-v3"
    assert download.WHISPER_REPOS["small.en"] == "Systran/faster-whisper-small.en"
    with pytest.raises(DownloadError, match=r"tiny\.en"):
        whisper_files("enormous")


async def test_kokoro_downloads_on_first_load(
    tmp_path: Path,
    model_server: ModelServer,
    voice_weights: VoiceWeights,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The model file is the published kokoro-v1.0.int8.onnx (its pinned sum checks it); the
    # test voices are not the published voices-v1.0.bin, so their sum stands in for it.
    assert download.KOKORO_SHA256["kokoro-v1.0.int8.onnx"] == voice_weights.kokoro_sha256
    monkeypatch.setitem(
        download.KOKORO_SHA256, "voices-v1.0.bin", sha256(voice_weights.kokoro_voices)
    )
    progress: list[float] = []
    tts = TtsEngine(
        tmp_path,
        voice="jf_alpha",
        download_base_url=f"{model_server.url}{KOKORO}",
        on_progress=lambda name, fraction: progress.append(fraction),
    )
    assert tts.voices() == []
    assert tts.unavailable_reason() is None
    await tts.load()
    assert tts.voices()[0] == "jf_alpha"
    assert leftovers(tmp_path) == [
        "kokoro",
        "kokoro/kokoro-v1.0.int8.onnx",
        "kokoro/voices-v1.0.bin",
    ]
    assert progress[0] == 0.0
    assert progress[-1] == 1.0
    assert progress == sorted(progress)
    chunks = [chunk async for chunk in tts.synthesize("Hello.")]
    assert chunks
    await tts.close()


async def test_kokoro_sums_are_checked(tmp_path: Path, model_server: ModelServer) -> None:
    """The test voices file is not the published one: its pinned sum rejects it."""
    tts = TtsEngine(tmp_path, download_base_url=f"{model_server.url}{KOKORO}")
    with pytest.raises(TtsError, match="corrupt"):
        await tts.load()
    assert tts.state is ModelState.ERROR
    assert leftovers(tmp_path) == []
    await tts.close()


async def test_offline_never_downloads(tmp_path: Path, model_server: ModelServer) -> None:
    stt = SttEngine(tmp_path, download_base_url=model_server.url, offline=True)
    with pytest.raises(SttError, match="offline"):
        await stt.transcribe(b"\x10\x20" * 16000)
    tts = TtsEngine(tmp_path, download_base_url=model_server.url, offline=True)
    with pytest.raises(TtsError, match="offline"):
        await tts.load()
    assert model_server.requests == []
    await stt.close()
    await tts.close()
