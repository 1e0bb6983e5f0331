"""The entry link to the studio inside Open WebUI's pages, through ``/static/loader.js``.

Why this way (Open WebUI 0.12.4): its ``index.html`` loads ``/static/loader.js`` on every page
(``frontend/index.html:38``, ``<script src="/static/loader.js" defer>``), a file it ships empty
as the place for site customisation. Open WebUI has no other hook for a script or a menu entry
(its ``ui.*`` settings hold banners and texts only), and it rewrites the top-level files of
``static/`` at every import (``config.py:99-149``), so writing into that folder would not last.
:func:`install_loader_route` therefore serves ``/static/loader.js`` from a route placed before
Open WebUI's ``/static`` mount (named ``static``, ``main.py:3137``): Open WebUI's own
``loader.js`` (read once, at mount time, from that mount's folder) followed by
:data:`ENTRY_SCRIPT`, a fixed "Image Studio" link shown to signed-in users (the studio's own
routes check permissions). Without a built UI only Open WebUI's file is served.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import Response

log = logging.getLogger("image_studio.openwebui")

LOADER_PATH = "/static/loader.js"
STATIC_MOUNT_NAME = "static"
ROUTE_NAME = "image-studio-loader"

ENTRY_SCRIPT = r"""
/* Image Studio entry link: appended to Open WebUI's loader.js by image_studio.openwebui */
(function () {
  "use strict";
  var ID = "image-studio-entry";
  var HREF = "/image-studio/";
  function signedIn() {
    try { return !!window.localStorage.getItem("token"); } catch (e) { return false; }
  }
  function sync() {
    var link = document.getElementById(ID);
    var show = signedIn() && !/^\/auth/.test(window.location.pathname);
    if (!show) { if (link) { link.remove(); } return; }
    if (link || !document.body) { return; }
    link = document.createElement("a");
    link.id = ID;
    link.href = HREF;
    link.textContent = "Image Studio";
    link.title = "Open Image Studio: generate images and videos, gallery, workflows";
    link.style.cssText = "position:fixed;right:14px;bottom:14px;z-index:40;padding:5px 12px;" +
      "border-radius:9999px;font:500 13px/1.5 system-ui,sans-serif;text-decoration:none;color:#fff;" +
      "background:rgba(23,23,23,.82);box-shadow:0 1px 4px rgba(0,0,0,.3)";
    document.body.appendChild(link);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", sync); } else { sync(); }
  window.setInterval(sync, 1000);
})();
"""

NO_UI_NOTE = "\n/* Image Studio: its UI is not built, so no entry link is added */\n"


def _static_dir(app: FastAPI) -> Path | None:
    """The folder behind Open WebUI's ``/static`` mount, if there is one."""
    for route in app.router.routes:
        if getattr(route, "name", None) == STATIC_MOUNT_NAME:
            directory = getattr(getattr(route, "app", None), "directory", None)
            return Path(directory) if directory else None
    return None


def loader_body(original: str, *, ui_built: bool) -> str:
    """The ``loader.js`` to serve: ``original`` (Open WebUI's file) then the entry script, or a
    note when the UI is not built."""
    return original.rstrip("\n") + "\n" + (ENTRY_SCRIPT if ui_built else NO_UI_NOTE)


def install_loader_route(app: FastAPI, *, ui_built: bool) -> int:
    """Serve ``/static/loader.js`` from a route placed just before Open WebUI's ``/static`` mount.

    Returns:
        The index of the new route in ``app.router.routes``.
    """
    static_dir = _static_dir(app)
    original = ""
    if static_dir is not None and (static_dir / "loader.js").is_file():
        original = (static_dir / "loader.js").read_text(encoding="utf-8", errors="replace")
    body = loader_body(original, ui_built=ui_built)

    async def loader_js() -> Response:
        return Response(body, media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    app.add_api_route(LOADER_PATH, loader_js, methods=["GET"], include_in_schema=False, name=ROUTE_NAME)
    routes = app.router.routes
    route = next(r for r in reversed(routes) if getattr(r, "name", None) == ROUTE_NAME)
    routes.remove(route)
    index = next((i for i, r in enumerate(routes) if getattr(r, "name", None) == STATIC_MOUNT_NAME), None)
    if index is None:
        log.warning("Open WebUI's /static mount was not found: %s is served by the studio's route alone", LOADER_PATH)
        index = len(routes)
    routes.insert(index, route)
    return index
