"""MIME sniffing from magic bytes (storage/mime.py), and how the store uses it."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from image_studio.errors import InvalidRequest
from image_studio.storage.mime import ebml_doctype, extension_for, sniff, sniff_or_none
from image_studio.types import MediaKind

from .helpers import ebml, encode, ftyp, pixels, save


SAMPLES = {
    "png": (encode(Image.new("RGB", (4, 4))), "image/png", "png", MediaKind.image),
    "jpeg": (encode(Image.new("RGB", (4, 4)), "JPEG"), "image/jpeg", "jpg", MediaKind.image),
    "gif": (encode(Image.new("P", (4, 4)), "GIF"), "image/gif", "gif", None),
    "webp": (encode(Image.new("RGB", (4, 4)), "WEBP"), "image/webp", "webp", None),
    "webp-lossless": (encode(Image.new("RGBA", (4, 4)), "WEBP", lossless=True), "image/webp", "webp", None),
    "mp4-isom": (ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41"), "video/mp4", "mp4", MediaKind.video),
    "mp4-mp42": (ftyp(b"mp42", b"mp42"), "video/mp4", "mp4", MediaKind.video),
    "mov": (ftyp(b"qt  ", b"qt  "), "video/quicktime", "mov", MediaKind.video),
    "avif": (ftyp(b"avif", b"mif1", b"miaf"), "image/avif", "avif", MediaKind.image),
    "webm": (ebml(b"webm"), "video/webm", "webm", MediaKind.video),
    "mkv": (ebml(b"matroska"), "video/x-matroska", "mkv", MediaKind.video),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sniff_table(name: str) -> None:
    data, mime, ext, media = SAMPLES[name]
    found = sniff(data)
    assert (found.mime, found.ext, found.media) == (mime, ext, media)
    assert extension_for(mime) == ext


@pytest.mark.parametrize(
    "data",
    [b"", b"hello world, not an image", b"\x89PNX\r\n\x1a\n", b"RIFF\0\0\0\0WAVEfmt ",
     ftyp(b"3gp4")[:10], b"\x1a\x45\xdf\xa3\x84\x42\x82\x81x", b"\x00\x00\x00\x0cftypXXXX"],
)
def test_unknown_bytes_are_refused(data: bytes) -> None:
    assert sniff_or_none(data) is None
    with pytest.raises(InvalidRequest) as info:
        sniff(data)
    assert info.value.field == "data"


def test_ebml_doctype_reads_past_other_header_elements() -> None:
    assert ebml_doctype(ebml(b"webm")) == "webm"
    assert ebml_doctype(b"\x1a\x45\xdf\xa3\x88\x42\x82") is None  # truncated: no crash


def test_unknown_mime_has_no_extension() -> None:
    with pytest.raises(InvalidRequest) as info:
        extension_for("application/x-foo")
    assert info.value.field == "mime_type"


async def test_mislabelled_file_is_stored_as_what_it_is(store) -> None:
    jpeg = encode(Image.new("RGB", (20, 10), (10, 200, 30)), "JPEG", quality=95)
    asset = await save(store, jpeg, mime_type="image/png", filename="out.png")
    assert asset.mime_type == "image/jpeg"
    assert asset.path.endswith(".jpg")
    stored = store.local_path(asset)
    assert stored is not None and stored.read_bytes() == jpeg  # JPEGs are stored as they came
    assert (asset.width, asset.height) == (20, 10)
    assert pixels(stored.read_bytes())[1] == (20, 10)


async def test_declared_video_that_is_a_png_becomes_an_image(store) -> None:
    png = encode(Image.new("RGB", (8, 8)))
    asset = await save(store, png, mime_type="video/mp4", media=MediaKind.video)
    assert (asset.media, asset.mime_type) == (MediaKind.image, "image/png")


async def test_unknown_bytes_are_refused_and_nothing_is_written(store, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest) as info:
        await save(store, b"definitely not an image", mime_type="image/png")
    assert info.value.field == "data"
    assert not store.root.exists() or not any(store.root.rglob("*"))


async def test_sniffed_png_that_does_not_decode_is_refused(store) -> None:
    broken = encode(Image.new("RGB", (8, 8)))[:30]
    with pytest.raises(InvalidRequest) as info:
        await save(store, broken)
    assert info.value.field == "data"
