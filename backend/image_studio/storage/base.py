"""The asset store contract: :class:`AssetStore` and the byte stream it serves.

An asset store keeps the files jobs produce. It is content-addressed: a file lives at
``<provider>/<sha256[:2]>/<sha256>.<ext>`` (the hash of the stored bytes, after the
generation parameters were embedded), so two assets with the same bytes share one file.
Beside each file sits a JSON sidecar ``<sha256>.json`` recording every asset that refers to
it, and every image gets a WebP thumbnail at ``thumbnails/<sha256[:2]>/<sha256>.webp``.

The job and asset tables are the source of truth for which assets exist; the sidecars let
a lost database be rebuilt from the files. Stores never decide by themselves that a file
is unreferenced: the caller says so with ``delete(..., last_reference=True)``.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import Any

from ..types import Asset, GeneratedFile, GenerationRequest


class AssetStream(abc.ABC):
    """Bytes ``[start, end)`` of one stored file, read in chunks.

    Use it directly (``async for chunk in store.open(asset)``), or await it first to check
    that the file exists and the range is valid before sending any response headers::

        stream = await store.open(asset, start=100)   # raises NotFound / InvalidRequest here
        headers = {"Content-Length": str(stream.length)}
        async for chunk in stream: ...

    After it is awaited (or iteration has begun): ``size`` is the file's size, ``start`` and
    ``end`` the byte range (``end`` exclusive, clamped to ``size``), ``length`` = end - start.
    All in bytes.
    """

    size: int
    start: int
    end: int

    @property
    def length(self) -> int:
        """Bytes this stream yields in all."""
        return self.end - self.start

    @abc.abstractmethod
    async def prepare(self) -> "AssetStream":
        """Open and check; idempotent. Raises NotFound or InvalidRequest."""

    @abc.abstractmethod
    def chunks(self) -> AsyncIterator[bytes]:
        """The bytes, in chunks of at most the stream's chunk size."""

    def __await__(self) -> Generator[Any, None, "AssetStream"]:
        return self.prepare().__await__()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.chunks()


class AssetStore(abc.ABC):
    """Where generated files live. The Studio calls exactly these methods.

    Paths in :class:`Asset` (``path``, ``thumbnail_path``) are relative to the store.
    """

    @abc.abstractmethod
    async def save(
        self,
        file: GeneratedFile,
        *,
        asset_id: str,
        provider: str,
        backend: str | None,
        model: str | None,
        owner: str | None,
        job_id: str | None,
        request: GenerationRequest | None,
        parameters: dict[str, Any],
    ) -> Asset:
        """Store one generated file and return its :class:`Asset`.

        The format is sniffed from the bytes (a wrong ``file.mime_type`` loses); PNGs get
        the generation parameters embedded as text chunks (pixels untouched); images get a
        thumbnail. The stored parameters are ``request.summary()`` updated with
        ``parameters`` and then with ``file.parameters`` (what the backend really used).

        Raises:
            InvalidRequest: unknown or undecodable bytes (``field="data"``), or a provider id
                that cannot be a directory name (``field="provider"``).
        """

    @abc.abstractmethod
    def open(self, asset: Asset, *, chunk_size: int = 65536, start: int = 0, end: int | None = None) -> AssetStream:
        """Stream bytes ``[start, end)`` of the asset's file (``end`` exclusive; None: to the
        end of the file) in chunks of ``chunk_size`` bytes, for downloads and video seeking.
        An HTTP ``Range: bytes=a-b`` is ``start=a, end=b + 1``.

        The returned stream is both awaitable and async-iterable (see :class:`AssetStream`);
        errors surface when it is awaited or first iterated.

        Raises:
            NotFound: the file is gone.
            InvalidRequest: ``start`` or ``end`` outside the file, or ``chunk_size`` < 1
                (the field named).
        """

    @abc.abstractmethod
    def local_path(self, asset: Asset) -> Path | None:
        """The file on local disk, or None when it is not there (or the store is remote)."""

    @abc.abstractmethod
    def thumbnail_local_path(self, asset: Asset) -> Path | None:
        """The thumbnail on local disk, or None when there is none (or the store is remote)."""

    @abc.abstractmethod
    async def read_thumbnail(self, asset: Asset) -> bytes | None:
        """The WebP thumbnail bytes, or None when the asset has none."""

    @abc.abstractmethod
    async def delete(self, asset: Asset, *, last_reference: bool = True) -> None:
        """Forget ``asset``. With ``last_reference`` the file, its sidecar and (when no other
        copy of the same bytes remains) its thumbnail are removed; without it only the
        asset's entry in the sidecar goes, since other assets share the bytes. Deleting
        what is already gone is not an error."""

    @abc.abstractmethod
    async def read_sidecar(self, asset: Asset) -> dict[str, Any]:
        """The asset's record from the sidecar: every :class:`Asset` field in JSON form,
        with the full ``parameters`` (``Asset.model_validate`` accepts it).

        Raises:
            NotFound: no sidecar, or the sidecar does not list this asset.
        """

    async def close(self) -> None:
        """Release resources (connections of remote stores). Local stores hold none."""
        return None


__all__ = ["AssetStore", "AssetStream"]
