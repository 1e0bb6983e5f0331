"""WebP thumbnails from every image mode (storage/thumbnails.py)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from image_studio.errors import InvalidRequest
from image_studio.storage.mime import sniff
from image_studio.storage.thumbnails import image_size, make_thumbnail, thumbnail_size

from .helpers import encode


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


@pytest.mark.parametrize(
    ("size", "expected"),
    [((1024, 1024), (384, 384)), ((1000, 500), (384, 192)), ((500, 1000), (192, 384)), ((383, 10), (383, 10)),
     ((5000, 1), (384, 1)), ((1, 1), (1, 1))],
)
def test_thumbnail_size(size, expected) -> None:
    assert thumbnail_size(*size) == expected


def transparent_palette_png() -> bytes:
    im = Image.new("P", (50, 30), 0)
    im.putpalette([255, 0, 0] * 256)
    return encode(im, transparency=0)


@pytest.mark.parametrize(
    ("data", "mode", "pixel"),
    [
        (encode(Image.new("L", (500, 300), 128)), "RGB", (128, 128, 128)),
        (encode(Image.new("LA", (500, 300), (128, 0))), "RGBA", None),
        (transparent_palette_png(), "RGBA", None),
        (encode(Image.new("I;16", (500, 300), 40000)), "RGB", (156, 156, 156)),
        (encode(Image.new("1", (500, 300), 1)), "RGB", (255, 255, 255)),
    ],
    ids=["L", "LA", "P-transparent", "I;16", "1-bit"],
)
def test_every_png_mode_gives_a_webp(data: bytes, mode: str, pixel) -> None:
    thumb = make_thumbnail(data)
    assert sniff(thumb.data).mime == "image/webp"
    im = decode(thumb.data)
    assert im.mode == mode and im.size == (thumb.width, thumb.height)
    if pixel is not None:
        assert all(abs(a - b) <= 2 for a, b in zip(im.getpixel((5, 5)), pixel))
    else:
        assert im.getpixel((5, 5))[3] == 0, "transparent stays transparent"


def test_cmyk_jpeg_becomes_rgb() -> None:
    im = decode(make_thumbnail(encode(Image.new("CMYK", (500, 300), (0, 0, 0, 0)), "JPEG")).data)
    assert im.mode == "RGB" and min(im.getpixel((5, 5))) > 240


def test_jpeg_exif_orientation_is_applied_to_the_thumbnail() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    jpeg = encode(Image.new("RGB", (800, 400), (0, 120, 0)), "JPEG", exif=exif)
    assert image_size(jpeg) == (800, 400), "the asset size is the stored size"
    thumb = make_thumbnail(jpeg)
    assert (thumb.width, thumb.height) == (192, 384)


def test_decompression_bombs_are_refused(monkeypatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(InvalidRequest) as info:
        make_thumbnail(encode(Image.new("RGB", (100, 100))))
    assert info.value.field == "data"


def test_truncated_pixels_are_refused() -> None:
    jpeg = encode(Image.effect_noise((300, 300), 50).convert("RGB"), "JPEG")
    with pytest.raises(InvalidRequest) as info:
        make_thumbnail(jpeg[: len(jpeg) // 2])
    assert info.value.field == "data"
