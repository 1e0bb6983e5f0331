"""Prometheus metrics of one Studio, in a registry of its own (several Studios in one
process, as in tests, never collide). Served as text at ``GET /metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

JOB_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)


class Metrics:
    """Counters and histograms: jobs submitted and finished (by provider and status), job
    run time in seconds, assets stored by media kind; gauges filled at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.jobs_submitted = Counter("image_studio_jobs_submitted", "Jobs accepted", registry=r)
        self.jobs_finished = Counter("image_studio_jobs_finished", "Jobs ended", ["provider", "status"], registry=r)
        self.job_seconds = Histogram("image_studio_job_seconds", "Job run time from start to end, seconds",
                                     buckets=JOB_SECONDS_BUCKETS, registry=r)
        self.assets_stored = Counter("image_studio_assets_stored", "Assets stored", ["media"], registry=r)
        self.queue_waiting = Gauge("image_studio_queue_waiting", "Jobs waiting for a worker", registry=r)
        self.queue_running = Gauge("image_studio_queue_running", "Jobs running in this process", registry=r)

    def render(self, *, waiting: int, running: int) -> bytes:
        """The Prometheus text exposition, with the queue gauges set to the given counts."""
        self.queue_waiting.set(waiting)
        self.queue_running.set(running)
        return generate_latest(self.registry)
