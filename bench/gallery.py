"""Gallery benchmark: the browser UI's gallery over 10,000 assets.

Seeds a fresh data directory with ``BENCH_GALLERY_N`` (10,000) image assets through the
stores the app uses (``tests/e2e/seed_assets.py``: a dozen real 256x256 PNGs with WebP
thumbnails, shared by the rows), starts the real server (``image-studio serve`` in its own
process, with the built UI: ``IMAGE_STUDIO_WEB_DIR`` or ``make ui``'s build) and measures:

* the API: ``GET /assets?limit=100`` page by page through the cursor, to the end (ms per page;
  the medians of the first and the last ten pages show whether depth costs);
* Debian Chromium (Playwright, headless, 1280x860): from navigation to the first tile in the
  DOM and to every thumbnail in view loaded and decoded (ms, from the page's navigation start);
* scrolling: ``BENCH_GALLERY_SCREENS`` (60) screens down with ``mouse.wheel`` in 200 px steps
  every 16 ms, frame times from ``requestAnimationFrame`` deltas in the page (p50/p95/max ms,
  frames over 50 ms), long tasks (PerformanceObserver ``longtask``: count and total ms), the
  renderer's main-thread time meanwhile (CDP ``Performance.getMetrics``: task, script, layout,
  style ms), and then the DOM: elements, tiles and thumbnails in it, assets loaded, JS heap.

Run: ``.venv/bin/python -m bench.gallery`` (or ``BENCH_ONLY=gallery make bench``). Needs the
built UI and Chromium (``make ui``, ``make browser``). Prints tables; nothing asserts a time.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from image_studio.api.app import web_dir
from tests.conftest import CHROMIUM_ARGS
from tests.e2e.seed_assets import seed_assets

from .common import child_process, env_int, free_port, load_line, percentile, print_json, table

API = "/api/v1/image-studio"
KEY = "bench-gallery-admin-key"
VIEWPORT = {"width": 1280, "height": 860}
TARGETS = {"first_thumbs_ms": 1500.0, "page_p95_ms": 50.0, "tiles_in_dom": 300, "frame_p95_ms": 33.4,
           "long_tasks": 0}

# In the page: frame deltas from requestAnimationFrame and long tasks, until stopped.
RECORDER = """
(() => {
  const rec = { frames: [], longTasks: [], running: true };
  let last = performance.now();
  const tick = (t) => { rec.frames.push(t - last); last = t; if (rec.running) requestAnimationFrame(tick); };
  requestAnimationFrame((t) => { last = t; requestAnimationFrame(tick); });
  try {
    new PerformanceObserver((list) => { for (const e of list.getEntries()) rec.longTasks.push(e.duration); })
      .observe({ type: "longtask", buffered: false });
  } catch (e) { rec.noLongTask = String(e); }
  window.__galleryBench = rec;
})()
"""

# True once every thumbnail intersecting the viewport has loaded and decoded.
VISIBLE_THUMBS_LOADED = """
() => {
  const imgs = [...document.querySelectorAll('[data-asset-id] img')].filter((img) => {
    const r = img.getBoundingClientRect();
    return r.bottom > 0 && r.top < window.innerHeight;
  });
  return imgs.length > 0 && imgs.every((img) => img.complete && img.naturalWidth > 0);
}
"""


def _chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise SystemExit("Chromium is not installed: run `make browser` (apt-get install chromium)")
    return found


def _config(path: Path) -> Path:
    path.write_text(json.dumps({
        "default_provider": "placeholder",
        "providers": {"placeholder": {"type": "placeholder", "label": "Placeholder"}},
        "api_keys": [{"key": KEY, "role": "admin", "owner": "admin"}],
    }))
    return path


def api_pages(base: str, limit: int = 100) -> dict[str, Any]:
    """Walk ``GET /assets?limit=..`` through every cursor page; wall ms per request."""
    times: list[float] = []
    items = 0
    cursor: str | None = None
    with httpx.Client(base_url=base + API, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as client:
        client.get("/assets", params={"limit": 1})  # warm-up
        while True:
            params: dict[str, Any] = {"limit": limit}
            if cursor:
                params["cursor"] = cursor
            t0 = time.perf_counter()
            r = client.get("/assets", params=params)
            times.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
            page = r.json()
            items += len(page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                break
        t0 = time.perf_counter()
        client.get("/assets", params={"limit": limit, "q": "study 99"}).raise_for_status()
        search_ms = (time.perf_counter() - t0) * 1000
    return {"pages": len(times), "items": items, "first_ms": times[0], "median_ms": statistics.median(times),
            "first10_ms": statistics.median(times[:10]), "last10_ms": statistics.median(times[-10:]),
            "p95_ms": percentile(times, 0.95), "max_ms": max(times), "search_ms": search_ms}


def _metrics(cdp: Any) -> dict[str, float]:
    """Chromium's main-thread counters (``Performance.getMetrics``; durations in seconds)."""
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def browser_run(base: str, screens: int) -> dict[str, Any]:
    """Open ``#/gallery`` in Chromium, wait for the first thumbnails, scroll ``screens`` screens
    down, and return the figures (see the module docstring)."""
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    api_calls: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS)
        try:
            ctx = browser.new_context(viewport=VIEWPORT)
            ctx.set_default_timeout(60_000)
            ctx.add_init_script(f"window.localStorage.setItem('image-studio.api_key', {KEY!r});")
            page = ctx.new_page()
            page.on("request", lambda r: api_calls.append(r.url) if f"{API}/assets?" in r.url else None)
            page.goto(f"{base}/image-studio/#/gallery")
            try:
                page.wait_for_selector("[data-asset-id]")
            except Exception as e:  # noqa: BLE001 - re-raised with the likely cause
                raise SystemExit(f"no gallery tile appeared ({e.__class__.__name__}): is the UI in "
                                 f"{web_dir()} an old build? Run `make ui`.") from e
            out["first_tile_ms"] = page.evaluate("performance.now()")
            page.wait_for_function(VISIBLE_THUMBS_LOADED, polling="raf")
            out["first_thumbs_ms"] = page.evaluate("performance.now()")
            out["tiles_first"] = page.locator("[data-asset-id]").count()
            page.wait_for_timeout(500)

            cdp = ctx.new_cdp_session(page)
            cdp.send("Performance.enable")
            before = _metrics(cdp)
            page.evaluate(RECORDER)
            page.mouse.move(640, 500)
            steps = max(1, screens * VIEWPORT["height"] // 200)
            t0 = time.perf_counter()
            for _ in range(steps):
                page.mouse.wheel(0, 200)
                page.wait_for_timeout(16)
            page.wait_for_timeout(500)  # let the last frames and any page load settle
            out["scroll_s"] = time.perf_counter() - t0
            rec = page.evaluate("(() => { const r = window.__galleryBench; r.running = false; return r; })()")
            after = _metrics(cdp)
            for name in ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration"):
                out[f"main_{name}_ms"] = (after.get(name, 0.0) - before.get(name, 0.0)) * 1000
            frames = [f for f in rec["frames"] if f > 0]
            out.update(
                frames=len(frames), frame_p50_ms=percentile(frames, 0.5), frame_p95_ms=percentile(frames, 0.95),
                frame_max_ms=max(frames) if frames else float("nan"),
                frames_over_50ms=sum(1 for f in frames if f > 50),
                long_tasks=len(rec["longTasks"]), long_task_ms=sum(rec["longTasks"]),
                long_task_note=rec.get("noLongTask"),
            )
            out.update(page.evaluate("""() => ({
              scroll_y: Math.round(window.scrollY),
              dom_elements: document.getElementsByTagName('*').length,
              tiles_in_dom: document.querySelectorAll('[data-asset-id]').length,
              thumbs_in_dom: document.querySelectorAll('[data-asset-id] img').length,
              assets_loaded: Number(document.querySelector('[role=listitem]')?.getAttribute('aria-setsize') ?? 0),
              heap_mb: performance.memory ? performance.memory.usedJSHeapSize / 1048576 : null,
            })"""))
        finally:
            browser.close()
    out["asset_requests"] = len(api_calls)
    out["cursor_requests"] = sum(1 for u in api_calls if "cursor=" in u)
    return out


def run() -> dict[str, Any]:
    """Seed, serve, measure; returns every figure (also printed by :func:`main`)."""
    n = env_int("BENCH_GALLERY_N", 10_000)
    screens = env_int("BENCH_GALLERY_SCREENS", 60)
    ui = web_dir()
    if not (ui / "index.html").is_file():
        raise SystemExit(f"the UI is not built in {ui}: run `make ui` (or set IMAGE_STUDIO_WEB_DIR)")
    with tempfile.TemporaryDirectory(prefix="bench-gallery-") as tmp:
        data = Path(tmp) / "data"
        t0 = time.perf_counter()
        seed_assets(data, n)
        seed_s = time.perf_counter() - t0
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {"IMAGE_STUDIO_DATA_DIR": str(data), "IMAGE_STUDIO_CONFIG": str(_config(Path(tmp) / "config.json")),
               "IMAGE_STUDIO_SECRET_KEY": "bench-gallery-secret", "IMAGE_STUDIO_WEB_DIR": str(ui)}
        serve = [str(Path(sys.executable).with_name("image-studio")), "serve", "--port", str(port)]
        with child_process(serve, ready_url=f"{base}/image-studio/", env=env, log_path=Path(tmp) / "server.log"):
            api = api_pages(base)
            ui_figures = browser_run(base, screens)
    return {"assets": n, "seed_s": seed_s, "ui_dir": str(ui), "api": api, "ui": ui_figures, "screens": screens}


def main() -> None:
    """Run the benchmark and print its two tables (and the JSON of every figure with ``BENCH_JSON=1``)."""
    print(load_line(), flush=True)
    r = run()
    api, ui = r["api"], r["ui"]
    if os.environ.get("BENCH_JSON"):
        print_json(r)
    print(f"gallery over {r['assets']:,} assets (seeded in {r['seed_s']:.1f} s), UI from {r['ui_dir']}")
    print(table("API: GET /assets?limit=100, every page through the cursor (ms)", [
        ("what", "what"), ("pages", "pages"), ("first_ms", "first"), ("median_ms", "median"), ("p95_ms", "p95"),
        ("max_ms", "max"), ("first10_ms", "pages 1-10"), ("last10_ms", "last 10"), ("search_ms", "q= search"), ("target", "target p95"), ("ok", "ok")],
        [{"what": f"{api['items']:,} assets", **api, "target": TARGETS["page_p95_ms"],
          "ok": api["p95_ms"] <= TARGETS["page_p95_ms"]}]))
    print()
    rows = [
        {"what": "first tile in the DOM (ms from navigation)", "value": ui["first_tile_ms"]},
        {"what": "first page of thumbnails shown (ms)", "value": ui["first_thumbs_ms"],
         "target": TARGETS["first_thumbs_ms"], "ok": ui["first_thumbs_ms"] <= TARGETS["first_thumbs_ms"]},
        {"what": f"scroll: {r['screens']} screens in {ui['scroll_s']:.1f} s, frames", "value": ui["frames"]},
        {"what": "frame time p50 (ms)", "value": ui["frame_p50_ms"]},
        {"what": "frame time p95 (ms)", "value": ui["frame_p95_ms"], "target": TARGETS["frame_p95_ms"],
         "ok": ui["frame_p95_ms"] <= TARGETS["frame_p95_ms"]},
        {"what": "frame time max (ms)", "value": ui["frame_max_ms"]},
        {"what": "frames over 50 ms", "value": ui["frames_over_50ms"]},
        {"what": "long tasks (count)", "value": ui["long_tasks"], "target": TARGETS["long_tasks"],
         "ok": ui["long_tasks"] <= TARGETS["long_tasks"]},
        {"what": "long tasks (total ms)", "value": ui["long_task_ms"]},
        {"what": "main thread busy while scrolling (ms)", "value": ui["main_TaskDuration_ms"]},
        {"what": "  of which script / layout / style (ms)",
         "value": f"{ui['main_ScriptDuration_ms']:.0f} / {ui['main_LayoutDuration_ms']:.0f} / "
                  f"{ui['main_RecalcStyleDuration_ms']:.0f}"},
        {"what": f"deep (scrollY {ui['scroll_y']:,} px): assets loaded", "value": ui["assets_loaded"]},
        {"what": "  asset list requests (with a cursor)", "value": f"{ui['asset_requests']} ({ui['cursor_requests']})"},
        {"what": "  tiles in the DOM", "value": ui["tiles_in_dom"], "target": TARGETS["tiles_in_dom"],
         "ok": ui["tiles_in_dom"] <= TARGETS["tiles_in_dom"]},
        {"what": "  thumbnails in the DOM", "value": ui["thumbs_in_dom"]},
        {"what": "  DOM elements", "value": ui["dom_elements"]},
        {"what": "  JS heap used (MB)", "value": ui["heap_mb"]},
    ]
    print(table("browser: Debian Chromium, headless, 1280x860", [
        ("what", "what"), ("value", "value"), ("target", "target"), ("ok", "ok")], rows))
    if ui.get("long_task_note"):
        print(f"(long tasks not observed: {ui['long_task_note']})")


if __name__ == "__main__":
    main()
