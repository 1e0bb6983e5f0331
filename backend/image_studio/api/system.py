"""``GET /health`` (no auth: for load balancers and the panel's banner) and ``GET /metrics``
(Prometheus text exposition)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from .. import __version__
from .deps import StudioDep
from .schemas import HealthOut

router = APIRouter(tags=["system"])


@router.get("/health", response_model=HealthOut)
async def health(studio: StudioDep) -> HealthOut:
    """``status`` is ``ok``, or ``degraded`` with the ``problems`` named (no provider
    configured, a provider that failed to load)."""
    return HealthOut(**await studio.health(), version=__version__)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(studio: StudioDep) -> Response:
    body = studio.metrics.render(waiting=studio.queue.waiting, running=studio.queue.running)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
