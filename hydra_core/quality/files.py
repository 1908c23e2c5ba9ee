"""Images as the worker keeps them: checked before anything is written, written whole or not at
all."""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
from typing import TYPE_CHECKING

from .images import DEFAULT_MAX_PIXELS, ImageError, decode_image
from .models import IMAGE_TYPES

if TYPE_CHECKING:
    from PIL.Image import Image


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredImage:
    """The bytes of a checked image and what the worker records about them."""

    data: bytes
    content_type: str
    extension: str
    width: int
    height: int
    digest: str


def check_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[StoredImage, Image]:
    """Decode ``data`` (ImageError when it is not a PNG, JPEG or WebP of at most
    ``max_pixels``); return what to keep and the decoded picture."""
    image = decode_image(data, max_pixels=max_pixels)
    found = _format(data)
    kind = None if found is None else IMAGE_TYPES.get(found)
    if kind is None:
        raise ImageError("unsupported_format", "Images must be PNG, JPEG or WebP")
    extension, content_type = kind
    stored = StoredImage(
        data=data,
        content_type=content_type,
        extension=extension,
        width=image.width,
        height=image.height,
        digest=hashlib.sha256(data).hexdigest(),
    )
    return stored, image


def _format(data: bytes) -> str | None:
    """The container format by its signature (decode_image has already checked the rest)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None
