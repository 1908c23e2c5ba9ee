"""Turning uploaded bytes into an RGB picture, refusing what scoring must not decode.

Only PNG, JPEG and WebP are accepted. The image's size is read from its header and checked
before any pixel is decoded, so a 20000 x 20000 image is refused without allocating it; Pillow's
own decompression-bomb guard (which refuses anything over about 179 megapixels while reading the
header) answers the same way. Transparent images are laid over white.
"""

from __future__ import annotations

import io
import re
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import QualityError

#: Pillow's names of the formats decode_image accepts, and how a message names them (MPO is
#: how Pillow names a camera's multi-picture JPEG).
ACCEPTED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "WEBP": "WebP"}
#: 40 megapixels: above any generator's output (an 8K frame is 33 MP) yet far below what
#: would exhaust the worker's memory (an RGB copy of 40 MP is 120 MB).
DEFAULT_MAX_PIXELS = 40_000_000

# Where HTTP has a better answer than the 400 of a refused image.
_STATUS = {"image_too_large": 413}
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


class ImageError(QualityError):
    """Bytes that are not an image scoring can use.

    Codes: ``invalid_image`` (empty, corrupt, truncated, not an image), ``unsupported_format``
    (a real image in a format other than PNG, JPEG or WebP), ``image_too_large``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code, status=_STATUS.get(code))


def _accepted() -> str:
    *first, last = dict.fromkeys(ACCEPTED_FORMATS.values())
    return f"{', '.join(first)} or {last}"


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:.3g}"


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode PNG, JPEG or WebP ``data`` of at most ``max_pixels`` into an RGB image.

    Raises ImageError. The first frame of an animated image is used; an EXIF orientation is
    applied.
    """
    if not data:
        raise ImageError("invalid_image", "The image is empty")
    try:
        with warnings.catch_warnings():
            # The size is checked below against a far lower limit than Pillow's warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))  # reads the header only
    except Image.DecompressionBombError as err:
        found = _BOMB_PIXELS.search(str(err))
        size = f"{_megapixels(int(found[1]))} megapixels" if found else "too many pixels"
        raise ImageError(
            "image_too_large",
            f"The image has {size}; the limit is {_megapixels(max_pixels)} megapixels",
        ) from err
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise ImageError(
            "invalid_image", f"The data is not a readable image (send {_accepted()})"
        ) from err
    kind = ACCEPTED_FORMATS.get(image.format or "")
    if kind is None:
        raise ImageError(
            "unsupported_format",
            f"{image.format} images are not accepted; send {_accepted()}",
        )
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(
            "image_too_large",
            f"The image is {width} x {height} ({_megapixels(width * height)} megapixels); "
            f"the limit is {_megapixels(max_pixels)} megapixels",
        )
    try:
        image.load()
        return _to_rgb(ImageOps.exif_transpose(image))
    except Exception as err:
        # Pillow's decoders fail on hostile data in many ways (OSError for truncation, others
        # from deep inside a plugin): all of them mean the upload is not a usable image.
        raise ImageError("invalid_image", f"The {kind} image is corrupt or truncated") from err


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
