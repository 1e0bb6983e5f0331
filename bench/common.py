"""Shared pieces of the benchmarks: statistics, tables, the ComfyUI under test, process
figures (CPU seconds, RSS) from ``/proc``, event-loop lag, and the machine description.

Nothing here asserts a time. Every figure is measured on this machine in this run.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
"""The project root (``tests.fakes`` is imported from here)."""

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def env_int(name: str, default: int) -> int:
    """An integer from the environment (``BENCH_*`` overrides), else ``default``."""
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


# -- statistics ------------------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) with linear interpolation between closest ranks; NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def ms_summary(samples_s: Sequence[float]) -> dict[str, float]:
    """``{"n", "median_ms", "p95_ms", "p99_ms", "max_ms"}`` of samples in seconds."""
    ms = [s * 1000.0 for s in samples_s]
    return {"n": len(ms), "median_ms": statistics.median(ms) if ms else math.nan,
            "p95_ms": percentile(ms, 0.95), "p99_ms": percentile(ms, 0.99), "max_ms": max(ms) if ms else math.nan}


def fmt(value: Any, digits: int = 2) -> str:
    """A table cell: floats with ``digits`` decimals, None and NaN as ``-``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(title: str, columns: Sequence[tuple[str, str]], rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table: ``columns`` are ``(key, header)``; the first column is left-aligned."""
    cells = [[fmt(r.get(key)) for key, _ in columns] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (_, h) in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths)))

    out = [title, line([h for _, h in columns]), line(["-" * w for w in widths])]
    out += [line(c) for c in cells]
    return "\n".join(out)


def verdict(value: float | None, target: float, *, higher_is_better: bool = False) -> bool | None:
    """Whether ``value`` meets ``target`` (None when there is no value)."""
    if value is None or math.isnan(value):
        return None
    return value >= target if higher_is_better else value <= target


# -- processes and ports ---------------------------------------------------------------------

def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers 2xx.

    Raises:
        RuntimeError: ``proc`` exited, or nothing answered within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before {url} answered")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).is_success:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:g} s")


@contextlib.contextmanager
def child_process(args: list[str], *, ready_url: str, env: dict[str, str] | None = None,
                  log_path: Path | None = None, timeout: float = 60.0) -> Iterator[subprocess.Popen]:
    """Run ``args`` (cwd: the project root) until the block ends; ready when ``ready_url``
    answers. Output goes to ``log_path`` (else discarded). Stopped with SIGTERM, then SIGKILL
    after 10 s."""
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed below
    proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http(ready_url, timeout, proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if log_path:
            out.close()  # type: ignore[union-attr]


@dataclass
class ComfyTarget:
    """The ComfyUI under test: its URL, a label for tables, and the fake's process (None for a
    real ComfyUI given by ``COMFYUI_URL``)."""

    url: str
    label: str
    proc: subprocess.Popen | None = None


@contextlib.contextmanager
def comfyui(time_scale: float = 0.01) -> Iterator[ComfyTarget]:
    """``COMFYUI_URL`` when set (a real ComfyUI, left running), else the project's fake ComfyUI
    (``tests/fakes/comfyui_server.py``) in its own process on a free port, stopped after.

    ``time_scale`` multiplies the fake's ``FixtureSleepProgress`` step durations."""
    url = os.environ.get("COMFYUI_URL")
    if url:
        url = url.rstrip("/")
        stats = httpx.get(url + "/system_stats", timeout=10.0).json()
        version = stats.get("system", {}).get("comfyui_version", "?")
        yield ComfyTarget(url, f"real ComfyUI {version} at {url}")
        return
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "tests.fakes.comfyui_server", "--port", str(port), "--time-scale", str(time_scale)]
    with child_process(args, ready_url=url + "/system_stats") as proc:
        yield ComfyTarget(url, f"fake ComfyUI (separate process, pid {proc.pid})", proc)


def proc_cpu_seconds(pid: int | str = "self") -> float:
    """CPU seconds of a process: the sum over its live threads of ``/proc/<pid>/task/<tid>/
    schedstat`` (nanoseconds on CPU), else user + system from ``/proc/<pid>/stat`` (10 ms
    ticks, and counting threads that have exited)."""
    total, seen = 0, False
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int((task / "schedstat").read_text().split()[0])
                seen = True
    if seen and total > 0:
        return total / 1e9
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def proc_memory(pid: int | str = "self") -> dict[str, int]:
    """``{"rss": bytes, "hwm": bytes}``: resident set size now and its peak
    (``VmRSS``/``VmHWM`` in ``/proc/<pid>/status``)."""
    out = {"rss": 0, "hwm": 0}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out["rss" if key == "VmRSS" else "hwm"] = int(value.split()[0]) * 1024
    return out


# -- event-loop lag --------------------------------------------------------------------------

class LagMonitor:
    """A ticker task that sleeps ``interval`` seconds and records how late it wakes (seconds).

    ``mark(name)`` starts a new phase; :meth:`phases` gives the samples per phase."""

    def __init__(self, interval: float = 0.010) -> None:
        self.interval = interval
        self._phase = "start"
        self._samples: dict[str, list[float]] = {}
        self._task: asyncio.Task[None] | None = None

    def mark(self, phase: str) -> None:
        self._phase = phase

    async def _tick(self) -> None:
        clock = time.perf_counter
        while True:
            t0 = clock()
            await asyncio.sleep(self.interval)
            self._samples.setdefault(self._phase, []).append(max(0.0, clock() - t0 - self.interval))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._tick(), name="bench-lag-ticker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def phases(self) -> dict[str, list[float]]:
        return dict(self._samples)


# -- the machine -----------------------------------------------------------------------------

def machine_info() -> dict[str, str]:
    """nproc, CPU model, RAM, Python version and the date, for the report."""
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    ram = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return {"nproc": str(os.cpu_count()), "cpu": model, "ram": ram,
            "python": f"{platform.python_implementation()} {platform.python_version()}",
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def _cpu_times() -> tuple[int, int]:
    """``(busy, total)`` jiffies of all CPUs from ``/proc/stat``."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


def machine_busy(seconds: float = 1.0) -> float:
    """Fraction (0..1) of all CPUs busy during the next ``seconds`` (other people's work too)."""
    b0, t0 = _cpu_times()
    time.sleep(seconds)
    b1, t1 = _cpu_times()
    return (b1 - b0) / max(1, t1 - t0)


def wait_quiet(max_seconds: float, threshold: float = 0.15) -> float:
    """Wait up to ``max_seconds`` for a second with the machine under ``threshold`` busy;
    returns the last busy fraction seen (benchmarks on a shared machine)."""
    deadline = time.monotonic() + max_seconds
    busy = machine_busy()
    while busy > threshold and time.monotonic() < deadline:
        busy = machine_busy()
    return busy


def load_line() -> str:
    """One line on how busy the machine is right now (``BENCH_WAIT_QUIET=<s>`` first waits up
    to that long for a quiet second)."""
    wait = env_float("BENCH_WAIT_QUIET", 0.0)
    busy = wait_quiet(wait) if wait > 0 else machine_busy()
    load1 = Path("/proc/loadavg").read_text().split()[0]
    return f"machine load at start: {busy * 100:.0f}% of all CPUs busy over 1 s, 1-min load average {load1}"


def print_json(rows: Any) -> None:
    """Rows as JSON on stdout (``BENCH_JSON=1``), for keeping results."""
    print(json.dumps(rows, indent=1, default=str))
