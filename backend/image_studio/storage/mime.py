"""MIME type sniffing from magic bytes, for the files providers hand back.

A provider's declared ``mime_type`` is a hint only: the bytes decide. The signatures follow
the WHATWG MIME Sniffing Standard (https://mimesniff.spec.whatwg.org/, section 6.1 "Matching
an image type pattern" and 6.2 "Matching an audio or video type pattern", including its
"signature for MP4" and "signature for WebM" algorithms), with ISO/IEC 14496-12 for the
``ftyp`` box brands (``qt  `` is QuickTime, ``avif``/``avis`` AVIF, the rest MP4) and the
EBML specification (RFC 8794) for the WebM/Matroska header.

Known formats: PNG, JPEG, WebP, GIF, AVIF, MP4, QuickTime MOV, WebM, Matroska.
"""

from __future__ import annotations

from typing import NamedTuple

from ..errors import InvalidRequest
from ..types import MediaKind


class Sniffed(NamedTuple):
    """What the bytes are.

    ``mime`` the MIME type; ``ext`` the file extension without dot; ``media`` the media kind,
    or None for formats that may hold either a still image or an animation (GIF, WebP), where
    the provider's declared media kind is kept.
    """

    mime: str
    ext: str
    media: MediaKind | None


PNG = Sniffed("image/png", "png", MediaKind.image)
JPEG = Sniffed("image/jpeg", "jpg", MediaKind.image)
GIF = Sniffed("image/gif", "gif", None)
WEBP = Sniffed("image/webp", "webp", None)
AVIF = Sniffed("image/avif", "avif", MediaKind.image)
MP4 = Sniffed("video/mp4", "mp4", MediaKind.video)
MOV = Sniffed("video/quicktime", "mov", MediaKind.video)
WEBM = Sniffed("video/webm", "webm", MediaKind.video)
MKV = Sniffed("video/x-matroska", "mkv", MediaKind.video)

KNOWN: tuple[Sniffed, ...] = (PNG, JPEG, GIF, WEBP, AVIF, MP4, MOV, WEBM, MKV)
"""Every format :func:`sniff` recognises."""

EXTENSIONS: dict[str, str] = {s.mime: s.ext for s in KNOWN}
"""MIME type -> file extension (without the dot)."""

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE_ID = 0x4282
_AVIF_BRANDS = {b"avif", b"avis"}
_QUICKTIME_BRANDS = {b"qt  "}


def sniff(data: bytes) -> Sniffed:
    """Identify a file from its first bytes.

    Args:
        data: the file's bytes (the first 4 KiB are enough).

    Returns:
        the :class:`Sniffed` format.

    Raises:
        InvalidRequest: the bytes match no known format (``field="data"``).
    """
    found = sniff_or_none(data)
    if found is None:
        head = data[:12].hex(" ") if data else "no bytes"
        raise InvalidRequest(f"unrecognised file format (first bytes: {head})", field="data")
    return found


def sniff_or_none(data: bytes) -> Sniffed | None:
    """Like :func:`sniff`, but None for unknown bytes."""
    if data.startswith(PNG_SIGNATURE):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if len(data) >= 14 and data[:4] == b"RIFF" and data[8:14] == b"WEBPVP":
        return WEBP
    if len(data) >= 12 and data[4:8] == b"ftyp":
        return _sniff_ftyp(data)
    if data.startswith(_EBML_MAGIC):
        doctype = ebml_doctype(data)
        if doctype == "webm":
            return WEBM
        if doctype == "matroska":
            return MKV
    return None


def _sniff_ftyp(data: bytes) -> Sniffed | None:
    """ISO base media file: the ``ftyp`` box's major and compatible brands decide."""
    box_size = int.from_bytes(data[0:4], "big")
    if box_size < 16 or box_size % 4:
        return None
    major = data[8:12]
    compatible = {data[i : i + 4] for i in range(16, min(box_size, len(data)) - 3, 4)}
    if major in _AVIF_BRANDS:
        return AVIF
    if major in _QUICKTIME_BRANDS:
        return MOV
    if major.startswith(b"mp4") or any(b.startswith(b"mp4") for b in compatible):
        return MP4
    if major in (b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"avc1", b"M4V ", b"dash", b"f4v "):
        return MP4
    return None


def _read_vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int]:
    """One EBML variable-length integer at ``pos``: (value, length in bytes).

    The count of leading zero bits of the first byte, plus one, is the length (RFC 8794 §4).
    Element IDs keep the marker bit (``keep_marker=True``); sizes drop it.
    """
    if pos >= len(data):
        raise ValueError("truncated")
    first = data[pos]
    if first == 0:
        raise ValueError("vint longer than 8 bytes")
    length = 9 - first.bit_length()
    if pos + length > len(data):
        raise ValueError("truncated")
    value = int.from_bytes(data[pos : pos + length], "big")
    if not keep_marker:
        value &= (1 << (7 * length)) - 1
    return value, length


def ebml_doctype(data: bytes) -> str | None:
    """The DocType string of an EBML header (``"webm"``, ``"matroska"``), or None.

    Walks the children of the EBML header element (ID ``1A45DFA3``) for the DocType
    element (ID ``4282``), per RFC 8794 §11.2.
    """
    try:
        pos = len(_EBML_MAGIC)
        header_size, n = _read_vint(data, pos, keep_marker=False)
        pos += n
        end = min(len(data), pos + header_size)
        while pos < end:
            element_id, n = _read_vint(data, pos, keep_marker=True)
            pos += n
            size, n = _read_vint(data, pos, keep_marker=False)
            pos += n
            if element_id == _EBML_DOCTYPE_ID:
                return data[pos : pos + size].rstrip(b"\0").decode("ascii", "replace")
            pos += size
    except ValueError:
        return None
    return None


def extension_for(mime: str) -> str:
    """File extension (no dot) for a MIME type :func:`sniff` knows.

    Raises:
        InvalidRequest: unknown MIME type (``field="mime_type"``).
    """
    try:
        return EXTENSIONS[mime]
    except KeyError:
        raise InvalidRequest(f"no file extension known for {mime!r}", field="mime_type") from None


__all__ = ["EXTENSIONS", "KNOWN", "PNG_SIGNATURE", "Sniffed", "ebml_doctype", "extension_for", "sniff", "sniff_or_none"]
