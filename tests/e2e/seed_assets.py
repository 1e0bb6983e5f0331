"""Seed a studio's data directory with many assets quickly, through the stores the app uses.

A few distinct small PNGs are stored with :class:`~image_studio.storage.LocalAssetStore`
(real files and WebP thumbnails); the ``count`` asset rows then share those files (as assets
with the same bytes do) and go into the database with :meth:`JobStore.finish_job`, one
succeeded job per chunk. Run it before the server starts on ``data_dir`` (or beside it: SQLite
in WAL mode takes a second writer).

Used by the gallery benchmark (``bench/gallery.py``) and ``tests/e2e/test_gallery_scale.py``.
"""

from __future__ import annotations

import asyncio
import colorsys
import concurrent.futures
import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

from PIL import Image, ImageDraw

from image_studio.config import Settings
from image_studio.jobs.store import JobStore, new_id
from image_studio.storage import LocalAssetStore
from image_studio.types import Asset, GeneratedFile, GenerationRequest, Job, JobStatus, MediaKind

SUBJECTS = ("red fox", "lighthouse", "mountain lake", "city at night", "owl", "sailing boat", "forest path",
            "desert dunes", "koi pond", "snowy cabin", "robot", "hot air balloon")


def seed_prompt(i: int) -> str:
    """The prompt of seeded asset ``i``: a subject and the number, e.g. ``"red fox, study 12"``."""
    return f"{SUBJECTS[i % len(SUBJECTS)]}, study {i}"


def _png(i: int, side: int) -> bytes:
    """A ``side`` x ``side`` PNG: a hue gradient and the number ``i`` (a few KB)."""
    r, g, b = (int(c * 255) for c in colorsys.hsv_to_rgb((i * 0.13) % 1.0, 0.55, 0.9))
    im = Image.new("RGB", (side, side), (r, g, b))
    draw = ImageDraw.Draw(im)
    for y in range(0, side, 8):
        shade = int(60 * y / side)
        draw.rectangle([0, y, side, y + 7], fill=(max(0, r - shade), max(0, g - shade), max(0, b - shade)))
    draw.text((side // 2 - 12, side // 2 - 6), f"#{i}", fill=(255, 255, 255))
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


async def seed_assets_async(data_dir: Path, count: int, *, owner: str = "admin", provider: str = "placeholder",
                            distinct: int = 12, side: int = 256, chunk: int = 500,
                            newest: datetime | None = None, step_seconds: float = 30.0) -> list[str]:
    """Add ``count`` image assets owned by ``owner`` to the studio in ``data_dir``.

    Asset ``i`` has prompt :func:`seed_prompt` (i), seed ``i``, model ``seed-model-<i % 3>``
    and is created ``i * step_seconds`` seconds before ``newest`` (default: now, UTC), so the
    gallery (newest first) lists them in order 0, 1, 2 ... Files: ``distinct`` PNGs of
    ``side`` x ``side`` pixels, shared round-robin.

    Returns:
        The asset ids, newest first.
    Raises:
        OSError: the data directory cannot be written.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=data_dir)
    store = JobStore(settings.resolved_database_url)
    await store.open()
    files = LocalAssetStore(data_dir / "assets", fsync=False)
    newest = newest or datetime.now(timezone.utc)
    ids: list[str] = []
    try:
        templates: list[Asset] = []
        for k in range(min(distinct, count)):
            request = GenerationRequest(prompt=seed_prompt(k), width=side, height=side, seed=k, model="seed-model-0")
            templates.append(await files.save(
                GeneratedFile(data=_png(k, side), mime_type="image/png", seed=k), asset_id=new_id(),
                provider=provider, backend=None, model=None, owner=owner, job_id=None, request=request,
                parameters={"steps": 20, "sampler": "euler", "cfg_scale": 7.0}))
        for start in range(0, count, chunk):
            job = Job(id=new_id(), owner=owner, provider=provider, status=JobStatus.running,
                      request=GenerationRequest(prompt=f"seeded batch {start // chunk}", width=side, height=side))
            await store.create_job(job)
            batch: list[Asset] = []
            for i in range(start, min(count, start + chunk)):
                t = templates[i % len(templates)]
                model = f"seed-model-{i % 3}"
                batch.append(t.model_copy(update={
                    "id": new_id(), "job_id": job.id, "prompt": seed_prompt(i), "seed": i, "model": model,
                    "created_at": newest - timedelta(seconds=i * step_seconds),
                    "parameters": {**t.parameters, "prompt": seed_prompt(i), "seed": i, "model": model},
                }))
            await store.finish_job(job.id, batch, status=JobStatus.succeeded, asset_ids=[a.id for a in batch],
                                   finished_at=datetime.now(timezone.utc))
            ids.extend(a.id for a in batch)
    finally:
        await store.close()
    return ids


def seed_assets(data_dir: Path, count: int, **kwargs: object) -> list[str]:
    """:func:`seed_assets_async` from synchronous code: on its own event loop in a worker
    thread (the caller's thread may already run one, as Playwright's sync API does)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, seed_assets_async(data_dir, count, **kwargs)).result()  # type: ignore[arg-type]


async def seed_video_async(data_dir: Path, prompt: str, *, owner: str = "admin", provider: str = "placeholder") -> Asset:
    """Store one video asset (an MP4 file head, 640x360; no poster without ffmpeg) and add its
    row; returns the asset. Same stores as :func:`seed_assets_async`."""
    from tests.storage.helpers import ftyp

    data_dir.mkdir(parents=True, exist_ok=True)
    store = JobStore(Settings(data_dir=data_dir).resolved_database_url)
    await store.open()
    files = LocalAssetStore(data_dir / "assets", fsync=False)
    try:
        job = Job(id=new_id(), owner=owner, provider=provider, status=JobStatus.running,
                  request=GenerationRequest(prompt=prompt, width=640, height=360))
        await store.create_job(job)
        asset = await files.save(
            GeneratedFile(data=ftyp(b"isom", b"isom", b"mp41") + prompt.encode(), mime_type="video/mp4",
                          media=MediaKind.video, width=640, height=360, seed=5),
            asset_id=new_id(), provider=provider, backend=None, model="seed-video", owner=owner, job_id=job.id,
            request=GenerationRequest(prompt=prompt, width=640, height=360, seed=5), parameters={"frames": 48})
        await store.finish_job(job.id, [asset], status=JobStatus.succeeded, asset_ids=[asset.id],
                               finished_at=datetime.now(timezone.utc))
    finally:
        await store.close()
    return asset


def seed_video(data_dir: Path, prompt: str, **kwargs: object) -> Asset:
    """:func:`seed_video_async` from synchronous code (see :func:`seed_assets`)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, seed_video_async(data_dir, prompt, **kwargs)).result()  # type: ignore[arg-type]
