"""Batches: many jobs submitted together under one ``batch_id`` (``POST /generations/batch``,
``image-studio generate --batch``), read, followed and canceled as one.

A batch has no row of its own: it is the set of jobs that carry its id (at most
:data:`~image_studio.jobs.store.MAX_BATCH_JOBS`). Its owner is its jobs' owner, its
``created_at`` its first job's. Progress is the mean over its jobs of each job's progress
(0..1), a job that ended (succeeded, failed, canceled or expired) counting as 1, so that the
bar reaches the end when the batch does.

Shapes here are plain pydantic models (no HTTP framework); :mod:`image_studio.api.batches`
serves them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import and_, case, func, or_, select

from ..errors import InvalidRequest, NotFound
from ..types import TERMINAL, Job, JobStatus, ProgressEvent, utcnow
from .store import JobStore, Page, as_utc, decode_cursor, encode_cursor
from .tables import JobRow

if TYPE_CHECKING:
    from ..studio import Studio

TERMINAL_NAMES = frozenset(s.value for s in TERMINAL)


class BatchSummary(BaseModel):
    """A batch as a whole. ``counts`` has every job status (zeros included); ``progress`` is
    0..1 (the mean of its jobs', an ended job counting as 1); ``done`` is true when every job
    ended; ``job_ids`` and ``asset_ids`` in submission order."""

    id: str
    owner: str | None
    created_at: datetime
    total: int
    counts: dict[str, int]
    progress: float
    done: bool
    job_ids: list[str] = Field(default_factory=list)
    asset_ids: list[str] = Field(default_factory=list)


@dataclass
class BatchListRow:
    """One batch in a listing: its jobs' ``counts`` by status, ``total`` jobs and the sum of
    their ``progress`` (0..1 each; an ended job counts 1, the others their stored progress)."""

    batch_id: str
    owner: str | None
    created_at: datetime
    total: int
    counts: dict[str, int]
    progress_sum: float


async def list_batches(store: JobStore, *, owner: str | None = None, limit: int = 50,
                       cursor: str | None = None) -> Page:
    """Batches newest first (by their first job's ``created_at``), one
    :class:`BatchListRow` each, aggregated in SQL (GROUP BY ``batch_id``); ``owner`` None
    lists everyone's. Cursor pages as :meth:`JobStore.list_jobs`.

    Raises:
        InvalidRequest: a bad ``limit`` (1..500) or ``cursor``.
    """
    if not 1 <= limit <= 500:
        raise InvalidRequest("limit must be between 1 and 500", field="limit")
    created = func.min(JobRow.created_at).label("created_at")
    counts = [func.sum(case((JobRow.status == st.value, 1), else_=0)).label(st.value) for st in JobStatus]
    ended = [st.value for st in TERMINAL]
    progress_sum = func.sum(case((JobRow.status.in_(ended), 1.0), else_=JobRow.progress)).label("progress_sum")
    stmt = (select(JobRow.batch_id, created, func.min(JobRow.owner).label("owner"),
                   func.count().label("total"), progress_sum, *counts)
            .where(JobRow.batch_id.is_not(None)).group_by(JobRow.batch_id))
    if owner is not None:
        stmt = stmt.where(JobRow.owner == owner)
    if cursor:
        ts, batch_id = decode_cursor(cursor)
        stmt = stmt.having(or_(created < ts, and_(created == ts, JobRow.batch_id < batch_id)))
    stmt = stmt.order_by(created.desc(), JobRow.batch_id.desc()).limit(limit + 1)
    async with store.session() as s:
        rows = (await s.execute(stmt)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = []
    for r in rows:
        by_status = {st.value: int(getattr(r, st.value) or 0) for st in JobStatus}
        items.append(BatchListRow(
            batch_id=r.batch_id, owner=r.owner, created_at=as_utc(r.created_at), total=int(r.total),
            counts=by_status, progress_sum=float(r.progress_sum or 0.0)))
    next_cursor = encode_cursor(items[-1].created_at, items[-1].batch_id) if more and items else None
    return Page(items, next_cursor)



def overall_progress(states: list[tuple[JobStatus, float]]) -> float:
    """Mean of ``(status, progress)`` pairs' progress, an ended job counting as 1; 0 for none."""
    if not states:
        return 0.0
    total = sum(1.0 if status in TERMINAL else max(0.0, min(1.0, p)) for status, p in states)
    return round(total / len(states), 6)


def zero_counts() -> dict[str, int]:
    return {s.value: 0 for s in JobStatus}


def summarize(batch_id: str, jobs: list[Job]) -> BatchSummary:
    """The :class:`BatchSummary` of ``jobs`` (one batch's, in submission order, not empty)."""
    counts = zero_counts()
    for job in jobs:
        counts[job.status.value] += 1
    return BatchSummary(
        id=batch_id, owner=jobs[0].owner, created_at=min(j.created_at for j in jobs), total=len(jobs),
        counts=counts, progress=overall_progress([(j.status, j.progress) for j in jobs]),
        done=all(j.done for j in jobs), job_ids=[j.id for j in jobs],
        asset_ids=[a for j in jobs for a in j.asset_ids],
    )


def summarize_listed(row: BatchListRow) -> BatchSummary:
    """A listing row as a :class:`BatchSummary` without ids (progress from the stored values,
    ended jobs counting as 1)."""
    ended = sum(row.counts.get(s.value, 0) for s in TERMINAL)
    progress = min(1.0, row.progress_sum / row.total) if row.total else 0.0
    return BatchSummary(
        id=row.batch_id, owner=row.owner, created_at=row.created_at, total=row.total,
        counts={**zero_counts(), **row.counts}, progress=round(progress, 6), done=ended == row.total,
    )


async def load_batch(studio: "Studio", batch_id: str, *, owner: str | None = None) -> list[Job]:
    """The jobs of a batch the caller may see, in submission order.

    Raises:
        NotFound: no such batch, or another owner's (``owner`` None: an admin sees all);
            field ``batch_id``.
    """
    jobs = await studio.store.batch_jobs(batch_id)
    if not jobs or (owner is not None and jobs[0].owner != owner):
        raise NotFound(f"no batch {batch_id!r}", field="batch_id")
    return jobs


async def cancel_batch(studio: "Studio", batch_id: str, *, owner: str | None = None) -> list[Job]:
    """Cancel every job of the batch that has not ended: the queued ones first (so that no
    worker picks them up), then the running ones, concurrently (each is told to stop on its
    backend). Idempotent: ended jobs are left as they are. Returns the jobs afterwards.

    Raises:
        NotFound: as :func:`load_batch`.
    """
    jobs = await load_batch(studio, batch_id, owner=owner)
    for job in jobs:
        if job.status is JobStatus.queued:
            await studio.cancel(job.id)
    running = [j.id for j in await studio.store.batch_jobs(batch_id) if not j.done]
    if running:
        await asyncio.gather(*(studio.cancel(job_id) for job_id in running))
    return await studio.store.batch_jobs(batch_id)


BatchEventType = Literal[
    "snapshot", "queued", "started", "progress", "fallback", "succeeded", "failed", "canceled", "expired", "done"
]


class BatchEvent(BaseModel):
    """One event of a batch's stream: ``snapshot`` first (where the batch stands), then one per
    change of one of its jobs (``type`` is that job's event: queued, started, progress,
    fallback, succeeded, failed, canceled, expired; ``job_id``/``job_status``/``job_progress``
    name it), and ``done`` once every job ended. ``counts``/``progress``/``total`` are the
    batch's after the change (``progress`` 0..1)."""

    batch_id: str
    type: BatchEventType
    job_id: str | None = None
    job_status: JobStatus | None = None
    job_progress: float | None = None
    message: str | None = None
    provider: str | None = None
    total: int
    counts: dict[str, int]
    progress: float
    done: bool
    asset_ids: list[str] = Field(default_factory=list)
    ts: datetime = Field(default_factory=utcnow)


_EVENT_STATUS = {
    "queued": JobStatus.queued, "started": JobStatus.running, "progress": JobStatus.running,
    "fallback": JobStatus.running, "succeeded": JobStatus.succeeded, "failed": JobStatus.failed,
    "canceled": JobStatus.canceled, "expired": JobStatus.expired,
}


class BatchTracker:
    """In-memory state of one batch's jobs, advanced by their events (an ended job never goes
    back). Built from the stored jobs read after subscribing, so no event is missed."""

    def __init__(self, batch_id: str, jobs: list[Job]) -> None:
        self.batch_id = batch_id
        self.order = [j.id for j in jobs]
        self.states: dict[str, tuple[JobStatus, float]] = {j.id: (j.status, j.progress) for j in jobs}
        self.assets: dict[str, list[str]] = {j.id: list(j.asset_ids) for j in jobs}

    @property
    def done(self) -> bool:
        return all(status in TERMINAL for status, _ in self.states.values())

    def apply(self, event: ProgressEvent) -> BatchEvent | None:
        """Advance by one job event; returns the batch event to send, None when nothing the
        batch shows changed (a preview, an event of another job, a stale one)."""
        if event.job_id not in self.states or event.type not in _EVENT_STATUS:
            return None
        status, progress = self.states[event.job_id]
        if status in TERMINAL:
            return None
        new_status = _EVENT_STATUS[event.type]
        if event.type == "progress" and event.progress is None:
            return None
        new_progress = event.progress if event.progress is not None else progress
        if new_status is JobStatus.succeeded:
            new_progress = 1.0
        self.states[event.job_id] = (new_status, new_progress)
        if new_status in TERMINAL:
            ids = event.data.get("asset_ids") if isinstance(event.data, dict) else None
            if isinstance(ids, list):
                self.assets[event.job_id] = [str(a) for a in ids]
        return self.event(event.type, job_id=event.job_id, message=event.message, provider=event.provider)

    def resync(self, jobs: list[Job]) -> list[BatchEvent]:
        """Catch up from stored ``jobs`` (after a quiet spell: an event may have been dropped
        from a full subscriber queue); returns an event per job found ended meanwhile."""
        out = []
        for job in jobs:
            status, _ = self.states.get(job.id, (None, 0.0))
            if status is None or status in TERMINAL or not job.done:
                continue
            self.states[job.id] = (job.status, job.progress)
            self.assets[job.id] = list(job.asset_ids)
            out.append(self.event(job.status.value, job_id=job.id))
        return out

    def event(self, type_: str, **kw: Any) -> BatchEvent:
        counts = zero_counts()
        for status, _ in self.states.values():
            counts[status.value] += 1
        job_id = kw.get("job_id")
        if job_id is not None:
            kw["job_status"], kw["job_progress"] = self.states[job_id]
        return BatchEvent(
            batch_id=self.batch_id, type=type_, total=len(self.states), counts=counts,
            progress=overall_progress(list(self.states.values())), done=self.done,
            asset_ids=[a for j in self.order for a in self.assets[j]], **kw,
        )


async def follow_batch(studio: "Studio", batch_id: str, *, owner: str | None = None,
                       idle: float = 15.0) -> AsyncIterator[BatchEvent | None]:
    """The batch's events: a ``snapshot``, one event per change of one of its jobs, and
    ``done`` when every job ended (at once for a batch that already had). Yields None after
    ``idle`` seconds without an event (the caller may send a keep-alive or stop).

    Raises:
        NotFound: as :func:`load_batch` (before the first event).
    """
    await load_batch(studio, batch_id, owner=owner)
    async with studio.events(None) as queue:
        tracker = BatchTracker(batch_id, await studio.store.batch_jobs(batch_id))
        yield tracker.event("snapshot")
        while not tracker.done:
            try:
                event = await asyncio.wait_for(queue.get(), idle)
            except asyncio.TimeoutError:
                for caught_up in tracker.resync(await studio.store.batch_jobs(batch_id)):
                    yield caught_up
                yield None
                continue
            out = tracker.apply(event)
            if out is not None:
                yield out
        yield tracker.event("done")


__all__ = ["BatchEvent", "BatchListRow", "BatchSummary", "list_batches", "BatchTracker", "cancel_batch", "follow_batch", "load_batch",
           "overall_progress", "summarize", "summarize_listed"]
