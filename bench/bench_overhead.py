"""The studio's overhead over a direct ComfyUI client, on the same ComfyUI in the same run.

Three paths get the same image (the ``weightfree`` graph, :mod:`bench.paths`): a minimal
direct client (the baseline), the Studio in-process (``submit`` + ``wait``) and the standalone
HTTP app in its own process (``POST /generations`` with ``Prefer: wait=60``, then the asset
content). The ComfyUI is the project's fake in its own process, or a real one with
``COMFYUI_URL``.

Phases:

1. latency: ``BENCH_N`` (default 60) generations per path after ``BENCH_WARMUP`` (5),
   one at a time, the paths interleaved (direct, in-process, HTTP, direct, ...) so that drift
   hits all three alike. Medians and p95, the in-process per-stage breakdown
   (:mod:`bench.stages`), and CPU per generation: this process's ``process_time`` for the
   direct and in-process paths, the server process's CPU (``/proc``) for HTTP.
2. events: ``BENCH_SSE_N`` (15) jobs followed over SSE (publish -> delivery at the client).
3. throughput: 8 concurrent callers (``BENCH_CLIENTS``), ``BENCH_TP_PER_CLIENT`` (10) images
   each, per path, ``BENCH_TP_ROUNDS`` (2) rounds alternated. The provider's ``concurrency``
   (jobs in flight on the backend) is set to the number of callers, so the studio keeps as
   many prompts queued on ComfyUI as the direct clients do.

Targets: added latency at the median before post-processing <= 3 ms; added studio CPU per
generation <= 5 ms; throughput with 8 callers >= 0.9x the direct clients'.

Run: ``.venv/bin/python -m bench.bench_overhead`` (``COMFYUI_URL=http://127.0.0.1:8188`` for a
real ComfyUI; ``BENCH_SIZE`` sets the image side, default 512). Nothing asserts a time.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections import defaultdict
from typing import Any

from image_studio.storage.prepare import prepare_file
from image_studio.types import GeneratedFile, GenerationRequest

from .common import comfyui, env_int, ms_summary, table, verdict
from .paths import Colors, DirectPath, HttpPath, InProcessPath, request_body

TARGET_ADDED_MS = 3.0
TARGET_CPU_MS = 5.0
TARGET_THROUGHPUT = 0.9


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000 if values else float("nan")


async def _latency_phase(paths: list[Any], colors: Colors, n: int, warmup: int) -> dict[str, Any]:
    """Interleaved one-at-a-time runs; per path the samples and CPU seconds per generation."""
    samples: dict[str, list[dict[str, float]]] = defaultdict(list)
    cpu: dict[str, float] = defaultdict(float)
    server_cpu = 0.0
    http = next(p for p in paths if isinstance(p, HttpPath))
    for i in range(warmup + n):
        for path in paths:
            s0, c0 = http.server_cpu(), time.process_time()
            result = await path.one(colors())
            c1, s1 = time.process_time(), http.server_cpu()
            if i >= warmup:
                samples[path.name].append(result)
                cpu[path.name] += c1 - c0
                if path is http:
                    server_cpu += s1 - s0
    return {"samples": samples, "cpu": {k: v / n for k, v in cpu.items()}, "server_cpu": server_cpu / n}


def _postprocess_cpu(png: bytes, repeat: int = 20) -> tuple[float, float]:
    """``(CPU s, wall s)`` of one ``prepare_file`` on ``png`` (the backend's image), medians."""
    request = GenerationRequest.model_validate(request_body(512, 512, 1))
    cpu, wall = [], []
    for i in range(repeat + 2):
        c0, t0 = time.process_time(), time.perf_counter()
        prepare_file(GeneratedFile(data=png, mime_type="image/png", seed=i), request=request, parameters={"i": i},
                     provider="comfy", model=None)
        if i >= 2:
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - t0)
    return statistics.median(cpu), statistics.median(wall)


