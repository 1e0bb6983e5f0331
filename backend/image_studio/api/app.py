"""The HTTP API: one router mounted at ``/api/v1/image-studio``, standalone or inside Open WebUI.

:func:`build_router` gives the router (the Open WebUI edge includes it in Open WebUI's app);
:func:`create_app` the standalone FastAPI app, whose lifespan starts and stops the Studio.
Errors from :mod:`image_studio.errors` become ``{"error": {"type", "message", "field", ...}}``
with the class's HTTP status; request validation errors become 422 with the field named.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..config import Settings
from ..errors import ConfigError, ImageStudioError
from ..studio import Studio
from . import assets, batches, config, generations, jobs, prompts, providers, stats, system, templates, workflows
from . import openai_facade
from .deps import Authenticator
from .schemas import API_PREFIX

log = logging.getLogger("image_studio.api")

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
"""Where ``make ui`` builds the frontend (``frontend/`` with Vite)."""


def web_dir() -> Path:
    """The built UI's folder: ``IMAGE_STUDIO_WEB_DIR`` when set (a build kept elsewhere, e.g.
    by a test run), else :data:`WEB_DIR`."""
    return Path(os.environ["IMAGE_STUDIO_WEB_DIR"]) if os.environ.get("IMAGE_STUDIO_WEB_DIR") else WEB_DIR


def build_router() -> APIRouter:
    """Every route of the API, without a prefix (mount it at ``API_PREFIX``)."""
    router = APIRouter()
    for module in (generations, jobs, assets, providers, config, workflows, system, prompts, templates, batches, stats):
        router.include_router(module.router)
    router.include_router(openai_facade.router)  # /openai/v1/...: OpenAI-shaped errors of its own
    return router


def _field_of(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    """Map the studio's errors and validation errors to JSON bodies with the field at fault."""

    @app.exception_handler(ImageStudioError)
    async def _studio_error(request: Request, exc: ImageStudioError) -> JSONResponse:
        return JSONResponse({"error": exc.to_dict()}, status_code=exc.http_status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, dict) else {"type": "HTTPError", "message": str(exc.detail)}
        return JSONResponse({"error": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        field = _field_of(tuple(first.get("loc", ())))
        body = {"error": {"type": "InvalidRequest", "message": f"{field}: {first.get('msg')}", "field": field},
                "detail": [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors]}
        return JSONResponse(body, status_code=422)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only listens on this machine."""
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_app(settings: Settings | None = None, *, studio: Studio | None = None,
               authenticate: Authenticator | None = None, check_bind: bool = True) -> FastAPI:
    """The standalone app: the API at ``/api/v1/image-studio``, the UI at ``/image-studio/``.

    Raises:
        ConfigError: (at start-up) no API key is configured and ``settings.host`` is not a
            loopback address: an open server would let anyone in as admin.
    """
    studio = studio or Studio(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await studio.start()
        if check_bind and not studio.config.api_keys and not is_loopback(studio.settings.host):
            await studio.stop()
            raise ConfigError(
                f"refusing to listen on {studio.settings.host} with no API key configured: add api_keys "
                "to the config or bind to 127.0.0.1", field="api_keys")
        try:
            yield
        finally:
            await studio.stop(grace=2.0)

    app = FastAPI(title="Image Studio", version=__version__, lifespan=lifespan,
                  openapi_url=f"{API_PREFIX}/openapi.json", docs_url=f"{API_PREFIX}/docs", redoc_url=None)
    app.state.studio = studio
    if authenticate is not None:
        app.state.authenticate = authenticate
    install_error_handlers(app)
    app.include_router(build_router(), prefix=API_PREFIX)
    mount_web(app)
    return app


def mount_web(app: FastAPI) -> None:
    """Serve the built frontend at ``/image-studio/`` when it has been built."""
    folder = web_dir()
    if (folder / "index.html").is_file():
        app.mount("/image-studio", StaticFiles(directory=folder, html=True), name="image-studio-web")

        @app.get("/", include_in_schema=False)
        async def _root() -> RedirectResponse:
            return RedirectResponse("/image-studio/")
