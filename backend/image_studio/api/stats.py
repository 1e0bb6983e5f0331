"""Provider analytics (admins): ``GET /providers/{id}/stats`` and ``GET /stats`` (every
provider, for the Settings page's chart). What is counted and how is described in
:mod:`image_studio.jobs.stats`.

Query: ``since`` and ``until`` (ISO 8601 datetimes; no zone means UTC; default the last 24 h),
``bucket`` (``hour`` or ``day``; default ``hour`` up to 3 days, else ``day``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter

from ..jobs.stats import AllStats, ProviderStats, studio_stats
from .deps import AdminDep, StudioDep
from .schemas import ErrorBody

router = APIRouter(tags=["stats"])

_ERRORS = {403: {"model": ErrorBody}, 422: {"model": ErrorBody}}


@router.get("/providers/{provider_id}/stats", response_model=ProviderStats,
            responses={**_ERRORS, 404: {"model": ErrorBody}})
async def provider_stats(provider_id: str, studio: StudioDep, _: AdminDep, since: datetime | None = None,
                         until: datetime | None = None, bucket: Literal["hour", "day"] | None = None) -> ProviderStats:
    """One provider over ``[since, until)``: jobs attempted, succeeded, failed, canceled;
    success rate; error classes; attempt latency p50/p90/p99 and queue wait p50/p90 (seconds);
    images; cost (USD) where reported; a time series; the same per backend."""
    result = await studio_stats(studio, since, until, bucket, provider=provider_id)
    return result.providers[0]


@router.get("/stats", response_model=AllStats, responses=_ERRORS)
async def all_stats(studio: StudioDep, _: AdminDep, since: datetime | None = None, until: datetime | None = None,
                    bucket: Literal["hour", "day"] | None = None) -> AllStats:
    """Every configured provider (and any other used in the window), and the window's jobs by
    status."""
    return await studio_stats(studio, since, until, bucket)
