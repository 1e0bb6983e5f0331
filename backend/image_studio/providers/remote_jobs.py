"""Helpers shared by the adapters that submit a job to a cloud queue and poll it (Replicate
predictions, fal's queue): their common settings and base class (one configured model per mode),
tqdm progress read from model logs, a poll fetch that rides out a few transient failures, a
best-effort remote cancel when polling ends early, and output files fetched from URLs or
``data:`` URLs.

The HTTP calls go through the adapter's shared ``httpx.AsyncClient`` (:func:`common.download`),
so respx sees them and the orchestrator's single retry loop governs. Nothing here retries a
submit: only *reads* of a job's status are tolerated when they fail now and then, because
giving up on a paid job that is still running would make the orchestrator submit it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import httpx
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from ..config import BackendConfig
from ..errors import GenerationFailed, ProviderTimeout, ProviderUnavailable, RateLimited, Unsupported
from ..types import Capabilities, GeneratedFile, GenerationRequest, MediaKind
from .base import ImageProvider, JobContext
from .cloudkit import decode_b64_image, image_format
from .common import download, image_size, json_or_none

T = TypeVar("T")

CANCEL_TIMEOUT = 10.0
"""Seconds a best-effort remote cancel may take."""

class RemoteModelSettings(BaseModel):
    """Settings every queue-style adapter shares: which model serves which mode, inputs added
    to every job, polling and limits. Times in seconds, sizes in pixels. Subclasses set the
    model defaults."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="txt2img model")
    img2img_model: str | None = Field(None, description="model for requests with an init image; empty: no img2img")
    inpaint_model: str | None = Field(None, description="model for requests with an init image and a mask; "
                                                        "empty: no inpaint")
    video_model: str | None = Field(None, description="model for video requests (text- or image-to-video); "
                                                      "empty: no video")
    models: list[str] = Field(default_factory=list, description="more models offered in the model list")
    default_input: dict[str, Any] = Field(default_factory=dict,
                                          description="input fields added to every job (request.extra wins), "
                                                      "e.g. {\"output_format\": \"png\"}")
    poll_interval: float = Field(1.0, ge=0.01, le=30, description="seconds between status polls (grows to 4x)")
    poll_error_limit: int = Field(5, ge=1, le=100, description="status polls that may fail in a row before giving up")
    request_timeout: float = Field(30.0, gt=0, le=300, description="seconds for each call but the downloads")
    health_timeout: float = Field(10.0, gt=0, le=60, description="seconds for the health probe")
    max_size: int = Field(2048, ge=64, le=16384, description="largest width or height, pixels")
    max_n: int = Field(4, ge=1, le=64, description="largest number of outputs per job")
    negative_prompt: bool = Field(False, description="the configured models take a negative prompt")


