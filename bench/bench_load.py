"""1,000 jobs in flight against a slow ComfyUI: event-loop lag and resident memory.

The backend is the project's fake ComfyUI in its own process, at the recorded pace
(``--time-scale 1``), and every job runs a slow graph: EmptyImage -> FixtureSleepProgress
(600 steps of 1 s, a progress frame per step, no previews) -> SaveImage, so that nothing
finishes while we watch. Each job gets its own EmptyImage colour (no cached reruns). The
Studio runs in this process, with its data in a temporary directory.

Phases, each with its own lag samples (a ticker task sleeps 10 ms and records how late it
wakes) and RSS samples (``/proc/self/status`` ``VmRSS`` every 0.25 s):

* ``idle``: 2 s with the studio started and nothing queued;
* ``submit``: ``BENCH_LOAD_JOBS`` (1000) ``Studio.submit`` calls, 50 at a time;
* ``hold``: ``BENCH_LOAD_HOLD`` (10) seconds with every job queued or running;
* ``cancel``: every job canceled (50 at a time), until all are terminal.

Scenarios (``BENCH_LOAD_SCENARIOS``, default both): ``defaults`` keeps the studio's 32
workers and sets the provider's concurrency to 32 (32 prompts on ComfyUI, the rest in the
studio's queue); ``wide`` uses 256 workers and concurrency 256 (the most a backend allows).

Targets: lag p99 <= 20 ms and RSS <= 300 MB while the jobs are in flight (``hold``).

Run: ``.venv/bin/python -m bench.bench_load``. Nothing asserts a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from image_studio.config import Settings, StudioConfig
from image_studio.studio import Studio
from image_studio.types import GenerationRequest, JobStatus

from .common import LagMonitor, comfyui, env_float, env_int, ms_summary, proc_memory, table, verdict

TARGET_LAG_P99_MS = 20.0
TARGET_RSS_MB = 300.0
SCENARIOS = {"defaults": (32, 32), "wide": (256, 256)}  # name: (workers, provider concurrency)


def slow_template() -> dict[str, Any]:
    """EmptyImage -> FixtureSleepProgress (600 x 1 s) -> SaveImage, with a colour slot."""
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 1}},
        "2": {"class_type": "FixtureSleepProgress",
              "inputs": {"image": ["1", 0], "steps": 600, "step_seconds": 1.0, "preview": False,
                         "progress_text": False}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "bench_load"}},
    }
    return {"name": "bench-slow", "prompt": prompt,
            "slots": {"width": [["1", "width"]], "height": [["1", "height"]], "color": [["1", "color"]]}}


class RssSampler:
    """Samples this process's RSS every ``interval`` seconds into the current phase."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.phase = "start"
        self.samples: dict[str, list[int]] = {}
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            self.samples.setdefault(self.phase, []).append(proc_memory()["rss"])
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def _in_chunks(calls: list[Any], size: int = 50) -> list[Any]:
    out: list[Any] = []
    for i in range(0, len(calls), size):
        out += await asyncio.gather(*(c() for c in calls[i:i + size]))
    return out


async def _scenario(name: str, url: str, jobs: int, hold: float) -> list[dict[str, Any]]:
    workers, concurrency = SCENARIOS[name]
    tmp = tempfile.TemporaryDirectory(prefix="bench-load-")
    config = StudioConfig.model_validate({
        "default_provider": "comfy",
        "providers": {"comfy": {"type": "comfyui", "backends": [{"url": url}], "concurrency": concurrency,
                                "settings": {"workflow": slow_template()}}}})
    studio = Studio(Settings(data_dir=Path(tmp.name), secret_key="bench-secret-key", workers=workers), config=config)
    lag, rss = LagMonitor(), RssSampler()
    notes: dict[str, Any] = {}

    def phase(name: str) -> None:
        lag.mark(name)
        rss.phase = name

    await studio.start()
    lag.start()
    rss.start()
    try:
        phase("idle")
        await asyncio.sleep(2.0)
        phase("submit")
        t0 = time.perf_counter()
        submitted = await _in_chunks([
            (lambda c=c: studio.submit(GenerationRequest(prompt=f"load {c}", width=64, height=64,
                                                         params={"color": c + 1})))
            for c in range(jobs)])
        notes["submit_s"] = time.perf_counter() - t0
        phase("hold")
        await asyncio.sleep(hold)
        notes["waiting"], notes["running"] = studio.queue.waiting, studio.queue.running
        notes["in_db"] = await studio.store.count_jobs({JobStatus.queued, JobStatus.running})
        phase("cancel")
        t0 = time.perf_counter()
        ended = await _in_chunks([(lambda j=j: studio.cancel(j.id)) for j in submitted])
        notes["cancel_s"] = time.perf_counter() - t0
        notes["not_canceled"] = sum(1 for j in ended if j.status is not JobStatus.canceled)
    finally:
        await lag.stop()
        await rss.stop()
        await studio.stop()
        tmp.cleanup()
    return _rows(name, workers, concurrency, jobs, lag.phases(), rss.samples, notes)


