"""Generation parameters inside PNG files: A1111-style infotext and PNG text chunks.

Wire formats followed:

* PNG: W3C "Portable Network Graphics (PNG) Specification (Third Edition)",
  https://www.w3.org/TR/png-3/ (same text as ISO/IEC 15948): the 8-byte signature; the chunk
  layout ``length (4 bytes, big-endian, data only) | type (4 ASCII letters) | data | CRC``, the
  CRC-32 of ISO 3309 / ITU-T V.42 taken over type and data (what :func:`zlib.crc32` computes);
  and the "Textual information" chunks: ``tEXt`` (Latin-1 keyword, NUL, Latin-1 text),
  ``zTXt`` (keyword, NUL, method 0, zlib data) and ``iTXt`` (keyword, NUL, compression flag,
  method, language tag, NUL, translated keyword, NUL, UTF-8 text, zlib-compressed when the
  flag is 1). Keywords are 1-79 Latin-1 characters without leading, trailing or doubled
  spaces. Text chunks may sit anywhere between IHDR and IEND; we splice ours just before IEND,
  leaving IHDR, PLTE and the IDAT stream (the pixels) byte for byte as they were.
* Infotext: the ``parameters`` text Automatic1111 writes (``create_infotext`` in its
  ``modules/processing.py``, ``quote`` in ``modules/infotext_utils.py``): the prompt, an
  optional ``Negative prompt: ...`` line, then one line of ``Key: value`` pairs joined by
  ``", "``, a value JSON-quoted when it holds a comma, a colon or a newline. Civitai, Forge,
  SD.Next and most image browsers read it.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Collection, Iterator
from typing import Any

from ..errors import InvalidRequest
from .mime import PNG_SIGNATURE

TEXT_CHUNK_TYPES = (b"tEXt", b"zTXt", b"iTXt")
MAX_TEXT_BYTES = 16 * 1024 * 1024
"""Largest decompressed text :func:`read_png_text` accepts from one chunk (bytes)."""

_MAX_CHUNK = 2**31 - 1

# Request keys that become infotext pairs, in Automatic1111's order, with its labels.
_INFOTEXT_KEYS: tuple[tuple[str, str], ...] = (
    ("steps", "Steps"),
    ("sampler", "Sampler"),
    ("scheduler", "Schedule type"),
    ("cfg_scale", "CFG scale"),
    ("seed", "Seed"),
    ("size", "Size"),
    ("model", "Model"),
    ("denoising_strength", "Denoising strength"),
)
# Keys never written as pairs: the prompts, the size parts, and request plumbing.
_SKIP_KEYS = {"size_policy", "requested_size",
    "prompt", "negative_prompt", "width", "height", "n", "media", "mode", "params", "extra",
    "init_image_bytes", "mask_bytes",
}


# --- chunk walking -------------------------------------------------------------------


def iter_chunks(png: bytes) -> Iterator[tuple[bytes, int, int]]:
    """Walk a PNG's chunks: yields ``(type, start, end)`` with ``png[start:end]`` the whole
    chunk (length, type, data and CRC). Stops after IEND.

    Raises:
        InvalidRequest: no PNG signature, a chunk runs past the end, the first chunk is not
            IHDR, or IEND is missing (``field="data"``).
    """
    if not png.startswith(PNG_SIGNATURE):
        raise InvalidRequest("not a PNG file (bad signature)", field="data")
    pos = len(PNG_SIGNATURE)
    first = True
    while pos + 12 <= len(png):
        length, ctype = struct.unpack(">I4s", png[pos : pos + 8])
        end = pos + 12 + length
        if length > _MAX_CHUNK or end > len(png):
            raise InvalidRequest(f"PNG chunk {ctype!r} at byte {pos} runs past the end of the file", field="data")
        if first and ctype != b"IHDR":
            raise InvalidRequest("PNG does not start with an IHDR chunk", field="data")
        first = False
        yield ctype, pos, end
        if ctype == b"IEND":
            return
        pos = end
    raise InvalidRequest("PNG has no IEND chunk (truncated file)", field="data")


def make_chunk(ctype: bytes, data: bytes) -> bytes:
    """One encoded chunk: length, type, data and the CRC-32 of type and data."""
    crc = zlib.crc32(data, zlib.crc32(ctype)) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", crc)


def _check_keyword(key: str) -> bytes:
    try:
        raw = key.encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidRequest(f"PNG keyword {key!r} is not Latin-1", field=f"chunks.{key}") from None
    if not 1 <= len(raw) <= 79 or key != key.strip() or "  " in key or any(c < 32 or 126 < c < 161 for c in raw):
        raise InvalidRequest(
            f"PNG keyword {key!r} must be 1-79 printable Latin-1 characters without leading, "
            "trailing or doubled spaces",
            field=f"chunks.{key}",
        )
    return raw


def text_chunk(key: str, text: str, *, itxt: bool = False, compress_min: int | None = 4096) -> bytes:
    """Encode one text chunk.

    ``tEXt`` when the text is Latin-1 without NUL and ``itxt`` is false, else ``iTXt``
    (UTF-8, zlib-compressed when its UTF-8 form is at least ``compress_min`` bytes).

    Raises:
        InvalidRequest: a bad keyword (``field="chunks.<key>"``).
    """
    kw = _check_keyword(key)
    if not itxt and "\0" not in text:
        try:
            return make_chunk(b"tEXt", kw + b"\0" + text.encode("latin-1"))
        except UnicodeEncodeError:
            pass
    body = text.encode("utf-8")
    compressed = compress_min is not None and len(body) >= compress_min
    if compressed:
        body = zlib.compress(body, 6)
    header = kw + b"\0" + bytes([1 if compressed else 0, 0]) + b"\0" + b"\0"
    return make_chunk(b"iTXt", header + body)


def _keyword_of(png: bytes, start: int, end: int) -> bytes:
    data = png[start + 8 : end - 4]
    return data.split(b"\0", 1)[0]


def embed_png_text(
    png: bytes,
    chunks: dict[str, str],
    *,
    itxt: Collection[str] = (),
    compress_min: int | None = 4096,
) -> bytes:
    """Return ``png`` with one text chunk per ``chunks`` item spliced in before IEND.

    The pixels are not re-encoded: every other chunk is copied byte for byte. Text chunks
    already in the file under one of the given keywords are dropped, so embedding twice
    gives one chunk per keyword. Keys named in ``itxt`` are always written as ``iTXt``;
    others as ``tEXt`` when Latin-1 allows (see :func:`text_chunk`).

    Args:
        png: a complete PNG file.
        chunks: keyword -> text.
        itxt: keywords to write as ``iTXt``.
        compress_min: compress ``iTXt`` text of at least this many UTF-8 bytes; None never.

    Raises:
        InvalidRequest: ``png`` is not a well-formed PNG (``field="data"``) or a keyword is
            invalid (``field="chunks.<key>"``).
    """
    new = b"".join(text_chunk(k, v, itxt=k in itxt, compress_min=compress_min) for k, v in chunks.items())
    replaced = {k.encode("latin-1", "replace") for k in chunks}
    view = memoryview(png)
    parts: list[memoryview | bytes] = []
    keep_from = 0  # start of the run of chunks kept since the last dropped one
    for ctype, start, end in iter_chunks(png):
        if ctype in TEXT_CHUNK_TYPES and _keyword_of(png, start, end) in replaced:
            parts.append(view[keep_from:start])
            keep_from = end
        elif ctype == b"IEND":
            parts += [view[keep_from:start], new, view[start:]]  # IEND and anything after it
    return b"".join(parts)


def _inflate(data: bytes, what: str) -> bytes:
    d = zlib.decompressobj()
    out = d.decompress(data, MAX_TEXT_BYTES)
    if d.unconsumed_tail:
        raise InvalidRequest(f"PNG {what} text inflates past {MAX_TEXT_BYTES} bytes", field="data")
    return out


def _decode_text_chunk(ctype: bytes, data: bytes) -> tuple[str, str]:
    key, _, rest = data.partition(b"\0")
    keyword = key.decode("latin-1")
    if ctype == b"tEXt":
        return keyword, rest.decode("latin-1")
    if ctype == b"zTXt":
        return keyword, _inflate(rest[1:], keyword).decode("latin-1")
    flag, _method = rest[0], rest[1]
    _lang, _, rest = rest[2:].partition(b"\0")
    _translated, _, text = rest.partition(b"\0")
    if flag:
        text = _inflate(text, keyword)
    return keyword, text.decode("utf-8", "replace")


def read_png_text(png: bytes) -> dict[str, str]:
    """All text chunks (``tEXt``, ``zTXt``, ``iTXt``) of a PNG as keyword -> text.

    A keyword that appears twice keeps its last text. Chunks whose CRC does not match, or
    that are malformed, are skipped (a damaged comment never hides the image).

    Raises:
        InvalidRequest: ``png`` is not a well-formed PNG, or compressed text inflates past
            :data:`MAX_TEXT_BYTES` (``field="data"``).
    """
    out: dict[str, str] = {}
    for ctype, start, end in iter_chunks(png):
        if ctype not in TEXT_CHUNK_TYPES:
            continue
        data = png[start + 8 : end - 4]
        (crc,) = struct.unpack(">I", png[end - 4 : end])
        if zlib.crc32(data, zlib.crc32(ctype)) & 0xFFFFFFFF != crc:
            continue
        try:
            key, text = _decode_text_chunk(ctype, data)
        except (IndexError, zlib.error):
            continue
        out[key] = text
    return out


# --- infotext ------------------------------------------------------------------------


def _format_value(value: Any) -> str | None:
    """A scalar as infotext shows it: ``7.0`` as ``7``; None, lists and dicts give None."""
    if value is None or isinstance(value, (dict, list, tuple, set, bytes)):
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def quote_value(text: str) -> str:
    """Automatic1111's quoting: JSON-quote a value holding ``,``, ``:`` or a newline."""
    if "," not in text and ":" not in text and "\n" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def _label(key: str) -> str:
    return key.replace("_", " ").strip().capitalize()


