"""Helpers every HTTP adapter needs: the API key, bearer headers, output downloads, image
sizes from bytes, and a cancel-aware polling loop for prediction/operation APIs.

They use the adapter's shared ``httpx.AsyncClient`` (so respx sees every call) and map
failures through :meth:`ImageProvider.transport_errors` / :meth:`ImageProvider.raise_for_status`.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
from PIL import Image, UnidentifiedImageError

from ..config import BackendConfig
from ..errors import ConfigError, ProviderTimeout
from .base import ImageProvider, JobContext

T = TypeVar("T")

DOWNLOAD_TIMEOUT = 120.0
"""Seconds one output download may take at most."""


def api_key(provider: ImageProvider, name: str = "api_key") -> str:
    """The credential ``name`` of ``provider``.

    Raises:
        ConfigError: it is missing or empty (field ``providers.<id>.credentials.<name>``).
    """
    secret = provider.config.credentials.get(name)
    value = secret.get_secret_value().strip() if secret is not None else ""
    if not value:
        raise ConfigError(f"provider {provider.id!r} needs credentials.{name}",
                          field=f"providers.{provider.id}.credentials.{name}")
    return value


def bearer(provider: ImageProvider, name: str = "api_key") -> dict[str, str]:
    """``{"Authorization": "Bearer <key>"}``. Raises ConfigError when the key is missing."""
    return {"Authorization": f"Bearer {api_key(provider, name)}"}


def image_size(data: bytes) -> tuple[int | None, int | None]:
    """``(width, height)`` in pixels from an image's header, ``(None, None)`` if not an image."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.width, im.height
    except (UnidentifiedImageError, OSError):
        return None, None


async def download(provider: ImageProvider, backend: BackendConfig | None, url: str, *,
                   ctx: JobContext | None = None, headers: dict[str, str] | None = None,
                   what: str = "download output") -> tuple[bytes, str | None]:
    """GET an output file; returns ``(bytes, content type)``. The timeout is the smaller of
    :data:`DOWNLOAD_TIMEOUT` and what is left of the job (``ctx.remaining``).

    Raises:
        ProviderUnavailable, ProviderTimeout, ProviderError: as the answer warrants.
    """
    timeout = min(DOWNLOAD_TIMEOUT, ctx.remaining) if ctx is not None else DOWNLOAD_TIMEOUT
    async with provider.transport_errors(backend):
        response = await provider.http.get(url, headers=headers, timeout=max(timeout, 1.0))
    provider.raise_for_status(response, backend, what=what)
    ctype = response.headers.get("content-type")
    return response.content, ctype.split(";")[0].strip() if ctype else None


async def poll(ctx: JobContext, fetch: Callable[[], Awaitable[T]], finished: Callable[[T], bool], *,
               interval: float, on_update: Callable[[T, int], Awaitable[None]] | None = None,
               max_interval: float | None = None) -> T:
    """Call ``fetch()`` until ``finished(result)``; returns that result.

    Sleeps ``interval`` seconds between calls, growing by half each time up to
    ``max_interval`` (default ``4 * interval``), waking at once on cancel. ``on_update(result,
    n)`` is awaited after every poll (report progress there).

    Raises:
        JobCanceled: the job was canceled (the caller's ``cancel`` stops the remote job).
        ProviderTimeout: the job's time ran out (``ctx.remaining`` reached 0).
        Whatever ``fetch`` raises.
    """
    ceiling = max_interval if max_interval is not None else interval * 4
    wait, n = interval, 0
    while True:
        ctx.raise_if_canceled()
        result = await fetch()
        n += 1
        if on_update is not None:
            await on_update(result, n)
        if finished(result):
            return result
        if ctx.remaining <= 0:
            raise ProviderTimeout(f"gave up polling after {ctx.timeout:g} s", provider=ctx.provider_id,
                                  backend=ctx.backend.label if ctx.backend else None)
        await ctx.sleep(min(wait, max(ctx.remaining, 0.0)))
        wait = min(wait * 1.5, ceiling)


def json_or_none(response: httpx.Response) -> Any:
    """The response's JSON body, or None when it has none."""
    try:
        return response.json()
    except ValueError:
        return None
