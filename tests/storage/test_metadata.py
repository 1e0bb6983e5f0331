"""PNG text chunks and A1111 infotext (storage/metadata.py)."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image, PngImagePlugin

from image_studio.errors import InvalidRequest
from image_studio.storage.metadata import (
    build_infotext,
    embed_png_text,
    iter_chunks,
    read_png_text,
)

from .helpers import encode, noisy_png, pixels


def chunk_types(png: bytes) -> list[bytes]:
    return [t for t, _, _ in iter_chunks(png)]


def non_text_chunks(png: bytes) -> list[bytes]:
    return [png[s:e] for t, s, e in iter_chunks(png) if t not in (b"tEXt", b"zTXt", b"iTXt")]


# --- infotext --------------------------------------------------------------------------


def test_infotext_matches_automatic1111_layout() -> None:
    summary = {"prompt": "a fox", "negative_prompt": "blurry", "steps": 20, "sampler": "euler",
               "cfg_scale": 7.0, "seed": -1, "width": 512, "height": 512, "model": "x", "n": 2}
    text = build_infotext(summary, {"seed": 42})
    assert text == (
        "a fox\nNegative prompt: blurry\n"
        "Steps: 20, Sampler: euler, CFG scale: 7, Seed: 42, Size: 512x512, Model: x"
    )


def test_infotext_quotes_values_and_skips_what_a1111_would() -> None:
    text = build_infotext(
        {"prompt": "p", "negative_prompt": None, "seed": -1, "cfg_scale": 4.5, "extra": {"a": 1}},
        {"workflow": "sdxl, refined", "lora_list": ["a"], "clip_skip": 2, "comment": "a: b"},
    )
    assert text == 'p\nCFG scale: 4.5, Workflow: "sdxl, refined", Clip skip: 2, Comment: "a: b"'
    assert "Negative prompt" not in text and "Seed" not in text


def test_infotext_multiline_prompt_keeps_parameters_on_the_last_line() -> None:
    text = build_infotext({"prompt": "line one\nline two", "steps": 4}, {})
    assert text.splitlines() == ["line one", "line two", "Steps: 4"]


# --- embedding -------------------------------------------------------------------------


def test_embed_keeps_every_other_chunk_and_the_pixels() -> None:
    png = noisy_png(40, 30)
    out = embed_png_text(png, {"parameters": "a fox\nSteps: 20", "image_studio": '{"seed": 42}'},
                         itxt={"image_studio"})
    assert non_text_chunks(out) == non_text_chunks(png)  # IHDR, IDAT ..., IEND byte for byte
    assert pixels(out) == pixels(png)
    types = chunk_types(out)
    assert types[-3:] == [b"tEXt", b"iTXt", b"IEND"]
    assert read_png_text(out) == {"parameters": "a fox\nSteps: 20", "image_studio": '{"seed": 42}'}


def test_pillow_reads_our_chunks_and_checks_their_crc() -> None:
    out = embed_png_text(noisy_png(8, 8), {"parameters": "café", "image_studio": "ünïcode ✓"},
                         itxt={"image_studio"})
    with Image.open(io.BytesIO(out)) as im:
        im.load()  # Pillow verifies every chunk's CRC while loading
        assert im.text == {"parameters": "café", "image_studio": "ünïcode ✓"}


def test_non_latin1_text_becomes_itxt_and_long_text_is_compressed() -> None:
    long = "x" * 10_000
    out = embed_png_text(noisy_png(4, 4), {"parameters": "猫", "big": long}, itxt={"big"})
    chunks = {png_key(out, s, e): (t, out[s:e]) for t, s, e in iter_chunks(out) if t == b"iTXt"}
    assert set(chunks) == {b"parameters", b"big"}
    big = chunks[b"big"][1]
    assert len(big) < 1000, "10 kB of one letter is stored compressed"
    assert big[8 + len(b"big") + 1] == 1  # compression flag
    assert read_png_text(out) == {"parameters": "猫", "big": long}


def png_key(png: bytes, start: int, end: int) -> bytes:
    return png[start + 8 : end - 4].split(b"\0", 1)[0]


def test_embedding_twice_replaces_the_keyword() -> None:
    once = embed_png_text(noisy_png(4, 4), {"parameters": "first"})
    twice = embed_png_text(once, {"parameters": "second"})
    assert chunk_types(twice).count(b"tEXt") == 1
    assert read_png_text(twice) == {"parameters": "second"}


def test_existing_chunks_of_other_tools_survive() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("workflow", '{"nodes": []}', zip=True)  # ComfyUI-style, as zTXt
    src = encode(Image.new("RGB", (4, 4), "blue"), pnginfo=info)
    out = embed_png_text(src, {"parameters": "p"})
    assert read_png_text(out) == {"workflow": '{"nodes": []}', "parameters": "p"}


def test_a_chunk_with_a_bad_crc_is_skipped() -> None:
    out = bytearray(embed_png_text(noisy_png(4, 4), {"good": "1", "bad": "2"}))
    for t, s, e in iter_chunks(bytes(out)):
        if t == b"tEXt" and png_key(bytes(out), s, e) == b"bad":
            out[e - 1] ^= 0xFF
    assert read_png_text(bytes(out)) == {"good": "1"}


@pytest.mark.parametrize("key", ["", " lead", "trail ", "two  spaces", "k" * 80, "tab\there", "猫"])
def test_invalid_keywords_are_refused_with_the_field(key: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        embed_png_text(noisy_png(4, 4), {key: "v"})
    assert info.value.field == f"chunks.{key}"


def test_truncated_and_foreign_files_are_refused() -> None:
    png = noisy_png(16, 16)
    with pytest.raises(InvalidRequest, match="IEND|past the end") as info:
        embed_png_text(png[: len(png) - 20], {"k": "v"})
    assert info.value.field == "data"
    with pytest.raises(InvalidRequest, match="signature"):
        read_png_text(b"GIF89a" + b"\0" * 40)
    bad_first = png[:8] + struct.pack(">I", 0) + b"tEXt" + struct.pack(">I", zlib.crc32(b"tEXt")) + png[8:]
    with pytest.raises(InvalidRequest, match="IHDR"):
        read_png_text(bad_first)


def test_zip_bomb_text_is_refused() -> None:
    info = PngImagePlugin.PngInfo()
    src = encode(Image.new("RGB", (2, 2)), pnginfo=info)
    body = b"bomb\0" + bytes([1, 0]) + b"\0\0" + zlib.compress(b"a" * (17 * 1024 * 1024), 9)
    crc = zlib.crc32(body, zlib.crc32(b"iTXt"))
    chunk = struct.pack(">I", len(body)) + b"iTXt" + body + struct.pack(">I", crc)
    iend = src.rindex(b"IEND") - 4
    with pytest.raises(InvalidRequest, match="inflates"):
        read_png_text(src[:iend] + chunk + src[iend:])