async def _throughput(path: Any, colors: Colors, clients: int, per_client: int) -> float:
    """Wall seconds for ``clients`` concurrent callers doing ``per_client`` images each."""
    async def caller(slot: int) -> None:
        for _ in range(per_client):
            await path.one(colors(), slot if isinstance(path, DirectPath) else 0)

    t0 = time.perf_counter()
    await asyncio.gather(*(caller(i) for i in range(clients)))
    return time.perf_counter() - t0


async def _run(size: int, n: int, warmup: int, clients: int, per_client: int, rounds: int, sse_n: int) -> list[dict]:
    colors = Colors()
    with comfyui() as target:
        direct = DirectPath(target.url, size, size)
        inproc = InProcessPath(target.url, size, size, concurrency=clients)
        http = HttpPath(target.url, size, size, concurrency=clients)
        paths = [direct, inproc, http]
        try:
            for path in paths:
                await path.start()
            lat = await _latency_phase(paths, colors, n, warmup)
            latency_jobs = inproc.job_ids[-n:]
            sse: list[tuple[str, float]] = []
            for _ in range(sse_n):
                sse += await http.sse_latencies(colors())
            await direct.start(clients)
            walls: dict[str, float] = defaultdict(float)
            for _ in range(rounds):
                for path in paths:
                    walls[path.name] += await _throughput(path, colors, clients, per_client)
            post_cpu, post_wall = _postprocess_cpu(direct.last_png)
            stages = [s for s in (inproc.recorder.stages(j) for j in latency_jobs) if s]
        finally:
            for path in reversed(paths):
                await path.stop()
    return _rows(target.label, size, lat, sse, walls, clients, per_client * clients * rounds, stages,
                 post_cpu, post_wall, len(direct.last_png))


def _rows(label: str, size: int, lat: dict[str, Any], sse: list[tuple[str, float]], walls: dict[str, float],
          clients: int, jobs: int, stages: list[dict[str, float]], post_cpu: float, post_wall: float,
          png_bytes: int) -> list[dict[str, Any]]:
    """Every figure as rows of four tables (``table`` key): latency, stages, cpu, throughput."""
    ctx = {"comfyui": label, "size": size, "png_bytes": png_bytes}
    samples = lat["samples"]
    direct = samples[DirectPath.name]
    direct_med = _median_ms([s["total"] for s in direct])
    post_ms = _median_ms([s["post-processing (thumbnail + PNG metadata)"] for s in stages])
    rows: list[dict[str, Any]] = []
    for name in (DirectPath.name, InProcessPath.name, HttpPath.name):
        summ = ms_summary([s["total"] for s in samples[name]])
        added = None if name == DirectPath.name else summ["median_ms"] - direct_med
        before_post = None if added is None else added - post_ms
        rows.append({"table": "latency", **ctx, "path": name, "n": summ["n"], "median_ms": summ["median_ms"],
                     "p95_ms": summ["p95_ms"], "added_ms": added, "added_before_post_ms": before_post,
                     "target_ms": None if added is None else TARGET_ADDED_MS,
                     "ok": None if added is None else verdict(before_post, TARGET_ADDED_MS)})
    direct_parts = {"backend round trip (POST /prompt -> history)": [s["rtt"] for s in direct],
                    "fetch (GET /view)": [s["fetch"] for s in direct], "total": [s["total"] for s in direct]}
    for key in (stages[0] if stages else {}):
        summ = ms_summary([s[key] for s in stages])
        d = direct_parts.get(key)
        rows.append({"table": "stages", **ctx, "stage": key, "median_ms": summ["median_ms"], "p95_ms": summ["p95_ms"],
                     "direct_median_ms": _median_ms(d) if d else None})
    sse_s = ms_summary([lat_s for _, lat_s in sse])
    rows.append({"table": "stages", **ctx, "stage": "events: publish -> SSE delivery (HTTP, all types)",
                 "median_ms": sse_s["median_ms"], "p95_ms": sse_s["p95_ms"], "direct_median_ms": None})
    direct_cpu = lat["cpu"][DirectPath.name] * 1000
    for name, cpu_ms, how in ((DirectPath.name, direct_cpu, "bench process"),
                              (InProcessPath.name, lat["cpu"][InProcessPath.name] * 1000, "bench process"),
                              (HttpPath.name + " (server)", lat["server_cpu"] * 1000, "server process"),
                              (HttpPath.name + " (client side)", lat["cpu"][HttpPath.name] * 1000, "bench process")):
        added = None if name == DirectPath.name or "client side" in name else cpu_ms - direct_cpu
        rows.append({"table": "cpu", **ctx, "path": name, "measured_in": how, "cpu_ms": cpu_ms, "added_ms": added,
                     "added_excl_post_ms": None if added is None else added - post_cpu * 1000,
                     "target_ms": None if added is None else TARGET_CPU_MS,
                     "ok": None if added is None else verdict(added, TARGET_CPU_MS)})
    rows.append({"table": "cpu", **ctx, "path": "post-processing alone (prepare_file)", "measured_in": "bench process",
                 "cpu_ms": post_cpu * 1000, "wall_ms": post_wall * 1000})
    base = jobs / walls[DirectPath.name]
    for name in (DirectPath.name, InProcessPath.name, HttpPath.name):
        rate = jobs / walls[name]
        ratio = rate / base
        rows.append({"table": "throughput", **ctx, "path": name, "clients": clients, "jobs": jobs,
                     "wall_s": walls[name], "jobs_per_s": rate, "ratio": ratio,
                     "target": None if name == DirectPath.name else TARGET_THROUGHPUT,
                     "ok": None if name == DirectPath.name else verdict(ratio, TARGET_THROUGHPUT, higher_is_better=True)})
    return rows


