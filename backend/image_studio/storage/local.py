"""Assets on local disk (the default store), content-addressed under one root directory.

Layout under ``root``::

    <provider>/<sha256[:2]>/<sha256>.<ext>     the file (PNG with parameters embedded ...)
    <provider>/<sha256[:2]>/<sha256>.json      sidecar: {"format", "sha256", "assets": {id: Asset}}
    thumbnails/<sha256[:2]>/<sha256>.webp      thumbnail, shared by equal bytes of any provider

Every write goes to a temporary file in the target directory (``.<name>.<random>.tmp``),
is flushed (and fsynced unless ``fsync=False``), then renamed over the target with
:func:`os.replace`, so a reader never sees half a file. The file and its thumbnail are
written before the sidecar. Sidecar updates for one hash are serialised by an in-process
lock; several processes sharing one root may race on a sidecar (the last write wins), which
loses at most a sidecar entry, never a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import tempfile
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiofiles

from ..errors import InvalidRequest, NotFound
from ..types import Asset, GeneratedFile, GenerationRequest, MediaKind
from .base import AssetStore, AssetStream
from .prepare import PreparedFile, prepare_file
from .thumbnails import image_size, make_thumbnail, video_poster

log = logging.getLogger("image_studio.storage")

THUMBNAIL_DIR = "thumbnails"
SIDECAR_FORMAT = "image_studio.sidecar/1"
_PROVIDER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def atomic_write(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and
    :func:`os.replace`; the temporary file is removed if anything fails. Creates parent
    directories. Blocking: call it in a thread."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if fsync:
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class LocalFileStream(AssetStream):
    """Bytes ``[start, end)`` of a local file, read with aiofiles."""

    def __init__(self, path: Path | None, *, chunk_size: int, start: int, end: int | None) -> None:
        self.path = path
        self.chunk_size = chunk_size
        self.start = start
        self._end = end
        self.size = -1
        self.end = -1

    async def prepare(self) -> "LocalFileStream":
        if self.size >= 0:
            return self
        if self.chunk_size < 1:
            raise InvalidRequest("chunk_size must be at least 1 byte", field="chunk_size")
        if self.path is None:
            raise NotFound("asset file is missing", field="path")
        try:
            size = (await asyncio.to_thread(self.path.stat)).st_size
        except FileNotFoundError:
            raise NotFound(f"asset file {self.path.name} is missing", field="path") from None
        if not 0 <= self.start <= size:
            raise InvalidRequest(f"start {self.start} is outside the file (0..{size} bytes)", field="start")
        end = size if self._end is None else min(self._end, size)
        if end < self.start:
            raise InvalidRequest(f"end {self._end} is before start {self.start}", field="end")
        self.size, self.end = size, end
        return self

    async def chunks(self) -> AsyncIterator[bytes]:
        await self.prepare()
        remaining = self.length
        if remaining == 0:
            return
        assert self.path is not None
        async with aiofiles.open(self.path, "rb") as fh:
            await fh.seek(self.start)
            while remaining > 0:
                chunk = await fh.read(min(self.chunk_size, remaining))
                if not chunk:  # the file shrank under us; stop rather than spin
                    break
                remaining -= len(chunk)
                yield chunk


class LocalAssetStore(AssetStore):
    """Content-addressed assets under ``root`` on local disk.

    Args:
        root: the directory (created on first save).
        fsync: fsync files and directories after writing (durable across power loss);
            False is faster for tests and scratch stores.
        ffmpeg_timeout: seconds allowed for ffmpeg to extract a video poster.
    """

    def __init__(self, root: Path, *, fsync: bool = True, ffmpeg_timeout: float = 30.0) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self.ffmpeg_timeout = ffmpeg_timeout
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    # --- paths ------------------------------------------------------------------------

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    def _resolve(self, rel: str, field: str = "path") -> Path:
        """``root / rel``, refusing absolute paths and ``..`` escapes."""
        p = Path(rel)
        if p.is_absolute() or ".." in p.parts or not rel:
            raise InvalidRequest(f"asset path {rel!r} is not inside the store", field=field)
        return self.root / p

    @staticmethod
    def relative_paths(provider: str, sha: str, ext: str) -> tuple[str, str, str]:
        """``(file, sidecar, thumbnail)`` paths relative to the root for one hash."""
        base = f"{provider}/{sha[:2]}/{sha}"
        return f"{base}.{ext}", f"{base}.json", f"{THUMBNAIL_DIR}/{sha[:2]}/{sha}.webp"

    def _sidecar_path(self, asset: Asset) -> Path:
        return self._resolve(asset.path).with_suffix(".json")

    def local_path(self, asset: Asset) -> Path | None:
        """The asset's file under the root, or None when it does not exist."""
        path = self._resolve(asset.path)
        return path if path.is_file() else None

    def thumbnail_local_path(self, asset: Asset) -> Path | None:
        """The asset's thumbnail under the root, or None when it has none."""
        if not asset.thumbnail_path:
            return None
        path = self._resolve(asset.thumbnail_path, "thumbnail_path")
        return path if path.is_file() else None

    # --- save -------------------------------------------------------------------------

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
        """Store ``file`` (see :meth:`AssetStore.save`). CPU work and writes run in threads.

        Raises:
            InvalidRequest: unknown or undecodable bytes (``field="data"``), or ``provider``
                not a safe directory name (letters, digits, ``._-``; not ``thumbnails``).
        """
        if not _PROVIDER_RE.match(provider) or provider == THUMBNAIL_DIR:
            raise InvalidRequest(f"provider id {provider!r} cannot name a storage directory", field="provider")
        prepared = await asyncio.to_thread(
            prepare_file, file, request=request, parameters=parameters, provider=provider, model=model
        )
        rel, rel_sidecar, rel_thumb = self.relative_paths(provider, prepared.sha256, prepared.ext)
        async with self._lock(prepared.sha256):
            await asyncio.to_thread(self._write_content, prepared, rel, rel_thumb)
            width, height, has_thumb = await self._ensure_poster(prepared, rel, rel_thumb)
            asset = Asset(
                id=asset_id, job_id=job_id, owner=owner, provider=provider, backend=backend,
                model=model if model is not None else prepared.parameters.get("model"),
                media=prepared.media, mime_type=prepared.sniffed.mime, width=width, height=height,
                size_bytes=len(prepared.data), sha256=prepared.sha256, path=rel,
                thumbnail_path=rel_thumb if has_thumb else None,
                prompt=request.prompt if request is not None else prepared.parameters.get("prompt"),
                negative_prompt=(request.negative_prompt if request is not None
                                 else prepared.parameters.get("negative_prompt")),
                seed=prepared.parameters.get("seed"), parameters=prepared.parameters,
            )
            await asyncio.to_thread(self._update_sidecar, self.root / rel_sidecar, prepared.sha256, asset, None)
        if file.mime_type and file.mime_type.split(";")[0].strip().lower() != prepared.sniffed.mime:
            log.info("asset %s declared %s but is %s; stored as %s", asset_id, file.mime_type,
                     prepared.sniffed.mime, prepared.sniffed.mime)
        return asset

    def _write_content(self, prepared: PreparedFile, rel: str, rel_thumb: str) -> None:
        path = self.root / rel
        try:
            same = path.stat().st_size == len(prepared.data)
        except FileNotFoundError:
            same = False
        if not same:  # content-addressed: equal bytes are already there
            atomic_write(path, prepared.data, fsync=self.fsync)
        thumb_path = self.root / rel_thumb
        if prepared.thumbnail is not None and not thumb_path.is_file():
            atomic_write(thumb_path, prepared.thumbnail.data, fsync=self.fsync)

    async def _ensure_poster(self, prepared: PreparedFile, rel: str, rel_thumb: str) -> tuple[int | None, int | None, bool]:
        """(width, height, has thumbnail) after making a video poster where ffmpeg allows."""
        thumb_path = self.root / rel_thumb
        has_thumb = await asyncio.to_thread(thumb_path.is_file)
        if has_thumb or prepared.sniffed.media is not MediaKind.video:
            return prepared.width, prepared.height, has_thumb
        frame = await video_poster(self.root / rel, timeout=self.ffmpeg_timeout)
        if frame is None:
            return prepared.width, prepared.height, False
        try:
            thumb = await asyncio.to_thread(make_thumbnail, frame)
        except InvalidRequest as exc:
            log.warning("video poster of %s unreadable: %s", rel, exc)
            return prepared.width, prepared.height, False
        await asyncio.to_thread(atomic_write, thumb_path, thumb.data, fsync=self.fsync)
        width, height = await asyncio.to_thread(image_size, frame)
        return prepared.width or width, prepared.height or height, True

    # --- sidecar ----------------------------------------------------------------------

    def _load_sidecar(self, path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("sidecar %s unreadable (%s); rewriting it", path, exc)
            return None
        return data if isinstance(data, dict) and isinstance(data.get("assets"), dict) else None

    def _update_sidecar(self, path: Path, sha: str, add: Asset | None, remove: str | None) -> None:
        data = self._load_sidecar(path) or {"format": SIDECAR_FORMAT, "sha256": sha, "assets": {}}
        if add is not None:
            data["assets"][add.id] = add.model_dump(mode="json")
        if remove is not None:
            if data["assets"].pop(remove, None) is None:
                return
        body = json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
        atomic_write(path, body, fsync=self.fsync)

    async def read_sidecar(self, asset: Asset) -> dict[str, Any]:
        """The asset's sidecar record (every Asset field and the full parameters).

        Raises:
            NotFound: no sidecar, or it does not list ``asset.id`` (``field="id"``).
        """
        data = await asyncio.to_thread(self._load_sidecar, self._sidecar_path(asset))
        if data is None:
            raise NotFound(f"no sidecar for asset {asset.id}", field="id")
        record = data["assets"].get(asset.id)
        if record is None:
            raise NotFound(f"sidecar of {asset.sha256[:12]} does not list asset {asset.id}", field="id")
        return record

    # --- read and delete --------------------------------------------------------------

    def open(self, asset: Asset, *, chunk_size: int = 65536, start: int = 0, end: int | None = None) -> LocalFileStream:
        """Stream bytes ``[start, end)`` of the file (see :meth:`AssetStore.open`)."""
        return LocalFileStream(self._resolve(asset.path), chunk_size=chunk_size, start=start, end=end)

    async def read_thumbnail(self, asset: Asset) -> bytes | None:
        """The WebP thumbnail's bytes, or None when the asset has none on disk."""
        path = self.thumbnail_local_path(asset)
        if path is None:
            return None
        try:
            async with aiofiles.open(path, "rb") as fh:
                return await fh.read()
        except FileNotFoundError:
            return None

    async def delete(self, asset: Asset, *, last_reference: bool = True) -> None:
        """Remove the asset (see :meth:`AssetStore.delete`); missing files are ignored."""
        async with self._lock(asset.sha256):
            if last_reference:
                await asyncio.to_thread(self._delete_files, asset)
            else:
                await asyncio.to_thread(self._update_sidecar, self._sidecar_path(asset), asset.sha256, None, asset.id)

    def _delete_files(self, asset: Asset) -> None:
        path = self._resolve(asset.path)
        for p in (path, path.with_suffix(".json")):
            p.unlink(missing_ok=True)
        if asset.thumbnail_path and not self._other_copies(asset.sha256):
            self._resolve(asset.thumbnail_path, "thumbnail_path").unlink(missing_ok=True)

    def _other_copies(self, sha: str) -> bool:
        """Whether any provider directory still holds a file with this hash."""
        if not self.root.is_dir():
            return False
        for provider_dir in self.root.iterdir():
            if provider_dir.name == THUMBNAIL_DIR or not provider_dir.is_dir():
                continue
            for p in (provider_dir / sha[:2]).glob(f"{sha}.*"):
                if p.suffix not in (".json", ".tmp"):
                    return True
        return False


__all__ = ["LocalAssetStore", "LocalFileStream", "atomic_write"]
