"""The thin edge between the studio and Open WebUI (0.12).

* :mod:`.mount`: ``mount(app)`` adds the studio's API, UI and entry link to
  ``open_webui.main:app`` (``from image_studio.openwebui.mount import mount``);
* :mod:`.settings`: the studio's settings from Open WebUI's ``DATA_DIR``, ``DATABASE_URL`` and
  ``WEBUI_SECRET_KEY``;
* :mod:`.auth`: Open WebUI users as callers, and its image-generation switch and permission;
* :mod:`.entry`: the entry link, through Open WebUI's ``/static/loader.js``;
* :mod:`.launcher` and :mod:`.app`: ``image-studio openwebui``, the real Open WebUI with the
  studio inside (uvicorn on ``image_studio.openwebui.app:app``).

Nothing here imports ``open_webui`` at module level except :mod:`.app`, which is the entry
point for uvicorn: the rest of the package works without Open WebUI installed.
"""