def run(n: int | None = None) -> list[dict[str, Any]]:
    """Run every phase (sizes from ``BENCH_*`` variables); one dict per table row, each with
    a ``table`` key: ``latency``, ``stages``, ``cpu`` or ``throughput``."""
    return asyncio.run(_run(
        size=env_int("BENCH_SIZE", 512), n=n or env_int("BENCH_N", 60), warmup=env_int("BENCH_WARMUP", 5),
        clients=env_int("BENCH_CLIENTS", 8), per_client=env_int("BENCH_TP_PER_CLIENT", 10),
        rounds=env_int("BENCH_TP_ROUNDS", 2), sse_n=env_int("BENCH_SSE_N", 15)))


def render(rows: list[dict[str, Any]]) -> str:
    """The four tables as text."""
    if not rows:
        return "overhead: no rows"
    first = rows[0]
    head = (f"studio overhead vs a direct client on {first['comfyui']}, "
            f"{first['size']}x{first['size']} weightfree PNG ({first['png_bytes']} bytes)")
    by = defaultdict(list)
    for r in rows:
        by[r["table"]].append(r)
    parts = [head, "", table("latency per image, ms (added = median - direct median; before post = minus the "
                             "post-processing median)",
                             [("path", "path"), ("n", "n"), ("median_ms", "median"), ("p95_ms", "p95"),
                              ("added_ms", "added"), ("added_before_post_ms", "added before post"),
                              ("target_ms", "target"), ("ok", "ok")], by["latency"]),
             "", table("studio in-process, per stage, ms (direct client's equivalent beside it)",
                       [("stage", "stage"), ("median_ms", "median"), ("p95_ms", "p95"),
                        ("direct_median_ms", "direct median")], by["stages"]),
             "", table("CPU per image, ms (added = minus the direct client's)",
                       [("path", "path"), ("measured_in", "measured in"), ("cpu_ms", "cpu"), ("added_ms", "added"),
                        ("added_excl_post_ms", "added excl. post"), ("target_ms", "target"), ("ok", "ok")],
                       by["cpu"]),
             "", table(f"throughput, {by['throughput'][0]['clients']} concurrent callers "
                       f"(provider concurrency = {by['throughput'][0]['clients']})",
                       [("path", "path"), ("jobs", "jobs"), ("wall_s", "wall s"), ("jobs_per_s", "jobs/s"),
                        ("ratio", "x direct"), ("target", "target"), ("ok", "ok")], by["throughput"])]
    return "\n".join(parts)


if __name__ == "__main__":
    from .common import load_line, print_json

    print(load_line(), flush=True)
    result = run()
    print(render(result))
    if os.environ.get("BENCH_JSON"):
        print_json(result)