def build_infotext(request_summary: dict[str, Any], parameters: dict[str, Any]) -> str:
    """The Automatic1111 ``parameters`` text for one image.

    ``parameters`` (what the backend used: the real seed, the model...) override
    ``request_summary`` (:meth:`GenerationRequest.summary`). Known keys come first in
    Automatic1111's order (Steps, Sampler, Schedule type, CFG scale, Seed, Size, Model,
    Denoising strength); other scalar parameters follow as ``"Key name: value"``; lists,
    dicts, None and negative seeds are left out. Example::

        a red fox
        Negative prompt: blurry
        Steps: 20, Sampler: euler, CFG scale: 7, Seed: 42, Size: 512x512, Model: sdxl

    Returns:
        the text; never raises.
    """
    merged = {**request_summary, **parameters}
    if isinstance(merged.get("seed"), int) and merged["seed"] < 0:
        merged["seed"] = None
    if merged.get("width") and merged.get("height"):
        merged["size"] = f"{merged['width']}x{merged['height']}"
    pairs: list[tuple[str, str]] = []
    done = set(_SKIP_KEYS)
    for key, label in _INFOTEXT_KEYS:
        done.add(key)
        text = _format_value(merged.get(key))
        if text is not None:
            pairs.append((label, text))
    for key, value in merged.items():
        text = _format_value(value)
        if key in done or text is None or not str(key).strip():
            continue
        pairs.append((_label(str(key)), text))
    line = ", ".join(f"{k}: {quote_value(v)}" for k, v in pairs)
    prompt = str(merged.get("prompt") or "")
    negative = merged.get("negative_prompt")
    negative_text = f"\nNegative prompt: {negative}" if negative else ""
    return f"{prompt}{negative_text}\n{line}".strip()


__all__ = [
    "MAX_TEXT_BYTES",
    "build_infotext",
    "embed_png_text",
    "iter_chunks",
    "make_chunk",
    "quote_value",
    "read_png_text",
    "text_chunk",
]
