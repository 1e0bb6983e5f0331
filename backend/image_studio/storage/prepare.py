"""The CPU part of saving an asset, shared by every store: sniff, merge the parameters, embed
them into PNGs, hash, and make the thumbnail.

:func:`prepare_file` is synchronous and CPU-bound (hashing, Pillow, chunk splicing): stores
call it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import PurePath
from typing import Any

from ..types import GeneratedFile, GenerationRequest, MediaKind
from . import mime
from .metadata import build_infotext, embed_png_text
from .thumbnails import Thumbnail, image_size, make_thumbnail

INFOTEXT_KEY = "parameters"
"""PNG text keyword of the Automatic1111 infotext."""
JSON_KEY = "image_studio"
"""PNG iTXt keyword of the JSON parameters."""
EMBED_FORMAT = "image_studio/1"
"""``format`` field of the embedded JSON."""

# Never embedded into files (privacy, and so that equal outputs hash equal): who asked,
# which job, and which server ran it.
_PRIVATE_KEYS = {"owner", "job_id", "asset_id", "backend", "created_at", "api_key", "user"}


@dataclass(frozen=True)
class PreparedFile:
    """A file ready to write.

    ``data`` the bytes to store (parameters embedded for PNG); ``sha256`` their hex digest;
    ``width``/``height`` pixels or None (video without a poster); ``parameters`` the full,
    JSON-clean parameters; ``thumbnail`` None for videos.
    """

    data: bytes
    sniffed: mime.Sniffed
    media: MediaKind
    sha256: str
    width: int | None
    height: int | None
    parameters: dict[str, Any]
    thumbnail: Thumbnail | None

    @property
    def ext(self) -> str:
        return self.sniffed.ext


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, PurePath):
        return str(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return str(value)


def json_clean(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as plain JSON types: bytes become ``"<N bytes>"``, datetimes ISO text,
    enums their value, unknown objects their ``str``."""
    return json.loads(json.dumps(data, default=_json_default))


def merge_parameters(
    file: GeneratedFile,
    request: GenerationRequest | None,
    parameters: dict[str, Any],
    *,
    provider: str,
    model: str | None,
    width: int | None,
    height: int | None,
) -> dict[str, Any]:
    """The asset's full parameters: ``request.summary()``, then ``parameters``, then
    ``file.parameters``; ``provider``, ``model``, the real ``seed`` (``file.seed`` first; a
    negative or missing seed dropped) and the real pixel size set on top."""
    merged: dict[str, Any] = dict(request.summary()) if request is not None else {}
    merged.update(parameters)
    merged.update(file.parameters)
    merged["provider"] = provider
    if model is not None:
        merged["model"] = model
    seed = file.seed if file.seed is not None else merged.get("seed")
    if isinstance(seed, int) and seed >= 0:
        merged["seed"] = seed
    else:
        merged.pop("seed", None)
    if width and height:
        merged["width"], merged["height"] = width, height
    return json_clean(merged)


def _embedded(params: dict[str, Any]) -> dict[str, str]:
    public = {k: v for k, v in params.items() if k not in _PRIVATE_KEYS}
    body = json.dumps({"format": EMBED_FORMAT, **public}, ensure_ascii=False, sort_keys=True)
    return {INFOTEXT_KEY: build_infotext({}, public), JSON_KEY: body}


def _thumbnail_pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="image-studio-thumb")
    return _POOL


_POOL: ThreadPoolExecutor | None = None


def prepare_file(
    file: GeneratedFile,
    *,
    request: GenerationRequest | None,
    parameters: dict[str, Any],
    provider: str,
    model: str | None,
) -> PreparedFile:
    """Sniff, merge parameters, embed (PNG), hash and thumbnail one generated file.

    The thumbnail is decoded from the original bytes in a worker thread while this thread
    splices the text chunks and hashes (Pillow, zlib and hashlib release the GIL), which is
    safe because embedding never touches the pixels.

    Raises:
        InvalidRequest: unknown bytes, or an image Pillow cannot read (``field="data"``).
    """
    sniffed = mime.sniff(file.data)
    media = sniffed.media or file.media
    width, height = file.width, file.height
    thumb_job: Future[Thumbnail] | None = None
    if sniffed.media is not MediaKind.video:
        width, height = image_size(file.data)
        thumb_job = _thumbnail_pool().submit(make_thumbnail, file.data)
    try:
        params = merge_parameters(file, request, parameters, provider=provider, model=model, width=width, height=height)
        data = file.data
        if sniffed is mime.PNG:
            data = embed_png_text(data, _embedded(params), itxt={JSON_KEY})
        sha = hashlib.sha256(data).hexdigest()
    finally:
        thumb = thumb_job.result() if thumb_job is not None else None  # raises InvalidRequest
    return PreparedFile(data, sniffed, media, sha, width, height, params, thumb)


__all__ = ["EMBED_FORMAT", "INFOTEXT_KEY", "JSON_KEY", "PreparedFile", "json_clean", "merge_parameters", "prepare_file"]
