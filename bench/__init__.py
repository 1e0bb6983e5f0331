"""Benchmarks: each module has ``run() -> list[dict]`` and prints a table when run as a script."""
