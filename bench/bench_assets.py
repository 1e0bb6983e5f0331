"""Asset storage benchmark: thumbnail, metadata embedding and save for a 1024x1024 noisy PNG.

Random pixels are the worst case for PNG decoding and WebP encoding alike. Target: the
median of "thumbnail + metadata" (what :func:`prepare_file` does: sniff, read the size,
build the infotext and JSON, splice the chunks, hash, decode and thumbnail) at most 25 ms.

Run: ``.venv/bin/python -m bench.bench_assets`` (prints a table). Timings are wall-clock
medians over ``repeat`` runs on one core; nothing here asserts a time.
"""

from __future__ import annotations

import asyncio
import io
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from image_studio.storage import LocalAssetStore
from image_studio.storage.metadata import build_infotext, embed_png_text
from image_studio.storage.prepare import prepare_file
from image_studio.storage.thumbnails import make_thumbnail
from image_studio.types import GeneratedFile, GenerationRequest

SIDE = 1024
TARGET_MS = 25.0


def noisy_png(side: int = SIDE, seed: int = 0) -> bytes:
    """A ``side`` x ``side`` RGB PNG of seeded random pixels (about 3 MB for 1024)."""
    rng = random.Random(seed)
    im = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


def _request(seed: int) -> GenerationRequest:
    return GenerationRequest(
        prompt="a red fox in the snow, golden hour, detailed fur", negative_prompt="blurry, lowres",
        width=SIDE, height=SIDE, steps=20, sampler="euler", cfg_scale=7, seed=seed, model="sdxl-base",
    )


def _stats(name: str, samples: list[float], target: float | None = None) -> dict[str, Any]:
    ms = sorted(s * 1000 for s in samples)
    median = statistics.median(ms)
    return {
        "name": name,
        "runs": len(ms),
        "median_ms": round(median, 2),
        "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 2),
        "min_ms": round(ms[0], 2),
        "target_ms": target,
        "ok": None if target is None else median <= target,
    }


def _time(fn: Callable[[int], Any], repeat: int) -> list[float]:
    fn(-1)  # warm-up (imports, codec set-up)
    out = []
    for i in range(repeat):
        t0 = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t0)
    return out


async def _time_saves(store: LocalAssetStore, png: bytes, repeat: int) -> list[float]:
    out = []
    for i in range(-1, repeat):
        t0 = time.perf_counter()
        # another seed each time: other embedded text, other bytes, so nothing dedupes
        await store.save(GeneratedFile(data=png, mime_type="image/png", seed=1000 + i), asset_id=f"a{i}",
                         provider="bench", backend=None, model=None, owner=None, job_id=None,
                         request=_request(1000 + i), parameters={})
        if i >= 0:
            out.append(time.perf_counter() - t0)
    return out


def run(repeat: int = 30) -> list[dict[str, Any]]:
    """Time each stage ``repeat`` times; one dict per row (name, runs, median/p90/min ms,
    target ms or None, ok)."""
    png = noisy_png()
    summary = _request(42).summary()
    rows = [
        _stats("thumbnail (decode, resize, WebP)", _time(lambda i: make_thumbnail(png), repeat)),
        _stats("metadata (infotext + splice)", _time(
            lambda i: embed_png_text(png, {"parameters": build_infotext(summary, {}), "image_studio": "{}"},
                                     itxt={"image_studio"}), repeat)),
        _stats("thumbnail + metadata (prepare_file)", _time(
            lambda i: prepare_file(GeneratedFile(data=png, seed=i), request=_request(i), parameters={},
                                   provider="bench", model=None), repeat), TARGET_MS),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for fsync in (False, True):
            store = LocalAssetStore(Path(tmp) / f"fsync-{fsync}", fsync=fsync)
            samples = asyncio.run(_time_saves(store, png, repeat))
            rows.append(_stats(f"save, fsync={'on' if fsync else 'off'} (end to end)", samples))
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    head = f"{'stage':40} {'runs':>4} {'median':>8} {'p90':>8} {'min':>8} {'target':>7}  ok"
    lines = [f"asset storage, {SIDE}x{SIDE} noisy PNG ({len(noisy_png()) / 1e6:.1f} MB), times in ms", head]
    for r in rows:
        target = "" if r["target_ms"] is None else f"{r['target_ms']:.0f}"
        ok = "" if r["ok"] is None else ("yes" if r["ok"] else "NO")
        lines.append(f"{r['name']:40} {r['runs']:>4} {r['median_ms']:>8.2f} {r['p90_ms']:>8.2f} "
                     f"{r['min_ms']:>8.2f} {target:>7}  {ok}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(_table(run()))
