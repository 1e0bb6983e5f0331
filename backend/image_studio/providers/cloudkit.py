"""Small helpers shared by the task-style cloud adapters (Runware, Leonardo): input images in
the formats an API accepts, size checks that name the field at fault, mapping a provider's
parameter names back to ours, a cancel-aware wait for one long call, and a health probe that
never raises.

Everything here works on bytes and plain values; the HTTP calls stay in the adapters (so that
they use the shared ``httpx.AsyncClient`` and respx sees them).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field

from ..config import BackendConfig
from ..errors import ImageStudioError, InvalidRequest
from ..types import HealthStatus
from .base import ImageProvider, JobContext

T = TypeVar("T")

MIME_BY_FORMAT = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
"""MIME type of each Pillow format name the cloud APIs take as input."""

EXT_BY_FORMAT = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
"""File extension of each Pillow format name (``JPEG`` -> ``jpg``)."""


class PollingSettings(BaseModel):
    """Settings every task-polling cloud adapter shares (subclassed by each). Times in seconds."""

    model_config = ConfigDict(extra="forbid")

    poll_interval: float = Field(1.0, ge=0.01, le=30, description="seconds between status polls (grows to 4x)")
    request_timeout: float = Field(30.0, gt=0, le=300, description="seconds for each short call: submits, polls, "
                                                                   "uploads, lists")
    health_timeout: float = Field(10.0, gt=0, le=60, description="seconds for the health probe")


def short_timeout(settings: PollingSettings, ctx: JobContext | None = None) -> float:
    """Seconds for one short call: ``request_timeout``, cut to what is left of the job (at least 1)."""
    if ctx is None:
        return settings.request_timeout
    return max(1.0, min(settings.request_timeout, ctx.remaining))


def image_format(data: bytes) -> str | None:
    """Pillow's format name of encoded image ``data`` (``"PNG"``, ``"JPEG"`` ...), None if not an image."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.format
    except (UnidentifiedImageError, OSError):
        return None


def mime_of(data: bytes, fallback: str | None) -> str | None:
    """The MIME type of encoded image ``data`` from its bytes (PNG/JPEG/WebP), else ``fallback``
    (a server's Content-Type, say)."""
    return MIME_BY_FORMAT.get(image_format(data) or "") or fallback


def input_image(data: bytes, *, field: str,
                allowed: tuple[str, ...] = ("PNG", "JPEG", "WEBP")) -> tuple[bytes, str, str]:
    """``data`` as ``(bytes, mime type, extension)`` in one of the ``allowed`` Pillow formats:
    kept as is when it already is one, else re-encoded as PNG (pixels unchanged).

    Raises:
        InvalidRequest: ``data`` is not a decodable image (``field`` named).
    """
    fmt = image_format(data)
    if fmt is None:
        raise InvalidRequest("not a decodable image", field=field)
    if fmt in allowed:
        return data, MIME_BY_FORMAT[fmt], EXT_BY_FORMAT[fmt]
    out = io.BytesIO()
    with Image.open(io.BytesIO(data)) as im:
        im.save(out, format="PNG")
    return out.getvalue(), MIME_BY_FORMAT["PNG"], EXT_BY_FORMAT["PNG"]


def data_uri(data: bytes, *, field: str) -> str:
    """``data:<mime>;base64,...`` of an input image (re-encoded as PNG when not PNG/JPEG/WebP).

    Raises:
        InvalidRequest: ``data`` is not an image (``field`` named).
    """
    payload, mime, _ = input_image(data, field=field)
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def decode_b64_image(text: str) -> bytes | None:
    """Bytes of base64 text or a ``data:`` URL; None when it does not decode."""
    body = text.partition(",")[2] if text.startswith("data:") else text
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return None


def check_size(width: int, height: int, *, multiple: int, lowest: int, highest: int) -> None:
    """Check a requested size (pixels) against a provider's documented limits.

    Raises:
        InvalidRequest: ``width`` or ``height`` (named) is not a multiple of ``multiple`` or
            lies outside ``lowest..highest``.
    """
    for name, value in (("width", width), ("height", height)):
        if not lowest <= value <= highest or value % multiple:
            raise InvalidRequest(f"{name} must be a multiple of {multiple} between {lowest} and {highest} "
                                 f"pixels, got {value}", field=name)


def our_field(param: str | None, names: Mapping[str, str], extra: Mapping[str, Any]) -> str | None:
    """Our request field for a provider's parameter name: ``names[param]`` (``"CFGScale"`` ->
    ``"cfg_scale"``), ``extra.<param>`` when it came from ``request.extra``, else ``param``."""
    if not param:
        return None
    if param in names:
        return names[param]
    return f"extra.{param}" if param in extra else param


async def until_canceled(ctx: JobContext, call: Awaitable[T]) -> T:
    """Await ``call`` (one long request), giving up as soon as the job is canceled.

    Raises:
        JobCanceled: ``ctx.cancel_event`` was set first (``call`` is cancelled).
        Whatever ``call`` raises.
    """
    task = asyncio.ensure_future(call)
    stop = asyncio.ensure_future(ctx.cancel_event.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not task.done():
            task.cancel()
    if not task.done() or task.cancelled():
        ctx.raise_if_canceled()
    return task.result()


async def probe(provider: ImageProvider, backend: BackendConfig | None,
                call: Callable[[], Awaitable[dict[str, Any]]]) -> HealthStatus:
    """Run a free ``call`` that returns health details; an :class:`ImageStudioError` from it
    (a missing key, a refusal, a connect error) becomes ``ok=False`` with its message.
    ``latency`` is seconds. Never raises."""
    label, started = backend.label if backend else None, time.monotonic()
    try:
        details = await call()
    except ImageStudioError as exc:
        return HealthStatus(ok=False, provider=provider.id, backend=label, latency=time.monotonic() - started,
                            message=exc.message, details={"error": type(exc).__name__})
    return HealthStatus(ok=True, provider=provider.id, backend=label, latency=time.monotonic() - started,
                        details=details)


__all__ = [
    "PollingSettings",
    "check_size",
    "data_uri",
    "decode_b64_image",
    "image_format",
    "input_image",
    "mime_of",
    "our_field",
    "probe",
    "short_timeout",
    "until_canceled",
]
