"""``image_studio.openwebui.app:app``: Open WebUI's app with the studio mounted.

The uvicorn import string of ``image-studio openwebui`` (:mod:`.launcher`): every worker process
imports this module, so every worker has the studio. Importing it imports ``open_webui.main``,
which needs ``FROM_INIT_PY=true``, an existing ``DATA_DIR`` and ``WEBUI_SECRET_KEY`` (the
launcher sets them) and runs Open WebUI's migrations on ``DATA_DIR``.
"""

from __future__ import annotations

from open_webui.main import app

from .mount import mount

mount(app)

__all__ = ["app"]