class RemoteModelProvider(ImageProvider):
    """Base of the queue-style adapters: capabilities from :class:`RemoteModelSettings`, the
    model for a request, the configured model list and timed HTTP calls on the shared client.
    Subclasses set ``service`` (for messages) and ``async_only``."""

    service: ClassVar[str] = ""
    async_only: ClassVar[bool] = False

    @property
    def capabilities(self) -> Capabilities:
        """Image (and video with a ``video_model``); img2img/inpaint where a model is set;
        sizes and ``n`` from the settings; resumable (a remembered job id is polled again)."""
        s = self.settings
        assert isinstance(s, RemoteModelSettings)
        media = [MediaKind.image] + ([MediaKind.video] if s.video_model else [])
        return Capabilities(media=media, txt2img=True, img2img=bool(s.img2img_model), inpaint=bool(s.inpaint_model),
                            video=bool(s.video_model), max_width=s.max_size, max_height=s.max_size, max_n=s.max_n,
                            negative_prompt=s.negative_prompt, seed=True, async_only=self.async_only, resumable=True)

    def _timeout(self, ctx: JobContext | None, seconds: float | None = None) -> float:
        """``seconds`` (default ``request_timeout``) bounded by what is left of the job, >= 1 s."""
        s = self.settings
        assert isinstance(s, RemoteModelSettings)
        limit = seconds or s.request_timeout
        return max(1.0, min(limit, ctx.remaining)) if ctx is not None else limit

    async def _call(self, method: str, backend: BackendConfig | None, url: str, *, headers: dict[str, str],
                    timeout: float | httpx.Timeout, **kw: Any) -> httpx.Response:
        """One request on the shared client; transport failures become ProviderUnavailable/Timeout."""
        async with self.transport_errors(backend):
            return await self.http.request(method, url, headers=headers, timeout=timeout, **kw)

    def _object(self, resp: httpx.Response, backend: BackendConfig | None, *, what: str,
                key: str | None = None) -> dict[str, Any]:
        """The JSON object of a 2xx answer (with ``key`` set, when given).

        Raises:
            GenerationFailed: the body is not such an object.
        """
        body = json_or_none(resp)
        if not isinstance(body, dict) or (key is not None and not body.get(key)):
            missing = f" with {key!r}" if key else ""
            raise GenerationFailed(f"{what}: the answer is not a JSON object{missing}", **self.error_kwargs(backend))
        return body

    def _model_for(self, request: GenerationRequest) -> tuple[str, str]:
        """``(model, field to blame if it is malformed)`` for ``request``: ``request.model``, else
        the video, inpaint, img2img or txt2img model of the settings.

        Raises:
            Unsupported: no model is configured for the request's mode (its field named).
        """
        s = self.settings
        assert isinstance(s, RemoteModelSettings)
        if request.model:
            return request.model, "model"
        if request.media is MediaKind.video:
            name, setting, field = s.video_model, "video_model", "media"
        elif request.mask is not None:
            name, setting, field = s.inpaint_model, "inpaint_model", "mask"
        elif request.init_image is not None:
            name, setting, field = s.img2img_model, "img2img_model", "init_image"
        else:
            name, setting, field = s.model, "model", "prompt"
        if not name:
            raise Unsupported(f"no {setting} configured for {self.service}", provider=self.id, field=field)
        return name, f"providers.{self.id}.settings.{setting}"

    def _configured(self) -> dict[str, str]:
        """``{model: role}`` of the configured models, in settings order, without repeats."""
        s = self.settings
        assert isinstance(s, RemoteModelSettings)
        roles = [(s.model, "txt2img"), (s.img2img_model, "img2img"), (s.inpaint_model, "inpaint"),
                 (s.video_model, "video"), *((m, "listed") for m in s.models)]
        out: dict[str, str] = {}
        for name, role in roles:
            if name and name not in out:
                out[name] = role
        return out


# A tqdm bar as diffusers and most Cog/fal models print it:
# " 45%|████▌     | 9/20 [00:01<00:01,  8.31it/s]"
_TQDM = re.compile(r"(\d{1,3})%\|[^|\n]*\|\s*(\d+)/(\d+)")
_SEED = re.compile(r"(?i)\b(?:using )?seed\s*[:=]\s*(\d{1,20})\b")


def tqdm_progress(text: str | None) -> tuple[int, int] | None:
    """``(current, total)`` steps of the last tqdm bar in log ``text``, or None without one.

    A bar looks like ``" 45%|####5     | 9/20 [00:01<00:01, 8.31it/s]"``; Replicate documents
    reading progress this way (its Python client parses the same bars from ``logs``).
    """
    for _, current, total in reversed(_TQDM.findall(text or "")):
        cur, tot = int(current), int(total)
        if 0 < tot and cur <= tot:
            return cur, tot
    return None


def seed_from_logs(text: str | None) -> int | None:
    """The seed a model printed (``"Using seed: 1234"``), or None."""
    found = _SEED.findall(text or "")
    return int(found[-1]) if found else None


def tolerant(fetch: Callable[[], Awaitable[T]], *, limit: int, logger: logging.Logger,
             what: str) -> Callable[[], Awaitable[T | None]]:
    """Wrap a status ``fetch`` so that up to ``limit - 1`` failures in a row (connect errors,
    5xx, timeouts, 429) return None ("no news, poll again") instead of ending the job.

    Raises (from the wrapped call):
        ProviderUnavailable, ProviderTimeout, RateLimited: the ``limit``-th failure in a row.
        Any other error of ``fetch`` at once (401, 404 ...).
    """
    failures = 0

    async def wrapped() -> T | None:
        nonlocal failures
        try:
            result = await fetch()
        except (ProviderUnavailable, ProviderTimeout, RateLimited) as exc:
            failures += 1
            if failures >= limit:
                raise
            logger.warning("%s failed (%d of %d in a row), polling on: %s", what, failures, limit, exc.message)
            return None
        failures = 0
        return result

    return wrapped


