"""The studio's :class:`~image_studio.config.Settings` inside Open WebUI: one deployment, one config.

Where things live (Open WebUI 0.12 names, read from ``open_webui/env.py``):

* assets: ``<DATA_DIR>/image-studio/assets`` (``DATA_DIR``, env.py:228);
* database: Open WebUI's own database when ``DATABASE_URL`` (env.py:271-301) is PostgreSQL,
  normalised to ``postgresql+psycopg://`` (psycopg 3 ships with Open WebUI, asyncpg does not);
  otherwise our own SQLite file ``image_studio.db`` beside ``webui.db`` (no lock contention
  with Open WebUI's writers). Our tables are prefixed ``image_studio_`` and Alembic keeps its
  own version table ``image_studio_alembic_version`` (see :mod:`image_studio.jobs.migrate`), so
  nothing of Open WebUI's is touched;
* secret key: ``IMAGE_STUDIO_SECRET_KEY`` if set, else Open WebUI's ``WEBUI_SECRET_KEY``, from
  which :class:`~image_studio.crypto.SecretBox` derives a Fernet key with HKDF.

An ``IMAGE_STUDIO_DATA_DIR``, ``IMAGE_STUDIO_DATABASE_URL`` or ``IMAGE_STUDIO_SECRET_KEY`` set
in the environment wins over what is derived from Open WebUI. Everything else
(``IMAGE_STUDIO_CONFIG``, workers, timeouts) is read as in the standalone service.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr

from ..config import Settings

log = logging.getLogger("image_studio.openwebui")

STUDIO_DIR_NAME = "image-studio"
"""Sub-folder of Open WebUI's ``DATA_DIR`` holding the studio's assets."""

DB_FILE_NAME = "image_studio.db"
"""The studio's SQLite file, placed beside Open WebUI's ``webui.db``."""


def _sqlite_file_dir(url: str) -> Path | None:
    """The folder of the database file in a ``sqlite[+driver]:///path`` URL, or None for an
    in-memory or unparsable one."""
    path = unquote(urlsplit(url).path)
    if not path or path in ("/", "/:memory:"):
        return None
    # sqlite:///relative.db has the path "/relative.db", sqlite:////abs/webui.db "//abs/webui.db":
    # either way the file is what follows the first slash.
    return Path(path[1:]).parent.resolve()


def database_url_for(openwebui_url: str, data_dir: Path) -> str:
    """The studio's SQLAlchemy async URL, given Open WebUI's ``DATABASE_URL``.

    * ``postgres://``, ``postgresql://`` and ``postgresql+<any driver>://`` become
      ``postgresql+psycopg://`` with the same credentials, host, database and query;
    * ``sqlite://`` and ``sqlite+<driver>://`` (SQLCipher included) give our own file
      ``image_studio.db`` beside Open WebUI's (in ``data_dir`` for an in-memory URL); ours is
      not encrypted;
    * anything else (MySQL...) also gives our own SQLite file in ``data_dir``, with a warning
      (set ``IMAGE_STUDIO_DATABASE_URL`` to share one database between several nodes).

    Args:
        openwebui_url: Open WebUI's ``open_webui.env.DATABASE_URL``.
        data_dir: Open WebUI's ``DATA_DIR``.
    """
    scheme, sep, rest = openwebui_url.partition("://")
    base = scheme.split("+", 1)[0].lower()
    if sep and base in ("postgres", "postgresql"):
        return "postgresql+psycopg://" + rest
    folder = _sqlite_file_dir(openwebui_url) if sep and base == "sqlite" else None
    if not (sep and base == "sqlite"):
        log.warning("Open WebUI's database is %r, which Image Studio does not share: it keeps its own SQLite "
                    "file in %s (set IMAGE_STUDIO_DATABASE_URL to a PostgreSQL URL to share one database "
                    "between several nodes)", base or "unknown", data_dir)
    folder = folder or Path(data_dir).resolve()
    return f"sqlite+aiosqlite:///{folder / DB_FILE_NAME}"


def studio_settings(*, openwebui_data_dir: Path, openwebui_database_url: str, webui_secret_key: str | None,
                    env: Mapping[str, str] | None = None) -> Settings:
    """The studio's Settings for an Open WebUI with these values.

    ``IMAGE_STUDIO_*`` variables in ``env`` (default ``os.environ``) are read as usual and win;
    ``data_dir`` defaults to ``<openwebui_data_dir>/image-studio``, ``database_url`` to
    :func:`database_url_for`, and ``secret_key`` to ``webui_secret_key`` when the environment
    has no ``WEBUI_SECRET_KEY`` of its own (Open WebUI also accepts the deprecated
    ``WEBUI_JWT_SECRET_KEY``, which :class:`~image_studio.crypto.SecretBox` does not read).

    Raises:
        pydantic.ValidationError: an ``IMAGE_STUDIO_*`` variable has a value of the wrong type.
    """
    env = os.environ if env is None else env
    base = Settings(**_settings_from(env))
    update: dict[str, object] = {}
    if not env.get("IMAGE_STUDIO_DATA_DIR", "").strip():
        update["data_dir"] = Path(openwebui_data_dir) / STUDIO_DIR_NAME
    if not env.get("IMAGE_STUDIO_DATABASE_URL", "").strip():
        update["database_url"] = database_url_for(openwebui_database_url, Path(openwebui_data_dir))
    if base.secret_key is None and webui_secret_key and not env.get("WEBUI_SECRET_KEY", "").strip():
        update["secret_key"] = SecretStr(webui_secret_key)
    return base.model_copy(update=update)


def _settings_from(env: Mapping[str, str]) -> dict[str, str]:
    """``IMAGE_STUDIO_*`` values of ``env`` as Settings keyword arguments (so that a mapping
    other than ``os.environ`` can be used); empty values are left out."""
    prefix = "IMAGE_STUDIO_"
    fields = set(Settings.model_fields)
    out: dict[str, str] = {}
    for name, value in env.items():
        if name.startswith(prefix) and value.strip():
            key = name[len(prefix):].lower()
            if key in fields:
                out[key] = value
    return out


def settings_from_openwebui() -> Settings:
    """The studio's Settings read from the running Open WebUI (``open_webui.env``: ``DATA_DIR``,
    ``DATABASE_URL``, ``WEBUI_SECRET_KEY``). Import only inside Open WebUI.

    Raises:
        ImportError: open_webui is not installed.
    """
    from open_webui import env as owui_env  # lazy: the studio runs without Open WebUI

    settings = studio_settings(openwebui_data_dir=Path(owui_env.DATA_DIR),
                               openwebui_database_url=str(owui_env.DATABASE_URL),
                               webui_secret_key=getattr(owui_env, "WEBUI_SECRET_KEY", None))
    log.info("Image Studio inside Open WebUI: assets in %s, database %s", settings.data_dir,
             _redacted(settings.resolved_database_url))
    return settings


def _redacted(url: str) -> str:
    """``url`` without a password (for logs)."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
