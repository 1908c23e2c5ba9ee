"""decode_image: PNG, JPEG and WebP become RGB; everything else is refused with a clear code."""

from __future__ import annotations

import tracemalloc

from PIL import Image
import pytest

from hydra_core.quality.errors import QualityError
from hydra_core.quality.images import ImageError, decode_image
from tests.quality.conftest import bilevel_png, encode, picture


@pytest.mark.parametrize(
    ("image_format", "options"),
    [("PNG", {}), ("JPEG", {"quality": 90}), ("WEBP", {"lossless": True})],
)
def test_accepted_formats_decode_to_rgb(image_format: str, options: dict[str, int]) -> None:
    image = decode_image(encode(picture("gradient", (120, 90)), image_format, **options))
    assert image.mode == "RGB"
    assert image.size == (120, 90)


def test_transparency_is_laid_over_white() -> None:
    clear = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert decode_image(encode(clear)).getpixel((3, 3)) == (255, 255, 255)
    palette = Image.new("P", (8, 8), 0)
    assert decode_image(encode(palette, transparency=0)).getpixel((3, 3)) == (255, 255, 255)


def test_grey_images_become_rgb() -> None:
    image = decode_image(encode(Image.new("L", (8, 8), 77)))
    assert (image.mode, image.getpixel((0, 0))) == ("RGB", (77, 77, 77))


@pytest.mark.parametrize("image_format", ["GIF", "BMP", "TIFF"])
def test_other_formats_are_unsupported(image_format: str) -> None:
    with pytest.raises(ImageError) as caught:
        decode_image(encode(picture("disc"), image_format))
    assert caught.value.code == "unsupported_format"
    assert caught.value.message == (
        f"{image_format} images are not accepted; send PNG, JPEG or WebP"
    )
    # The API answers every quality refusal the same way.
    assert isinstance(caught.value, QualityError)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40],
    ids=["empty", "text", "png-signature-only"],
)
def test_corrupt_bytes_are_invalid(data: bytes) -> None:
    with pytest.raises(ImageError) as caught:
        decode_image(data)
    assert caught.value.code == "invalid_image"


def test_truncated_jpeg_is_invalid() -> None:
    data = encode(picture("noise", (256, 256)), "JPEG", quality=95)
    with pytest.raises(ImageError) as caught:
        decode_image(data[: len(data) // 2])
    assert caught.value.code == "invalid_image"
    assert caught.value.message == "The JPEG image is corrupt or truncated"


def test_huge_image_is_refused_without_decoding_it() -> None:
    data = bilevel_png(20000, 20000)  # 400 megapixels in 49 KB
    tracemalloc.start()
    try:
        with pytest.raises(ImageError) as caught:
            decode_image(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.code == "image_too_large"
    assert caught.value.message == "The image has 400 megapixels; the limit is 40 megapixels"
    # Decoding it would take 50 MB as 1-bit pixels and 1.2 GB as RGB.
    assert peak < 10_000_000


def test_size_is_checked_from_the_header() -> None:
    """A 48-megapixel PNG with no pixel data at all: refused for its size, so the check came
    before any decoding (which would have failed on the missing data)."""
    with pytest.raises(ImageError) as caught:
        decode_image(bilevel_png(8000, 6000, pixels=False))
    assert caught.value.code == "image_too_large"
    assert caught.value.message == (
        "The image is 8000 x 6000 (48 megapixels); the limit is 40 megapixels"
    )
    with pytest.raises(ImageError) as caught:
        decode_image(bilevel_png(800, 600, pixels=False))
    assert caught.value.code == "invalid_image"


def test_the_limit_is_an_option() -> None:
    data = encode(picture("stripes", (100, 60)))
    assert decode_image(data, max_pixels=6000).size == (100, 60)
    with pytest.raises(ImageError) as caught:
        decode_image(data, max_pixels=5000)
    assert caught.value.message == (
        "The image is 100 x 60 (0.006 megapixels); the limit is 0.005 megapixels"
    )
