"""Helpers for the asset store tests: image makers and a save shortcut."""

from __future__ import annotations

import io
import random
import struct

from PIL import Image

from image_studio.storage import LocalAssetStore
from image_studio.types import GeneratedFile, GenerationRequest


def encode(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **kw)
    return out.getvalue()


def noisy_png(width: int, height: int, seed: int = 1, mode: str = "RGB") -> bytes:
    """A PNG of random pixels (seeded), so that decoding differences would show."""
    rng = random.Random(seed)
    channels = len(mode)
    return encode(Image.frombytes(mode, (width, height), rng.randbytes(width * height * channels)))


def pixels(data: bytes) -> tuple[str, tuple[int, int], bytes]:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.mode, im.size, im.tobytes()


async def save(store: LocalAssetStore, data: bytes, *, asset_id: str = "a1", provider: str = "comfy",
               request: GenerationRequest | None = None, mime_type: str | None = None, **file_kw):
    return await store.save(
        GeneratedFile(data=data, mime_type=mime_type, **file_kw), asset_id=asset_id, provider=provider,
        backend="http://127.0.0.1:8188", model=None, owner="alice", job_id="job-1", request=request,
        parameters={"workflow": "txt2img"},
    )


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    """An ISO BMFF file head: an ftyp box with the given brands and an empty mdat box."""
    body = major + b"\0\0\0\0" + b"".join(compatible)
    box = struct.pack(">I", 8 + len(body)) + b"ftyp" + body
    return box + struct.pack(">I", 16) + b"mdat" + b"\0" * 8


def ebml(doctype: bytes) -> bytes:
    """An EBML (WebM/Matroska) header with the given DocType, then a Segment element start."""
    body = b"\x42\x86\x81\x01" + b"\x42\xf7\x81\x01" + b"\x42\x82" + bytes([0x80 | len(doctype)]) + doctype
    return b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(body)]) + body + b"\x18\x53\x80\x67" + b"\x01" * 8
