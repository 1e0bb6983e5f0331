"""Batches as one thing: ``GET /batches``, ``GET /batches/{id}``, ``POST /batches/{id}/cancel``
and ``GET /batches/{id}/events`` (Server-Sent Events). Batches are made by
``POST /generations/batch``; the logic is in :mod:`image_studio.jobs.batches`.

Owners see their own batches, admins every batch; another owner's batch is a 404.

``GET /batches/{id}/events`` (``text/event-stream``): ``snapshot`` first, then one event per
change of one of the batch's jobs (``event:`` is that job's event type: queued, started,
progress, fallback, succeeded, failed, canceled, expired), then ``done`` when every job ended;
``data:`` is a :class:`~image_studio.jobs.batches.BatchEvent` (the batch's ``counts``,
``progress`` 0..1, ``total``, and the job that changed). Previews are not forwarded. A
``: ping`` comment every 15 s keeps proxies open.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from ..jobs.batches import (BatchEvent, BatchSummary, cancel_batch, follow_batch, load_batch, summarize,
                            summarize_listed)
from ..jobs.batches import list_batches as list_stored_batches
from .deps import PrincipalDep, StudioDep
from .jobs import PING_SECONDS, job_out
from .schemas import ErrorBody, JobOut

router = APIRouter(tags=["batches"])


class BatchDetailOut(BatchSummary):
    """A batch (see :class:`BatchSummary`) and, with ``?jobs=true``, its jobs (without their
    assets: fetch those with ``GET /assets?batch_id=``)."""

    jobs: list[JobOut] = Field(default_factory=list)


class BatchPage(BaseModel):
    """Batches newest first; ``job_ids``/``asset_ids`` are left empty in listings."""

    items: list[BatchSummary]
    next_cursor: str | None


@router.get("/batches", response_model=BatchPage, responses={422: {"model": ErrorBody}})
async def list_batches(
    studio: StudioDep, principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50, cursor: str | None = None,
) -> BatchPage:
    """The caller's batches (an admin's: everyone's), newest first, in cursor pages."""
    page = await list_stored_batches(studio.store, owner=principal.scope, limit=limit, cursor=cursor)
    return BatchPage(items=[summarize_listed(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/batches/{batch_id}", response_model=BatchDetailOut, responses={404: {"model": ErrorBody}})
async def get_batch(batch_id: str, studio: StudioDep, principal: PrincipalDep,
                    jobs: Annotated[bool, Query(description="include the jobs")] = False) -> BatchDetailOut:
    """Counts per status, overall progress (0..1), job and asset ids of one batch."""
    found = await load_batch(studio, batch_id, owner=principal.scope)
    summary = summarize(batch_id, found)
    listed = [await job_out(studio, j, with_assets=False) for j in found] if jobs else []
    return BatchDetailOut(**summary.model_dump(), jobs=listed)


@router.post("/batches/{batch_id}/cancel", response_model=BatchDetailOut, responses={404: {"model": ErrorBody}})
async def cancel(batch_id: str, studio: StudioDep, principal: PrincipalDep) -> BatchDetailOut:
    """Cancel every job of the batch that has not ended (running ones are stopped on their
    backend). Idempotent: a second call changes nothing. Answers the batch afterwards."""
    found = await cancel_batch(studio, batch_id, owner=principal.scope)
    return BatchDetailOut(**summarize(batch_id, found).model_dump())


def sse(event: BatchEvent, n: int) -> str:
    return f"event: {event.type}\nid: {n}\ndata: {event.model_dump_json(exclude_none=True)}\n\n"


@router.get("/batches/{batch_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}, 404: {"model": ErrorBody}})
async def batch_events(batch_id: str, request: Request, studio: StudioDep, principal: PrincipalDep) -> StreamingResponse:
    """The batch's progress as Server-Sent Events, ending when every job ended."""
    await load_batch(studio, batch_id, owner=principal.scope)  # 404 before the stream starts

    async def stream() -> AsyncIterator[str]:
        n = 0
        async for event in follow_batch(studio, batch_id, owner=principal.scope, idle=PING_SECONDS):
            if event is None:
                if await request.is_disconnected():
                    return
                yield ": ping\n\n"
                continue
            n += 1
            yield sse(event, n)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
