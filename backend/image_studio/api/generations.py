"""``POST /generations`` and ``POST /generations/batch``.

``Prefer: wait=N`` (RFC 7240) waits up to N seconds (capped by ``IMAGE_STUDIO_WAIT_MAX``) for
the job to end: 200 with the finished job, else 202 with the job as it stands.
``Idempotency-Key``: the same key with the same body returns the same job; another body 409.
"""

from __future__ import annotations

import itertools
import re
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response

from ..errors import InvalidRequest
from ..jobs.store import new_id
from ..types import GenerationRequest
from .deps import PrincipalDep, StudioDep
from .jobs import job_out
from .schemas import BatchOut, BatchRequest, ErrorBody, JobOut
from .workflows import check_generation_params

router = APIRouter(tags=["generations"])

_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+(?:\.\d+)?)", re.I)
GRID_KEYS = {"seed", "cfg_scale", "steps", "sampler", "scheduler", "model", "width", "height"}


async def generation_allowed(request: Request, principal: PrincipalDep) -> None:
    """The host's permission gate for generations, when it installed one: inside Open WebUI,
    ``app.state.generation_gate`` (:func:`image_studio.openwebui.auth.generation_gate`) refuses
    with PermissionDenied (403) when Open WebUI's image generation is off or the user lacks
    its ``features.image_generation`` permission. Standalone there is no gate."""
    gate = getattr(request.app.state, "generation_gate", None)
    if gate is not None:
        await gate(request, principal)


def parse_prefer_wait(prefer: str | None, cap: float) -> float:
    """Seconds to wait from a ``Prefer`` header (``wait=N``), capped at ``cap``; 0 if absent."""
    if not prefer:
        return 0.0
    match = _WAIT.search(prefer)
    return min(float(match.group(1)), cap) if match else 0.0


@router.post(
    "/generations", status_code=202, response_model=JobOut,
    responses={200: {"model": JobOut}, 409: {"model": ErrorBody}, 422: {"model": ErrorBody}, 503: {"model": ErrorBody}},
    dependencies=[Depends(generation_allowed)],
)
async def create_generation(
    body: GenerationRequest, studio: StudioDep, principal: PrincipalDep, response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    prefer: Annotated[str | None, Header()] = None,
) -> JobOut:
    """Queue one generation. Answers 202 with the job (200 when ``Prefer: wait`` saw it end).
    A saved workflow's ``params`` outside their limits are a 422 before any job exists."""
    await check_generation_params(studio, body)
    job = await studio.submit(body, owner=principal.owner, idempotency_key=idempotency_key)
    wait = parse_prefer_wait(prefer, studio.settings.wait_max)
    if wait > 0:
        job = await studio.wait(job.id, wait)
        response.headers["Preference-Applied"] = f"wait={wait:g}"
        if job.done:
            response.status_code = 200
    return await job_out(studio, job)


def expand_batch(body: BatchRequest) -> list[GenerationRequest]:
    """The requests a batch stands for, in order.

    Raises:
        InvalidRequest: nothing to run, a grid key that is not a parameter, or over 500 jobs.
    """
    requests = list(body.requests)
    if body.prompts or body.grid:
        if body.base is None:
            raise InvalidRequest("prompts and grid need a base request", field="base")
        bad = set(body.grid) - GRID_KEYS
        if bad:
            raise InvalidRequest(f"grid keys must be among {sorted(GRID_KEYS)}", field=f"grid.{sorted(bad)[0]}")
        prompts = body.prompts or [body.base.prompt]
        keys = sorted(body.grid)
        for prompt in prompts:
            for values in itertools.product(*(body.grid[k] for k in keys)) if keys else [()]:
                data = body.base.model_dump() | {"prompt": prompt} | dict(zip(keys, values))
                requests.append(GenerationRequest.model_validate(data))
    if not requests:
        raise InvalidRequest("a batch needs requests, or a base with prompts or a grid", field="requests")
    if len(requests) > 500:
        raise InvalidRequest(f"a batch may hold 500 jobs; this one makes {len(requests)}", field="grid")
    return requests


@router.post("/generations/batch", status_code=202, response_model=BatchOut,
             responses={422: {"model": ErrorBody}, 503: {"model": ErrorBody}},
             dependencies=[Depends(generation_allowed)])
async def create_batch(body: BatchRequest, studio: StudioDep, principal: PrincipalDep) -> BatchOut:
    """Queue many generations as one batch (its own id; jobs list with ``batch_id``)."""
    requests = expand_batch(body)
    for request in requests:  # all or nothing: refuse before any job is queued
        studio.check_routable(request)
        await check_generation_params(studio, request)
    batch_id = new_id()
    jobs = [await studio.submit(r, owner=principal.owner, batch_id=batch_id) for r in requests]
    return BatchOut(batch_id=batch_id, jobs=[await job_out(studio, j, with_assets=False) for j in jobs])
