"""Job queues: the interface the Studio uses, and the embedded asyncio queue.

The queue holds job *ids*, in order; the job itself lives in the :class:`JobStore`, so a
queue loses nothing when the process stops: on start the Studio re-enqueues every job still
``queued`` in the database. A PostgreSQL-backed queue library (procrastinate or saq's Postgres
queue, on psycopg 3) fills the same interface when scaled out; Redis is not used for the queue
because Open WebUI pins redis 8, which saq's Redis extra does not admit.

Per-backend concurrency is the orchestrator's job (slots per backend in its balancer); the queue's
``workers`` bounds how many jobs run in this process at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Awaitable, Callable

Runner = Callable[[str], Awaitable[None]]

log = logging.getLogger("image_studio.queue")


class JobQueue(ABC):
    """What the Studio needs of a queue."""

    @abstractmethod
    async def start(self, runner: Runner) -> None:
        """Start taking jobs; ``runner(job_id)`` runs one job to its end and never raises."""

    @abstractmethod
    async def stop(self, grace: float = 0.0) -> None:
        """Stop taking jobs; wait up to ``grace`` seconds for running ones, then cancel them.
        A canceled run leaves its job ``running`` in the store, for restart recovery."""

    @abstractmethod
    async def enqueue(self, job_id: str) -> int:
        """Add a job; returns its 0-based position among the waiting jobs."""

    @abstractmethod
    def remove(self, job_id: str) -> bool:
        """Take a waiting job out; returns False if it is not waiting (running or unknown)."""

    @abstractmethod
    def position(self, job_id: str) -> int | None:
        """0-based place among the waiting jobs, or None if not waiting."""

    @property
    @abstractmethod
    def waiting(self) -> int:
        """Jobs waiting for a worker."""

    @property
    @abstractmethod
    def running(self) -> int:
        """Jobs being run by this process."""


class EmbeddedQueue(JobQueue):
    """FIFO of job ids run by ``workers`` asyncio tasks in this process.

    Args:
        workers: how many jobs run at once in this process (>= 1).
    """

    def __init__(self, workers: int = 32) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.workers = workers
        self._waiting: OrderedDict[str, None] = OrderedDict()
        self._cond = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []
        self._running: set[str] = set()
        self._runner: Runner | None = None
        self._stopping = False

    async def start(self, runner: Runner) -> None:
        self._runner = runner
        self._stopping = False
        self._tasks = [asyncio.create_task(self._work(i), name=f"image-studio-worker-{i}") for i in range(self.workers)]

    async def stop(self, grace: float = 0.0) -> None:
        self._stopping = True
        async with self._cond:
            self._cond.notify_all()
        if grace > 0 and self._tasks:
            await asyncio.wait(self._tasks, timeout=grace)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def enqueue(self, job_id: str) -> int:
        async with self._cond:
            self._waiting[job_id] = None
            self._cond.notify()
            return len(self._waiting) - 1

    def remove(self, job_id: str) -> bool:
        return self._waiting.pop(job_id, False) is None

    def position(self, job_id: str) -> int | None:
        if job_id not in self._waiting:
            return None
        for i, key in enumerate(self._waiting):
            if key == job_id:
                return i
        return None

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return len(self._running)

    async def _next(self) -> str | None:
        async with self._cond:
            while not self._waiting and not self._stopping:
                await self._cond.wait()
            if self._stopping:
                return None
            job_id, _ = self._waiting.popitem(last=False)
            return job_id

    async def _work(self, index: int) -> None:
        assert self._runner is not None
        while True:
            job_id = await self._next()
            if job_id is None:
                return
            self._running.add(job_id)
            try:
                await self._runner(job_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a runner bug must not kill the worker
                log.exception("job %s: runner failed", job_id)
            finally:
                self._running.discard(job_id)
