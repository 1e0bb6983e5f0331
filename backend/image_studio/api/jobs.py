"""Jobs: list, get, cancel, and live events over Server-Sent Events.

``GET /jobs/{id}/events`` (``text/event-stream``): first an event with the job as it stands
(``queued`` with its position, ``started``/``progress``, or its terminal state), then every
event until the job ends: ``queued``, ``started``, ``progress`` (``progress`` 0..1, ``value``,
``max``, optional base64 ``preview``), ``preview``, ``fallback``, ``succeeded`` (``data.asset_ids``),
``failed`` (``data.error``), ``canceled``, ``expired``. Each SSE message has ``event: <type>``,
``id: <n>`` and ``data: <ProgressEvent JSON>``; a ``: ping`` comment every 15 s keeps proxies open.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from ..errors import NotFound
from ..studio import Studio
from ..types import Job, JobStatus, ProgressEvent, TERMINAL
from .deps import PrincipalDep, StudioDep
from .schemas import ErrorBody, JobOut, JobPage

router = APIRouter(tags=["jobs"])

PING_SECONDS = 15.0


async def job_out(studio: Studio, job: Job, *, with_assets: bool = True) -> JobOut:
    """A job for the API, with its queue position and (when done) its assets."""
    assets = []
    if with_assets:
        for asset_id in job.asset_ids:
            with contextlib.suppress(NotFound):
                assets.append(await studio.store.get_asset(asset_id))
    return JobOut.of(job, position=studio.queue_position(job.id), assets=assets)


@router.get("/jobs", response_model=JobPage)
async def list_jobs(
    studio: StudioDep, principal: PrincipalDep,
    status: Annotated[list[JobStatus] | None, Query()] = None,
    batch_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> JobPage:
    """The caller's jobs (an admin's: everyone's), newest first, in cursor pages."""
    page = await studio.list_jobs(owner=principal.scope, status=status, batch_id=batch_id, limit=limit, cursor=cursor)
    return JobPage(items=[await job_out(studio, j, with_assets=False) for j in page.items], next_cursor=page.next_cursor)


@router.get("/jobs/{job_id}", response_model=JobOut, responses={404: {"model": ErrorBody}})
async def get_job(job_id: str, studio: StudioDep, principal: PrincipalDep) -> JobOut:
    return await job_out(studio, await studio.get_job(job_id, owner=principal.scope))


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, responses={404: {"model": ErrorBody}})
async def cancel_job(job_id: str, studio: StudioDep, principal: PrincipalDep) -> JobOut:
    """Cancel a queued or running job; the backend is told to stop. Idempotent."""
    return await job_out(studio, await studio.cancel(job_id, owner=principal.scope))


def snapshot_event(job: Job, position: int | None) -> ProgressEvent:
    """The event that describes where a job stands now."""
    if job.status is JobStatus.queued:
        return ProgressEvent(job_id=job.id, type="queued", position=position, progress=0.0)
    if job.status is JobStatus.running:
        return ProgressEvent(job_id=job.id, type="progress" if job.progress else "started",
                             progress=job.progress, provider=job.provider, backend=job.backend)
    data = {"asset_ids": job.asset_ids}
    if job.error:
        data["error"] = job.error
    return ProgressEvent(job_id=job.id, type=job.status.value, progress=job.progress, provider=job.provider,
                         backend=job.backend, message=(job.error or {}).get("message"), data=data)


def sse(event: ProgressEvent, n: int) -> str:
    return f"event: {event.type}\nid: {n}\ndata: {event.model_dump_json(exclude_none=True)}\n\n"


@router.get("/jobs/{job_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}, 404: {"model": ErrorBody}})
async def job_events(job_id: str, request: Request, studio: StudioDep, principal: PrincipalDep) -> StreamingResponse:
    """Live events of one job as Server-Sent Events, ending after its terminal event."""
    await studio.get_job(job_id, owner=principal.scope)

    async def stream() -> AsyncIterator[str]:
        async with studio.events(job_id) as queue:
            job = await studio.store.get_job(job_id)
            n = 1
            first = snapshot_event(job, studio.queue_position(job_id))
            yield sse(first, n)
            if job.status in TERMINAL:
                return
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), PING_SECONDS)
                except asyncio.TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": ping\n\n"
                    continue
                n += 1
                yield sse(event, n)
                if event.type in {s.value for s in TERMINAL}:
                    return

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
