"""The quality tests' fixtures: a tiny CLIP built locally (real open_clip code, random weights
from a fixed seed) and small synthetic images.

No CLIP weights can be downloaded here, and none ship on PyPI; ``clip_configs/Hydra-Tiny-ViT.json``
is an open_clip architecture (64-pixel images, 2 layers of width 64 in each tower, the real
tokenizer) that loads in milliseconds once open_clip is imported.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import io
from pathlib import Path
import struct
import time
from typing import Any
import zlib

import numpy as np
from PIL import Image
import pytest

from hydra_core.quality.engine import ClipEngine

CONFIGS = Path(__file__).parent / "clip_configs"
TINY_MODEL = "Hydra-Tiny-ViT"


def tiny_worker_command(
    python: Path | str, port: int, token: str, data_dir: Path, *extra: str
) -> list[str]:
    """A worker process with quality on the tiny CLIP (random weights) and nothing else: no GPU,
    no container engine, no voice. ``extra`` options follow."""
    return [
        str(python),
        "-m",
        "hydra_core.worker",
        *("--host", "127.0.0.1", "--port", str(port), "--token", token),
        *("--data-dir", str(data_dir)),
        *("--gpu-backend", "none", "--docker-host", "none", "--voice", "false"),
        *("--quality-model", TINY_MODEL, "--quality-config-dir", str(CONFIGS)),
        *("--quality-pretrained", "none"),
        *extra,
    ]


def tiny_engine(models_dir: Path, **options: Any) -> ClipEngine:
    """The tiny CLIP with random weights (seed 0 unless given), never unloaded unless asked."""
    options = {"pretrained": None, "idle_unload_s": 0, **options}
    return ClipEngine(models_dir, model=TINY_MODEL, config_dir=CONFIGS, **options)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[ClipEngine]:
    """A tiny CLIP engine, closed after the test."""
    clip = tiny_engine(tmp_path / "models")
    yield clip
    await clip.async_close()


def picture(kind: str, size: tuple[int, int] = (96, 80)) -> Image.Image:
    """A distinct synthetic RGB picture: gradients, stripes, a checkerboard, noise, a disc."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    if kind == "gradient":
        pixels = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 128)], -1)
    elif kind == "stripes":
        pixels = np.stack([(x // 8 % 2) * 255] * 3, -1)
    elif kind == "checker":
        cells = (x // 16 + y // 16) % 2
        pixels = np.stack([cells * 200, cells * 40, 255 - cells * 200], -1)
    elif kind == "noise":
        pixels = np.random.default_rng(7).integers(0, 256, (height, width, 3))
    elif kind == "disc":
        inside = (x - width / 2) ** 2 + (y - height / 2) ** 2 < (min(size) / 3) ** 2
        pixels = np.stack([inside * 255, inside * 200, np.full_like(x, 30)], -1)
    else:
        raise ValueError(kind)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


KINDS = ("gradient", "stripes", "checker", "noise", "disc")


def encode(image: Image.Image, image_format: str = "PNG", **options: Any) -> bytes:
    """The image as file bytes."""
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bilevel_png(width: int, height: int, *, pixels: bool = True) -> bytes:
    """A black 1-bit PNG built without Pillow: 20000 x 20000 takes 49 KB and 0.15 s to make.

    ``pixels=False`` leaves the image data out: only the header says how large it is.
    """
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
    if pixels:
        compressor = zlib.compressobj(9)
        row = b"\x00" * (1 + (width + 7) // 8)
        body = b"".join(
            compressor.compress(row * min(100, height - top)) for top in range(0, height, 100)
        )
        data += _chunk(b"IDAT", body + compressor.flush())
    return data + _chunk(b"IEND", b"")


async def wait_until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    """Wait until ``predicate()`` is true (polling); fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "the condition was not reached in time"
        await asyncio.sleep(0.01)
