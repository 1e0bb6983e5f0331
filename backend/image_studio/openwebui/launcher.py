"""``image-studio openwebui``: the real Open WebUI with the studio inside.

It does what ``open-webui serve`` does (``open_webui/__init__.py:38-94`` in 0.12.4): sets
``FROM_INIT_PY=true`` (for a pip-installed Open WebUI, without it ``open_webui.config`` refuses
to import; an explicit value is kept, as in Open WebUI's Docker image), a persistent
``WEBUI_SECRET_KEY`` (required, env.py:770-796) and an existing ``DATA_DIR``, reads
``UVICORN_WORKERS`` and ``UVICORN_WS_PER_MESSAGE_DEFLATE``; then it runs uvicorn on our own
import string :data:`APP_IMPORT` instead of ``open_webui.main:app``, so that every worker
process imports Open WebUI's app with the studio mounted.

Differences from ``open-webui serve``: the secret key file lives in ``DATA_DIR`` (not the
current directory) so that data and key travel together; the default address is 127.0.0.1
(``--host 0.0.0.0`` to listen on every interface); ``FORWARDED_ALLOW_IPS`` is uvicorn's
default (127.0.0.1) unless set.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import importlib.util
import logging
import os
import secrets
from collections.abc import Callable, MutableMapping
from pathlib import Path

from ..errors import ConfigError

log = logging.getLogger("image_studio.openwebui")

APP_IMPORT = "image_studio.openwebui.app:app"
DEFAULT_DATA_DIR = Path("data/openwebui")
SECRET_FILE_NAME = ".webui_secret_key"
SECRET_BYTES = 24
"""Random bytes in a new ``WEBUI_SECRET_KEY`` (base64-encoded), as ``open-webui serve``."""


def load_or_create_secret(data_dir: Path) -> str:
    """The Open WebUI secret key kept in ``data_dir/.webui_secret_key``, created once (24
    random bytes, base64, mode 0600) when missing.

    Raises:
        ConfigError: the file cannot be read or written, or is empty (field ``DATA_DIR``).
    """
    path = Path(data_dir) / SECRET_FILE_NAME
    try:
        if not path.exists():
            key = base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(key)
            log.info("created a new WEBUI_SECRET_KEY in %s", path)
        key = path.read_text(encoding="utf-8").strip()
    except FileExistsError:  # another launcher created it between exists() and open()
        key = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read or create the secret key file {path}: {exc.strerror or exc}",
                          field="DATA_DIR") from exc
    if not key:
        raise ConfigError(f"the secret key file {path} is empty: delete it to make a new key", field="DATA_DIR")
    return key


def prepare_environment(data_dir: Path | None = None, *, offline: bool = False,
                        env: MutableMapping[str, str] | None = None) -> Path:
    """Set what Open WebUI needs before its import, in ``env`` (default ``os.environ``).

    * ``FROM_INIT_PY=true`` unless set (Open WebUI's Docker image keeps ``false``: its frontend
      is in ``/app/build``, not inside the package);
    * ``DATA_DIR``: ``data_dir``, else ``$DATA_DIR``, else ``./data/openwebui``; made absolute
      and created;
    * ``WEBUI_SECRET_KEY``: kept when set, else :func:`load_or_create_secret` in ``DATA_DIR``;
    * ``OFFLINE_MODE=true`` when ``offline`` (no model downloads, no pip installs of tool
      requirements, no version check).

    Returns:
        The absolute ``DATA_DIR``.

    Raises:
        ConfigError: ``DATA_DIR`` cannot be created, or the key file is unusable.
    """
    env = os.environ if env is None else env
    chosen = Path(data_dir) if data_dir is not None else Path(env.get("DATA_DIR") or DEFAULT_DATA_DIR)
    chosen = chosen.expanduser().resolve()
    try:
        chosen.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the data folder {chosen}: {exc.strerror or exc}", field="DATA_DIR") from exc
    env.setdefault("FROM_INIT_PY", "true")
    env["DATA_DIR"] = str(chosen)
    if not env.get("WEBUI_SECRET_KEY", "").strip():
        env["WEBUI_SECRET_KEY"] = load_or_create_secret(chosen)
    if offline:
        env["OFFLINE_MODE"] = "true"
    return chosen


def _workers(workers: int | None, env: MutableMapping[str, str]) -> int:
    if workers is not None:
        return max(workers, 1)
    try:
        return max(int(env.get("UVICORN_WORKERS", "1")), 1)
    except ValueError:
        return 1


def _migrate_once() -> None:
    """With several workers: run Open WebUI's migrations (its import) and the studio's once,
    here, instead of in every worker at the same time (as ``open-webui serve`` does)."""
    importlib.import_module("open_webui.main")
    from ..jobs.store import JobStore
    from .settings import settings_from_openwebui

    async def migrate() -> None:
        store = JobStore(settings_from_openwebui().resolved_database_url)
        await store.open()
        await store.close()

    asyncio.run(migrate())


def run(*, host: str = "127.0.0.1", port: int = 8080, workers: int | None = None, data_dir: Path | None = None,
        offline: bool = False, announce: Callable[[Path], None] | None = None) -> None:
    """Prepare the environment and serve Open WebUI with the studio on ``host:port`` (blocks).

    Args:
        workers: uvicorn worker processes (default ``$UVICORN_WORKERS`` or 1). With more than
            one, each runs its own embedded job queue: a job's live events reach only clients
            served by the same worker, so keep 1 until the scaled-out queue exists.
        announce: called with the absolute ``DATA_DIR`` once the environment is ready, just
            before the (slow) import of Open WebUI.

    Raises:
        ConfigError: open_webui is not installed (field ``openwebui``), or from
            :func:`prepare_environment`.
    """
    if importlib.util.find_spec("open_webui") is None:
        raise ConfigError("Open WebUI is not installed here: pip install 'open-webui-image-studio[openwebui]' "
                          "(or `make run-openwebui`)", field="openwebui")
    import uvicorn

    folder = prepare_environment(data_dir, offline=offline)
    count = _workers(workers, os.environ)
    if announce is not None:
        announce(folder)
    if count > 1:
        log.warning("%d workers: each runs its own job queue; live job events reach only the clients of the "
                    "worker that runs the job", count)
        _migrate_once()
    deflate = os.environ.get("UVICORN_WS_PER_MESSAGE_DEFLATE", "True").lower() == "true"
    uvicorn.run(APP_IMPORT, host=host, port=port, workers=count, ws_per_message_deflate=deflate)