def _rows(name: str, workers: int, concurrency: int, jobs: int, lags: dict[str, list[float]],
          rss: dict[str, list[int]], notes: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for phase in ("idle", "submit", "hold", "cancel"):
        s = ms_summary(lags.get(phase, []))
        rss_mb = max(rss.get(phase, [0])) / 1e6
        held = phase == "hold"
        rows.append({"scenario": name, "workers": workers, "concurrency": concurrency, "jobs": jobs, "phase": phase,
                     "ticks": s["n"], "lag_p50_ms": s["median_ms"], "lag_p99_ms": s["p99_ms"], "lag_max_ms": s["max_ms"],
                     "rss_max_mb": rss_mb, "seconds": notes.get(f"{phase}_s"),
                     "lag_ok": verdict(s["p99_ms"], TARGET_LAG_P99_MS) if held else None,
                     "rss_ok": verdict(rss_mb, TARGET_RSS_MB) if held else None})
    rows[-1]["note"] = (f"during hold: {notes.get('running')} running, {notes.get('waiting')} waiting in the studio "
                        f"queue, DB {notes.get('in_db')}; after cancel: {notes.get('not_canceled')} not canceled")
    return rows


async def _run(jobs: int, hold: float, scenarios: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with comfyui(time_scale=1.0) as target:
        if target.proc is None:
            raise RuntimeError("bench_load needs the fake ComfyUI (FixtureSleepProgress); unset COMFYUI_URL")
        for name in scenarios:
            rows += await _scenario(name, target.url, jobs, hold)
    return rows


def run() -> list[dict[str, Any]]:
    """Every scenario; one dict per (scenario, phase) with lag percentiles (ms), the phase's
    highest RSS (MB), and for ``hold`` whether the targets are met."""
    names = [s.strip() for s in os.environ.get("BENCH_LOAD_SCENARIOS", "defaults,wide").split(",") if s.strip()]
    # the fake ComfyUI must be reached directly even when COMFYUI_URL is set for the other benches
    saved = os.environ.pop("COMFYUI_URL", None)
    try:
        return asyncio.run(_run(env_int("BENCH_LOAD_JOBS", 1000), env_float("BENCH_LOAD_HOLD", 10.0), names))
    finally:
        if saved is not None:
            os.environ["COMFYUI_URL"] = saved


def render(rows: list[dict[str, Any]]) -> str:
    jobs = rows[0]["jobs"] if rows else 0
    out = [table(f"{jobs} jobs in flight against a slow fake ComfyUI: event-loop lag (10 ms ticker, ms) and RSS (MB); "
                 f"targets in hold: lag p99 <= {TARGET_LAG_P99_MS:g} ms, RSS <= {TARGET_RSS_MB:g} MB",
                 [("scenario", "scenario"), ("workers", "workers"), ("concurrency", "concurrency"), ("phase", "phase"),
                  ("seconds", "s"), ("ticks", "ticks"), ("lag_p50_ms", "lag p50"), ("lag_p99_ms", "lag p99"),
                  ("lag_max_ms", "lag max"), ("rss_max_mb", "RSS max"), ("lag_ok", "lag ok"), ("rss_ok", "RSS ok")],
                 rows)]
    out += [f"{r['scenario']}: {r['note']}" for r in rows if r.get("note")]
    return "\n".join(out)


if __name__ == "__main__":
    from .common import load_line

    print(load_line(), flush=True)
    print(render(run()))