@contextlib.asynccontextmanager
async def cancel_remote_on_error(provider: ImageProvider, ctx: JobContext) -> AsyncIterator[None]:
    """Around a poll loop: when it ends with an error (JobCanceled, the attempt's time out,
    status reads failing), ask the provider to stop the remote job (``provider.cancel(ctx)``,
    at most :data:`CANCEL_TIMEOUT` s, failures logged) before the error goes on, so that an
    abandoned job is not left running and billed. (The orchestrator may send its own cancel
    too: both providers' cancel endpoints are idempotent.)"""
    try:
        yield
    except Exception:
        try:
            await asyncio.wait_for(provider.cancel(ctx), timeout=CANCEL_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - best effort: the original error matters
            ctx.logger.warning("could not cancel remote job %s: %r", ctx.provider_job_id, exc)
        raise


def _data_url(url: str) -> tuple[bytes, str | None] | None:
    mime = url[5:].partition(",")[0].split(";")[0] or None
    data = decode_b64_image(url)
    return (data, mime) if data is not None else None


async def fetch_output(provider: ImageProvider, backend: BackendConfig | None, ctx: JobContext, url: str, *,
                       headers: dict[str, str] | None = None) -> tuple[bytes, str | None]:
    """``(bytes, mime type or None)`` of one output: a ``data:`` URL decoded, an http(s) URL
    downloaded at once with the shared client (:func:`common.download`, bounded by
    ``ctx.remaining``; ``headers`` only where the host needs them).

    Raises:
        GenerationFailed: a ``data:`` URL that does not decode.
        ProviderUnavailable, ProviderTimeout, ProviderError: the download failed.
    """
    if url.startswith("data:"):
        decoded = _data_url(url)
        if decoded is None:
            raise GenerationFailed("an output data: URL does not decode", **provider.error_kwargs(backend))
        return decoded
    return await download(provider, backend, url, ctx=ctx, headers=headers)


_GENERIC = (None, "", "application/octet-stream", "binary/octet-stream")


def _sniff_mime(data: bytes, mime: str | None, hint: str | None, url: str) -> str | None:
    if mime not in _GENERIC:
        return mime
    if hint not in _GENERIC:
        return hint
    fmt = image_format(data)
    if fmt:
        return Image.MIME.get(fmt, f"image/{fmt.lower()}")
    return mimetypes.guess_type(url.split("?")[0])[0] if not url.startswith("data:") else None


def output_file(data: bytes, mime: str | None, *, url: str, index: int, seed: int | None = None,
                parameters: dict[str, Any] | None = None, hint: str | None = None) -> GeneratedFile | None:
    """A :class:`GeneratedFile` for one fetched output, or None when it is neither an image
    nor a video (a text or JSON output of a model). The MIME type is the server's, else the
    API's ``hint`` (fal's ``content_type``), else sniffed from the bytes, else guessed from the
    URL; width and height (pixels) are read from image headers."""
    mime = _sniff_mime(data, mime, hint, url)
    if not mime or not mime.startswith(("image/", "video/")):
        return None
    media = MediaKind.video if mime.startswith("video/") else MediaKind.image
    width, height = image_size(data) if media is MediaKind.image else (None, None)
    ext = (mimetypes.guess_extension(mime) or ".bin").lstrip(".")
    return GeneratedFile(data=data, mime_type=mime, filename=f"{index:05d}.{ext}", media=media,
                         width=width, height=height, seed=seed, parameters=dict(parameters or {}))


def public_input(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without inline image data (``data:`` URLs), for stored parameters."""
    return {k: ("<data url>" if isinstance(v, str) and v.startswith("data:") else v) for k, v in values.items()}


__all__ = [
    "CANCEL_TIMEOUT",
    "RemoteModelProvider",
    "RemoteModelSettings",
    "cancel_remote_on_error",
    "fetch_output",
    "output_file",
    "public_input",
    "seed_from_logs",
    "tolerant",
    "tqdm_progress",
]
