"""``python -m bench`` (``make bench``): run every benchmark and print its tables.

Each benchmark runs in a process of its own (``python -m bench.bench_<name>``), so that one's
imports, threads and memory do not weigh on the next one's figures (the load benchmark
reports this process's RSS).

``BENCH_ONLY=assets,overhead,load,gallery`` picks some (``gallery`` needs the built UI and
Chromium: ``make ui``, ``make browser``); ``BENCH_WAIT_QUIET=60`` waits up to 60 s
before each benchmark for a quiet second on a shared machine (each prints how busy it was); ``COMFYUI_URL`` points the overhead benchmark
at a real ComfyUI (the load benchmark always uses the fake, which has the slow test node).
Sizes come from ``BENCH_*`` variables (see each module). A benchmark that fails is reported
and the others still run; the exit status is then 1. Nothing here asserts a time: the tables
show each figure beside its target.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from .common import ROOT, load_line, machine_info

BENCHES = ("assets", "overhead", "load", "gallery")
MODULES = {"gallery": "bench.gallery"}
"""Benchmarks whose module is not ``bench.bench_<name>``."""


def main() -> int:
    wanted = [b.strip() for b in os.environ.get("BENCH_ONLY", ",".join(BENCHES)).split(",") if b.strip()]
    unknown = [b for b in wanted if b not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {list(BENCHES)}", file=sys.stderr)
        return 2
    info = machine_info()
    print(f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['ram']} RAM, {info['python']}, {info['date']}")
    failed = []
    for name in wanted:
        print(f"\n=== {name} " + "=" * (70 - len(name)), flush=True)
        if name == "assets":  # the others print this line themselves
            print(load_line(), flush=True)
        t0 = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", MODULES.get(name, f"bench.bench_{name}")], cwd=ROOT)
        if code != 0:
            failed.append(name)
        print(f"({name}: {time.perf_counter() - t0:.0f} s{', FAILED' if code else ''})", flush=True)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
