"""Mount the studio into Open WebUI's own FastAPI app (``open_webui.main:app``).

What :func:`mount` adds, and why (Open WebUI 0.12.4, ``open_webui/main.py``; facts checked by
running it, see ``docs/openwebui-notes.md``):

* the studio's router (:func:`image_studio.api.app.build_router`) at ``/api/v1/image-studio``,
  inside an ``APIRouter(lifespan=...)``: Open WebUI's app has its own lifespan
  (main.py:366-533), so ``on_startup`` handlers never run, but FastAPI merges an included
  router's lifespan into the app's (fastapi/routing.py, ``include_router``): the studio starts
  after Open WebUI and stops before it. If it fails to start (or takes over
  :data:`START_TIMEOUT` seconds), the failure is logged and every studio route answers 503
  with the reason; Open WebUI runs on;
* the asset hooks of :mod:`.files` (every asset of an Open WebUI user is also an Open WebUI
  file, linked to its chat; deleting the asset deletes the file);
* the routes that exist only inside Open WebUI (:mod:`.routes`: ``POST /openwebui/import-config``),
  and, on the studio's first start, the import of Open WebUI's image settings
  (:func:`.import_config.first_start_import`; a failure is logged);
* ``app.state.studio``, ``app.state.authenticate`` (:func:`.auth.authenticate`) and
  ``app.state.generation_gate`` (:func:`.auth.generation_gate`);
* a handler for :class:`~image_studio.errors.ImageStudioError` only (Open WebUI's handlers for
  its own errors stay as they are), and a JSON 404/405 for unknown paths and methods under the
  studio's prefix (they would otherwise fall through to Open WebUI's page);
* the built UI at ``/image-studio/`` (when ``web/index.html`` exists) and the entry link
  (:mod:`.entry`);
* then it moves Open WebUI's final catch-all mount ``spa-static-files`` (main.py:3185-3189,
  which answers ``index.html`` for any path) back to the end, so the routes above are reached.

If anything here fails, :func:`mount` logs it and returns False: Open WebUI still starts.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from ..api.app import WEB_DIR, build_router, web_dir as default_web_dir
from ..api.deps import Authenticator
from ..api.schemas import API_PREFIX
from ..errors import ConfigError, ImageStudioError
from ..studio import Studio
from .entry import install_loader_route

log = logging.getLogger("image_studio.openwebui")

SPA_MOUNT_NAME = "spa-static-files"
UI_PATH = "/image-studio"
UI_MOUNT_NAME = "image-studio-web"
CATCH_ALL_NAME = "image-studio-not-found"
START_TIMEOUT = 120.0
"""Seconds the studio may take to start (migrations on a remote PostgreSQL) before it is
given up and its routes answer 503."""

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]


@dataclass
class StudioState:
    """Whether the studio started; ``error`` is the reason when it did not."""

    ready: bool = False
    error: str | None = "the studio has not started yet"


def mount(app: FastAPI, *, studio: Studio | None = None, authenticate: Authenticator | None = None,
          generation_gate: Any = None, web_dir: Path | None = None) -> bool:
    """Add the studio to Open WebUI's ``app`` (see the module docstring). Call it once, at
    import, before the server starts.

    Args:
        studio: the Studio to serve (default: one built from Open WebUI's ``DATA_DIR``,
            ``DATABASE_URL`` and ``WEBUI_SECRET_KEY``, see :mod:`.settings`).
        authenticate: ``async (Request) -> Principal`` (default :func:`.auth.authenticate`).
        generation_gate: ``async (Request, Principal) -> None`` raising to refuse a
            generation (default :func:`.auth.generation_gate`).
        web_dir: the built UI (served at ``/image-studio/`` when ``index.html`` is there;
            default :func:`image_studio.api.app.web_dir`).

    Returns:
        True when everything was added; False when something failed (logged with its
        traceback; Open WebUI's own routes are left working).
    """
    if getattr(app.state, "image_studio", None) is not None:
        log.warning("Image Studio is already mounted on this app; not mounting it twice")
        return True
    try:
        _mount(app, studio, authenticate, generation_gate, Path(web_dir) if web_dir else default_web_dir())
        return True
    except Exception:  # the studio failing must never stop Open WebUI
        log.exception("Image Studio could not be added to Open WebUI; Open WebUI starts without it")
        return False
    finally:
        move_to_end(app, SPA_MOUNT_NAME)


def _mount(app: FastAPI, studio: Studio | None, authenticate: Authenticator | None, gate: Any,
           web_dir: Path) -> None:
    if studio is None:
        from .settings import settings_from_openwebui

        studio = Studio(settings_from_openwebui())
    if authenticate is None or gate is None:
        from . import auth

        authenticate = authenticate or auth.authenticate
        gate = gate or auth.generation_gate
    state = StudioState()
    app.state.studio = studio
    app.state.authenticate = authenticate
    app.state.generation_gate = gate
    app.state.image_studio = state
    from .files import install as install_asset_files

    install_asset_files(app, studio)
    app.include_router(studio_router(studio, state), prefix=API_PREFIX)
    app.add_exception_handler(ImageStudioError, studio_error_response)
    ui_built = mount_ui(app, web_dir)
    install_loader_route(app, ui_built=ui_built)
    log.info("Image Studio mounted at %s (UI %s)", API_PREFIX, f"at {UI_PATH}/" if ui_built else "not built")


async def studio_error_response(request: Request, exc: ImageStudioError) -> JSONResponse:
    """``{"error": {"type", "message", "field"...}}`` with the error's HTTP status, the shape
    of the standalone studio (:func:`image_studio.api.app.install_error_handlers`)."""
    return JSONResponse({"error": exc.to_dict()}, status_code=exc.http_status)


def studio_router(studio: Studio, state: StudioState) -> APIRouter:
    """Every studio route (no prefix), a lifespan that starts and stops ``studio``, a check
    that answers 503 while it is not running, and a JSON 404/405 for unknown paths."""

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        await _start(studio, state)
        if state.ready:
            await _first_start_import(studio)
        try:
            yield
        finally:
            if state.ready:
                state.ready, state.error = False, "the studio is stopping"
                await studio.stop(grace=2.0)

    async def require_ready() -> None:
        """Raises ConfigError (503) naming why the studio is not running."""
        if not state.ready:
            raise ConfigError(f"Image Studio is not available: {state.error}. See the Open WebUI server log.")

    router = APIRouter(lifespan=lifespan, dependencies=[Depends(require_ready)])
    router.include_router(build_router())
    from .routes import router as openwebui_routes

    router.include_router(openwebui_routes)  # routes that exist only inside Open WebUI
    router.add_api_route("/{path:path}", not_found, methods=_METHODS, include_in_schema=False, name=CATCH_ALL_NAME)
    return router


async def _start(studio: Studio, state: StudioState) -> None:
    """Start ``studio``; on failure log it and keep the reason in ``state``."""
    try:
        await asyncio.wait_for(studio.start(), timeout=START_TIMEOUT)
    except asyncio.TimeoutError:
        state.error = f"it did not start within {START_TIMEOUT:g} s"
        log.error("Image Studio did not start within %g s; its routes answer 503", START_TIMEOUT)
    except Exception as exc:
        state.error = exc.message if isinstance(exc, ImageStudioError) else f"{type(exc).__name__}: {exc}"
        log.exception("Image Studio failed to start; its routes answer 503, Open WebUI runs on")
    else:
        state.ready, state.error = True, None
        log.info("Image Studio started inside Open WebUI: API at %s, assets in %s", API_PREFIX,
                 studio.settings.data_dir)


async def _first_start_import(studio: Studio) -> None:
    """Carry Open WebUI's image settings over once, on the studio's first start inside it
    (:func:`.import_config.first_start_import`); a failure is logged, never raised."""
    from .import_config import FIRST_START_TIMEOUT, first_start_import

    try:
        await asyncio.wait_for(first_start_import(studio), timeout=FIRST_START_TIMEOUT)
    except Exception:  # never stop Open WebUI for this
        log.exception("Image Studio could not import Open WebUI's image settings; import them later with "
                      "`image-studio openwebui import-config` or the settings panel")


async def not_found(request: Request, path: str) -> JSONResponse:
    """404 for an unknown path under the studio's prefix; 405 (with ``Allow``) for a known path
    asked with another method. Same body shape as the studio's other errors."""
    allowed = sorted(set().union(*(methods for pattern, methods in _route_table() if pattern.fullmatch(path))))
    if allowed:
        return JSONResponse({"error": {"type": "MethodNotAllowed", "message": f"{request.method} is not allowed on "
                                       f"{request.url.path}; use {', '.join(allowed)}"}},
                            status_code=405, headers={"Allow": ", ".join(allowed)})
    return JSONResponse({"error": {"type": "NotFound", "message": f"no Image Studio route {request.url.path}",
                                   "field": "path"}}, status_code=404)


@functools.cache
def _route_table() -> list[tuple[re.Pattern[str], set[str]]]:
    """The studio's paths (relative to the prefix, as regexes) and their methods, from the
    OpenAPI document of its router (public API, the same whatever FastAPI's routing internals)."""
    probe = FastAPI()
    probe.include_router(build_router())
    table = []
    for template, operations in probe.openapi().get("paths", {}).items():
        parts = re.split(r"\{[^}]+\}", template.lstrip("/"))
        pattern = re.compile("[^/]+".join(re.escape(p) for p in parts))
        table.append((pattern, {m.upper() for m in operations if m.upper() in _METHODS}))
    return table


def mount_ui(app: FastAPI, web_dir: Path) -> bool:
    """Serve the built UI at ``/image-studio/`` (and redirect ``/image-studio`` there) when
    ``web_dir/index.html`` exists. Returns whether it was mounted."""
    if not (web_dir / "index.html").is_file():
        log.info("Image Studio's UI is not built (%s has no index.html): only the API is mounted", web_dir)
        return False
    app.mount(UI_PATH, StaticFiles(directory=web_dir, html=True), name=UI_MOUNT_NAME)

    async def to_ui() -> RedirectResponse:
        return RedirectResponse(UI_PATH + "/")

    app.add_api_route(UI_PATH, to_ui, methods=["GET"], include_in_schema=False)
    return True


def move_to_end(app: FastAPI, name: str) -> int:
    """Move the routes named ``name`` (Open WebUI's catch-all ``spa-static-files``) to the end
    of ``app.router.routes``. Returns how many were moved."""
    routes = app.router.routes
    found = [r for r in routes if getattr(r, "name", None) == name]
    for route in found:
        routes.remove(route)
        routes.append(route)
    return len(found)
