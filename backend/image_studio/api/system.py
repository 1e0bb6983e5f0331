"""``GET /health`` (no auth: for load balancers and the panel's banner), ``GET /metrics``
(Prometheus text exposition) and ``GET /me`` (who the caller is, for the UI)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from .. import __version__
from .deps import PrincipalDep, StudioDep
from .schemas import HealthOut, MeOut

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


@router.get("/me", response_model=MeOut, responses={401: {"description": "no or a wrong credential"}})
async def me(request: Request, principal: PrincipalDep) -> MeOut:
    """The caller: ``owner`` (whose jobs and assets), ``name`` (to show), ``role`` (admin,
    user or service) and
    ``host`` (``standalone``, or ``openwebui`` when the studio runs inside Open WebUI). The UI
    shows the Settings page to admins only."""
    host = "openwebui" if getattr(request.app.state, "image_studio", None) is not None else "standalone"
    name = getattr(getattr(request.state, "openwebui_user", None), "name", None) or principal.owner
    return MeOut(owner=principal.owner, name=str(name), role=principal.role, is_admin=principal.is_admin, host=host)
