"""Thumbnails and image sizes with Pillow, and video posters with PyAV (or an ffmpeg executable).

Every function here is synchronous CPU work except :func:`video_poster`; callers run them in
a thread (``asyncio.to_thread``), never on the event loop.

Thumbnails are WebP, the longest side :data:`THUMBNAIL_SIDE` pixels, aspect kept, never
upscaled (a 100x50 image gives a 100x50 thumbnail). Animated GIF and WebP give their first
frame. JPEG thumbnails are decoded at reduced scale (Pillow's ``draft``) and turned upright
by their EXIF orientation.

Videos (MP4, MOV, WebM) get a poster thumbnail from their first frame, decoded with PyAV
(a dependency: its wheel carries FFmpeg's libraries), else with an ``ffmpeg`` executable on
``PATH``, and scaled like an image. When neither can decode it, the asset's thumbnail is None
and the gallery shows a generic video tile.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import shutil
from pathlib import Path
from typing import NamedTuple

from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InvalidRequest

THUMBNAIL_SIDE = 384
"""Longest side of a thumbnail, in pixels."""
THUMBNAIL_QUALITY = 80
"""WebP quality (0-100) of thumbnails."""
THUMBNAIL_METHOD = 0
"""WebP encoder effort (0 fastest .. 6 smallest). At 384 px, 0 gives files within 1% of 1's
and saves about 20% of the encoding time."""
POSTER_MAX_BYTES = 256 * 1024 * 1024
"""Largest ffmpeg output read for a poster frame (bytes)."""

log = logging.getLogger("image_studio.storage")


class Thumbnail(NamedTuple):
    """An encoded WebP thumbnail: ``data`` bytes, ``width``/``height`` in pixels."""

    data: bytes
    width: int
    height: int


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise InvalidRequest(f"image too large to decode safely: {exc}", field="data") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidRequest(f"cannot read image: {exc}", field="data") from exc


def image_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` in pixels from the image header, without decoding the pixels.

    Raises:
        InvalidRequest: Pillow cannot read the header (``field="data"``).
    """
    with _open(data) as im:
        return im.size


def thumbnail_size(width: int, height: int, side: int = THUMBNAIL_SIDE) -> tuple[int, int]:
    """The thumbnail size for a ``width`` x ``height`` image: longest side ``side``, aspect
    kept (rounded, at least 1 pixel), never larger than the image."""
    scale = min(1.0, side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _to_rgb_or_rgba(im: Image.Image) -> Image.Image:
    if im.mode in ("RGB", "RGBA"):
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        return im.point(lambda v: v / 256).convert("RGB")
    return im.convert("RGBA" if im.has_transparency_data else "RGB")


def make_thumbnail(
    data: bytes, *, side: int = THUMBNAIL_SIDE, quality: int = THUMBNAIL_QUALITY, method: int = THUMBNAIL_METHOD
) -> Thumbnail:
    """Decode an image (first frame) and encode its WebP thumbnail.

    Args:
        data: an encoded image (PNG, JPEG, WebP, GIF, AVIF).
        side: longest side of the thumbnail, pixels.
        quality: WebP quality 0-100.
        method: WebP encoder effort 0-6.

    Raises:
        InvalidRequest: the image cannot be decoded (``field="data"``).
    """
    with _open(data) as im:
        try:
            if im.format == "JPEG":
                im.draft("RGB", (side, side))
            im.seek(0)
            im.load()
            frame = ImageOps.exif_transpose(im) if im.format == "JPEG" else im
            frame = _to_rgb_or_rgba(frame)
            size = thumbnail_size(frame.width, frame.height, side)
            if size != frame.size:
                # Box-average by the integer factor first (reducing_gap=1.0), then a bilinear
                # (triangle, antialiased in Pillow when shrinking) filter for the rest: ~3 ms
                # for 1024 -> 384 against ~9 ms for Lanczos on the full image.
                frame = frame.resize(size, Image.Resampling.BILINEAR, reducing_gap=1.0)
            out = io.BytesIO()
            frame.save(out, "WEBP", quality=quality, method=method)
        except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt pixel data
            raise InvalidRequest(f"cannot decode image: {exc}", field="data") from exc
    return Thumbnail(out.getvalue(), size[0], size[1])


def ffmpeg_path() -> str | None:
    """The ``ffmpeg`` executable on PATH, or None."""
    return shutil.which("ffmpeg")


async def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()


def pyav_first_frame(path: Path) -> bytes | None:
    """The first video frame of ``path`` as PNG bytes, decoded with PyAV (FFmpeg's libraries,
    shipped inside the ``av`` wheel: https://pyav.basswood-io.com/docs/stable/); None when PyAV
    is not installed, the file has no video stream, or it does not decode."""
    try:
        import av
    except ImportError:
        return None
    try:
        with av.open(str(path)) as container:
            stream = next((s for s in container.streams if s.type == "video"), None)
            if stream is None:
                return None
            for frame in container.decode(stream):
                buf = io.BytesIO()
                frame.to_image().save(buf, "PNG")
                return buf.getvalue()
    except (av.FFmpegError, OSError, ValueError) as exc:
        log.warning("no poster for %s: %s", path, exc)
    return None


async def video_poster(path: Path, *, timeout: float = 30.0) -> bytes | None:
    """The first frame of a video file as PNG bytes: PyAV in a worker thread, else an
    ``ffmpeg`` on PATH; None when neither can, or after ``timeout`` seconds. Never raises for
    a bad video.

    The ffmpeg route runs ``ffmpeg -v error -nostdin -i <path> -frames:v 1 -f image2pipe -c:v
    png -`` (options per https://ffmpeg.org/ffmpeg.html) and kills it on timeout.
    """
    try:
        frame = await asyncio.wait_for(asyncio.to_thread(pyav_first_frame, path), timeout)
    except asyncio.TimeoutError:
        log.warning("PyAV took over %.0f s on %s; no poster", timeout, path)
        return None
    if frame is not None:
        return frame
    exe = ffmpeg_path()
    if exe is None:
        return None
    args = [exe, "-v", "error", "-nostdin", "-i", str(path), "-frames:v", "1", "-f", "image2pipe", "-c:v", "png", "-"]
    try:
        proc = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except OSError as exc:
        log.warning("ffmpeg could not start for %s: %s", path, exc)
        return None
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    except asyncio.TimeoutError:
        await _kill(proc)
        log.warning("ffmpeg took over %.0f s on %s; no poster", timeout, path)
        return None
    except asyncio.CancelledError:
        await _kill(proc)
        raise
    if proc.returncode != 0 or not stdout or len(stdout) > POSTER_MAX_BYTES:
        log.warning("ffmpeg gave no poster for %s (exit %s): %s", path, proc.returncode, stderr[-500:].decode(errors="replace"))
        return None
    return stdout


__all__ = [
    "THUMBNAIL_SIDE",
    "Thumbnail",
    "ffmpeg_path",
    "image_size",
    "make_thumbnail",
    "thumbnail_size",
    "video_poster",
]
