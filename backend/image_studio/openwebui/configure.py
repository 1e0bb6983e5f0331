"""``image-studio openwebui configure``: point Open WebUI's built-in image engine at the studio.

Open WebUI's image engine ``openai`` calls ``{IMAGES_OPENAI_API_BASE_URL}/images/generations``
with ``Bearer IMAGES_OPENAI_API_KEY`` and its edits go to ``{IMAGES_EDIT_OPENAI_API_BASE_URL}
/images/edits`` (``open_webui/routers/images.py:602-685`` and ``1020-1063`` of Open WebUI 0.12.4).
This module writes those settings so that both land on the studio's OpenAI-compatible facade
(``<origin>/api/v1/image-studio/openai/v1``) with a studio ``service`` key.

Two ways to write, chosen by the caller:

* **Through Open WebUI's admin API** (``--token``, preferred): ``GET /api/v1/images/config``
  and ``POST /api/v1/images/config/update`` (``routers/images.py:272-320``) with an admin's
  token, and the studio's own ``GET``/``PUT /api/v1/image-studio/config`` for the service key.
  Open WebUI validates the form, applies its side effects and tells its other workers; the
  running studio saves the key through its ConfigManager (encrypted) and uses it at once; it
  works for a remote Open WebUI and for any database it runs on.
* **In-process on DATA_DIR** (no token): Open WebUI's per-key ``config`` table through its own
  ``open_webui.models.config.Config.get_many`` / ``Config.upsert`` (``models/config.py``), and
  the studio's :class:`~image_studio.studio_config.ConfigManager` on the same DATA_DIR. Open WebUI
  reads its config rows on every request, but a running studio holds its config in memory: when
  this creates a service key, restart Open WebUI (or stop it before configuring).

Both ways save the values they replace to ``DATA_DIR/image-studio/openwebui-image-settings
.backup.json`` (a list of timestamped entries, mode 0600: it holds API keys), show the
difference (old -> new per key, keys masked), refuse to replace settings that are not the
studio's without ``force`` and change nothing when everything is already as asked.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from ..crypto import mask_secret
from ..errors import ConfigError
from .settings import STUDIO_DIR_NAME

FACADE_PATH = "/api/v1/image-studio/openai/v1"
"""The facade's base path under Open WebUI's origin (the studio's prefix plus ``/openai/v1``)."""
DEFAULT_URL = "http://127.0.0.1:8080"
SERVICE_OWNER = "openwebui-service"
"""Owner of the service key this creates: the documented owner of facade jobs that Open WebUI
sends without forwarded user headers."""
DEFAULT_MODEL = "image-studio"
"""Model name written to Open WebUI: a name the facade does not map, so it runs the studio's
default provider and fallback chain (``openai_facade.default``)."""
BACKUP_NAME = "openwebui-image-settings.backup.json"
KEY_PREFIX = "isk-svc-"
HTTP_TIMEOUT = 30.0
"""Seconds allowed for each call to Open WebUI's and the studio's APIs."""

GENERATION_KEYS = ("ENABLE_IMAGE_GENERATION", "IMAGE_GENERATION_ENGINE", "IMAGE_GENERATION_MODEL",
                   "IMAGES_OPENAI_API_BASE_URL", "IMAGES_OPENAI_API_KEY", "IMAGES_OPENAI_API_VERSION",
                   "IMAGES_OPENAI_API_PARAMS")
EDIT_KEYS = ("ENABLE_IMAGE_EDIT", "IMAGE_EDIT_ENGINE", "IMAGE_EDIT_MODEL", "IMAGES_EDIT_OPENAI_API_BASE_URL",
             "IMAGES_EDIT_OPENAI_API_KEY", "IMAGES_EDIT_OPENAI_API_VERSION")
STORAGE_KEYS = {
    "ENABLE_IMAGE_GENERATION": "image_generation.enable", "IMAGE_GENERATION_ENGINE": "image_generation.engine",
    "IMAGE_GENERATION_MODEL": "image_generation.model",
    "IMAGES_OPENAI_API_BASE_URL": "image_generation.openai.api_base_url",
    "IMAGES_OPENAI_API_KEY": "image_generation.openai.api_key",
    "IMAGES_OPENAI_API_VERSION": "image_generation.openai.api_version",
    "IMAGES_OPENAI_API_PARAMS": "image_generation.openai.params",
    "ENABLE_IMAGE_EDIT": "images.edit.enable", "IMAGE_EDIT_ENGINE": "images.edit.engine",
    "IMAGE_EDIT_MODEL": "images.edit.model", "IMAGES_EDIT_OPENAI_API_BASE_URL": "images.edit.openai.api_base_url",
    "IMAGES_EDIT_OPENAI_API_KEY": "images.edit.openai.api_key",
    "IMAGES_EDIT_OPENAI_API_VERSION": "images.edit.openai.api_version",
}
"""Open WebUI's form names and the ``config`` rows they are stored in (the subset of
``IMAGE_CONFIG_KEYS``, ``routers/images.py:67-103``, that this writes)."""
OPENWEBUI_DEFAULTS: dict[str, Any] = {
    "IMAGE_GENERATION_ENGINE": "openai", "IMAGE_EDIT_ENGINE": "openai",
    "IMAGES_OPENAI_API_BASE_URL": "https://api.openai.com/v1",
    "IMAGES_EDIT_OPENAI_API_BASE_URL": "https://api.openai.com/v1",
}
"""Open WebUI's own defaults (``open_webui/config.py:373, 1362, 1514, 1536, 1544``): replacing
one of them (or an empty value, or a switch) is not overwriting an admin's setting."""
SECRET_KEYS = ("IMAGES_OPENAI_API_KEY", "IMAGES_EDIT_OPENAI_API_KEY")


@dataclass(frozen=True)
class Change:
    """One setting to write: its Open WebUI form name, the value now and the value wanted;
    ``conflict`` when the old value is an admin's own, non-studio setting."""

    key: str
    old: Any
    new: Any
    conflict: bool = False

    def render(self) -> str:
        """``KEY: old -> new`` (JSON values, API keys masked) with ``(not the studio's)`` for a conflict."""
        line = f"{self.key}: {_shown(self.key, self.old)} -> {_shown(self.key, self.new)}"
        return line + ("  (not the studio's)" if self.conflict else "")


@dataclass
class Plan:
    """What a configure run would change (empty: nothing to do)."""

    changes: list[Change] = field(default_factory=list)

    @property
    def conflicts(self) -> list[Change]:
        return [c for c in self.changes if c.conflict]

    def render(self) -> list[str]:
        return [c.render() for c in self.changes]

    def updates(self) -> dict[str, Any]:
        return {c.key: c.new for c in self.changes}

    def replaced(self) -> dict[str, Any]:
        return {c.key: c.old for c in self.changes}


@dataclass
class Outcome:
    """The result of a run: the plan, whether it was written, the backup file, a created key."""

    plan: Plan
    applied: bool = False
    refused: bool = False
    backup: Path | None = None
    created_key: bool = False
    notes: list[str] = field(default_factory=list)


def _shown(key: str, value: Any) -> str:
    if key in SECRET_KEYS and isinstance(value, str) and value:
        return json.dumps("****" + value[-4:] if len(value) > 8 else "****")
    return json.dumps(value, sort_keys=True)


def facade_base_url(origin: str) -> str:
    """``<origin>/api/v1/image-studio/openai/v1`` (``origin`` without a trailing slash).

    Raises:
        ConfigError: ``origin`` is not an http(s) URL (field ``--url``).
    """
    origin = origin.strip().rstrip("/")
    if not origin.startswith(("http://", "https://")) or len(origin.split("://", 1)[1]) == 0:
        raise ConfigError(f"{origin!r} is not an http(s) URL such as {DEFAULT_URL}", field="--url")
    return origin + FACADE_PATH


def is_studio_url(url: Any) -> bool:
    """Whether an Open WebUI base URL points at a studio facade (any origin)."""
    return isinstance(url, str) and url.strip().rstrip("/").endswith(FACADE_PATH)


def wanted_settings(*, base_url: str, api_key: str, model: str, params: Mapping[str, Any],
                    edit: bool) -> dict[str, Any]:
    """The Open WebUI form values that route its image engine (and its edits when ``edit``)
    to the facade at ``base_url`` with ``api_key``."""
    wanted: dict[str, Any] = {
        "ENABLE_IMAGE_GENERATION": True, "IMAGE_GENERATION_ENGINE": "openai", "IMAGE_GENERATION_MODEL": model,
        "IMAGES_OPENAI_API_BASE_URL": base_url, "IMAGES_OPENAI_API_KEY": api_key,
        "IMAGES_OPENAI_API_VERSION": "", "IMAGES_OPENAI_API_PARAMS": dict(params),
    }
    if edit:
        wanted.update({
            "ENABLE_IMAGE_EDIT": True, "IMAGE_EDIT_ENGINE": "openai", "IMAGE_EDIT_MODEL": model,
            "IMAGES_EDIT_OPENAI_API_BASE_URL": base_url, "IMAGES_EDIT_OPENAI_API_KEY": api_key,
            "IMAGES_EDIT_OPENAI_API_VERSION": "",
        })
    return wanted


def _is_blank(key: str, value: Any) -> bool:
    return value in (None, "", {}, []) or isinstance(value, bool) or OPENWEBUI_DEFAULTS.get(key) == value


def _normal(value: Any) -> Any:
    """Open WebUI keeps params as a dict or JSON text; compare their meaning."""
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def plan_changes(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> Plan:
    """The changes from Open WebUI's ``current`` form values to ``wanted``.

    A change is a conflict when the old value is neither blank, a switch, Open WebUI's default,
    nor part of a section (generation or edit) that already points at a studio facade.
    """
    owned = {"gen": is_studio_url(current.get("IMAGES_OPENAI_API_BASE_URL")),
             "edit": is_studio_url(current.get("IMAGES_EDIT_OPENAI_API_BASE_URL"))}
    changes = []
    for key, new in wanted.items():
        old = current.get(key)
        if _normal(old) == _normal(new):
            continue
        section = "edit" if key in EDIT_KEYS else "gen"
        changes.append(Change(key, old, new, conflict=not owned[section] and not _is_blank(key, old)))
    return Plan(changes)


def backup_path(data_dir: Path) -> Path:
    """``DATA_DIR/image-studio/openwebui-image-settings.backup.json``."""
    return Path(data_dir) / STUDIO_DIR_NAME / BACKUP_NAME


def write_backup(data_dir: Path, plan: Plan, *, target: str, now: datetime | None = None) -> Path:
    """Append the values ``plan`` replaces to the backup file (a JSON list of ``{saved_at
    (ISO 8601 UTC), target, settings: {form name: old value}}``), mode 0600; earlier entries
    are kept, so the first one holds the settings before the studio was ever configured.

    Raises:
        ConfigError: the file cannot be read or written (field ``DATA_DIR``).
    """
    path = backup_path(data_dir)
    stamp = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        entries = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
        if not isinstance(entries, list):
            raise ConfigError(f"{path} is not a list of backups; move it away", field="DATA_DIR")
        entries.append({"saved_at": stamp, "target": target, "settings": plan.replaced()})
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(entries, f, indent=2, sort_keys=True, default=str)
        os.replace(tmp, path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot write the backup {path}: {exc}", field="DATA_DIR") from exc
    return path


def new_service_key() -> str:
    """A new random studio service key (``isk-svc-`` and 43 URL-safe characters, 256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def service_entries(api_keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``api_keys`` entries this command manages (role ``service``, owner ``openwebui-service``)."""
    return [k for k in api_keys if k.get("role") == "service" and k.get("owner") == SERVICE_OWNER]


def with_service_key(api_keys: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """``api_keys`` with the managed entries replaced by one holding ``key`` (other keys kept)."""
    others = [k for k in api_keys if k not in service_entries(api_keys)]
    return [*others, {"key": key, "role": "service", "owner": SERVICE_OWNER}]


def decide(outcome: Outcome, *, force: bool) -> bool:
    """Whether to write: False (and ``outcome.refused`` set) for conflicts without ``force``,
    False when there is nothing to change."""
    if not outcome.plan.changes:
        return False
    if outcome.plan.conflicts and not force:
        outcome.refused = True
        return False
    return True



def _wanted(current: Mapping[str, Any], key: str, *, base_url: str, model: str, params: Mapping[str, Any] | None,
            edit: bool) -> dict[str, Any]:
    """:func:`wanted_settings` for this run; ``params`` None keeps the studio's current params
    (when generation already points at a studio facade; else ``{}``)."""
    if params is None:
        kept = _normal(current.get("IMAGES_OPENAI_API_PARAMS")) if is_studio_url(
            current.get("IMAGES_OPENAI_API_BASE_URL")) else None
        params = kept if isinstance(kept, dict) else {}
    wanted = wanted_settings(base_url=base_url, api_key=key, model=model, params=params, edit=edit)
    if not edit and is_studio_url(current.get("IMAGES_EDIT_OPENAI_API_BASE_URL")):
        wanted["IMAGES_EDIT_OPENAI_API_KEY"] = key  # edits already on the studio: keep their key valid
    return wanted


async def _call(client: httpx.AsyncClient, method: str, path: str, **kw: Any) -> Any:
    """One JSON call to Open WebUI (or the studio inside it).

    Raises:
        ConfigError: no answer, or an error status (field ``--url`` for transport errors and
            404, ``--token`` for 401/403, else the path).
    """
    try:
        r = await client.request(method, path, **kw)
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot reach {client.base_url}{path}: {exc}", field="--url") from exc
    if r.status_code in (401, 403):
        raise ConfigError(f"{method} {path} answered {r.status_code}: --token must be an Open WebUI admin's token "
                          "(Settings > Account > API keys, or the token cookie)", field="--token")
    if r.status_code == 404:
        raise ConfigError(f"{method} {path} answered 404: is {client.base_url} an Open WebUI with the studio "
                          "inside (image-studio openwebui)?", field="--url")
    if r.status_code >= 400:
        raise ConfigError(f"{method} {path} answered {r.status_code}: {r.text[:300]}", field=path)
    return r.json()


async def _valid_facade_key(client: httpx.AsyncClient, key: str) -> bool:
    """Whether the facade accepts ``key`` (``GET .../openai/v1/models`` answers 200)."""
    try:
        r = await client.get(FACADE_PATH + "/models", headers={"Authorization": f"Bearer {key}"})
    except httpx.HTTPError:
        return False
    return r.status_code == 200


async def configure_via_api(url: str, token: str, *, data_dir: Path, model: str = DEFAULT_MODEL,
                            params: Mapping[str, Any] | None = None, edit: bool = False, force: bool = False,
                            base_url: str | None = None,
                            transport: httpx.AsyncBaseTransport | None = None) -> Outcome:
    """Configure a running Open WebUI (with the studio inside) through its admin API.

    Reads ``GET /api/v1/images/config`` and the studio's ``GET /api/v1/image-studio/config``;
    keeps Open WebUI's current key when it is the studio's managed service key and the facade
    accepts it, else makes a new one (saved with ``PUT /api/v1/image-studio/config`` only when
    the settings are written). Writes with ``POST /api/v1/images/config/update`` (the full
    form: Open WebUI's model requires every field) after the backup in ``data_dir``.

    Args:
        url: Open WebUI's origin, as this machine reaches it. base_url: the facade base URL
            Open WebUI itself should call (default ``url`` + :data:`FACADE_PATH`).
        token: an Open WebUI admin's token or ``sk-`` API key. transport: for tests.

    Raises:
        ConfigError: Open WebUI unreachable, the token refused, or an answer that does not
            hold what was written (field named).
    """
    base_url = base_url or facade_base_url(url)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=HTTP_TIMEOUT,
                                 transport=transport) as client:
        current = await _call(client, "GET", "/api/v1/images/config")
        studio_config = (await _call(client, "GET", "/api/v1/image-studio/config"))["config"]
        key = current.get("IMAGES_OPENAI_API_KEY") or ""
        managed = {e.get("key") for e in service_entries(studio_config.get("api_keys") or [])}
        create = not (key and mask_secret(key) in managed and await _valid_facade_key(client, key))
        key = new_service_key() if create else key
        outcome = Outcome(plan_changes(current, _wanted(current, key, base_url=base_url, model=model,
                                                        params=params, edit=edit)))
        if not decide(outcome, force=force):
            return outcome
        if create:
            api_keys = with_service_key(studio_config.get("api_keys") or [], key)
            await _call(client, "PUT", "/api/v1/image-studio/config", json={**studio_config, "api_keys": api_keys})
            outcome.created_key = True
        outcome.backup = write_backup(data_dir, outcome.plan, target=url)
        saved = await _call(client, "POST", "/api/v1/images/config/update", json={**current, **outcome.plan.updates()})
        for change in outcome.plan.changes:
            kept = saved.get(change.key)
            if _normal(kept) != _normal(change.new):
                raise ConfigError(f"Open WebUI did not keep {change.key} (it answered {_shown(change.key, kept)})",
                                  field=change.key)
        outcome.applied = True
    return outcome


async def configure_in_process(data_dir: Path | None, *, url: str = DEFAULT_URL, model: str = DEFAULT_MODEL,
                               params: Mapping[str, Any] | None = None, edit: bool = False, force: bool = False,
                               base_url: str | None = None) -> Outcome:
    """Configure Open WebUI's DATA_DIR directly: its ``config`` rows with Open WebUI's own
    ``Config`` model, the service key with the studio's ConfigManager (encrypted with the key
    derived from ``WEBUI_SECRET_KEY``). Needs ``open_webui`` importable and a DATA_DIR that
    Open WebUI has started on once. A running Open WebUI must be restarted when a key was
    created (``outcome.created_key``): its studio keeps its config in memory.

    Raises:
        ConfigError: DATA_DIR has no Open WebUI database, ``open_webui`` is missing, or the
            studio's saved config cannot be decrypted (field named).
    """
    from .launcher import SECRET_FILE_NAME, prepare_environment

    folder = Path(data_dir or os.environ.get("DATA_DIR") or "data/openwebui").expanduser().resolve()
    if not os.environ.get("DATABASE_URL") and not (folder / "webui.db").is_file():
        raise ConfigError(f"{folder} holds no Open WebUI database (webui.db): start Open WebUI once on it, or "
                          "give --url and --token to configure a running one", field="--data-dir")
    if not (folder / SECRET_FILE_NAME).is_file() and not os.environ.get("WEBUI_SECRET_KEY"):
        raise ConfigError(f"no WEBUI_SECRET_KEY and no {SECRET_FILE_NAME} in {folder}", field="WEBUI_SECRET_KEY")
    prepare_environment(folder)
    try:
        from open_webui.models.config import Config
    except ImportError as exc:
        raise ConfigError("open_webui is not installed here: run this with Open WebUI's Python, or give --url "
                          "and --token", field="--data-dir") from exc
    rows = await Config.get_many(*STORAGE_KEYS.values())
    current = {form: rows.get(storage) for form, storage in STORAGE_KEYS.items()}
    return await _write_in_process(Config, current, folder, url=url, model=model, params=params, edit=edit,
                                   force=force, base_url=base_url or facade_base_url(url))


async def _write_in_process(config_model: Any, current: dict[str, Any], folder: Path, *, url: str, model: str,
                            params: Mapping[str, Any] | None, edit: bool, force: bool, base_url: str) -> Outcome:
    from ..jobs.store import JobStore
    from ..studio_config import ConfigManager
    from .settings import settings_from_openwebui

    settings = settings_from_openwebui()
    store = JobStore(settings.resolved_database_url)
    await store.open()
    try:
        manager = ConfigManager(settings, store)
        await manager.load()
        key = current.get("IMAGES_OPENAI_API_KEY") or ""
        create = not any(k.role == "service" and k.owner == SERVICE_OWNER and k.key.get_secret_value() == key
                         for k in manager.current.api_keys) or not key
        key = new_service_key() if create else key
        outcome = Outcome(plan_changes(current, _wanted(current, key, base_url=base_url, model=model, params=params,
                                                        edit=edit)))
        if not decide(outcome, force=force):
            return outcome
        if create:
            public = manager.public()
            await manager.save({**public, "api_keys": with_service_key(public.get("api_keys") or [], key)})
            outcome.created_key = True
            outcome.notes.append("a new service key was saved: restart a running Open WebUI so its studio uses it")
        outcome.backup = write_backup(folder, outcome.plan, target=str(folder))
        await config_model.upsert({STORAGE_KEYS[k]: v for k, v in outcome.plan.updates().items()})
        outcome.applied = True
        return outcome
    finally:
        await store.close()


__all__ = ["Change", "Outcome", "Plan", "DEFAULT_MODEL", "DEFAULT_URL", "FACADE_PATH", "SERVICE_OWNER",
           "backup_path", "decide", "facade_base_url", "is_studio_url", "new_service_key", "plan_changes",
           "service_entries", "wanted_settings", "with_service_key", "write_backup", "configure_via_api",
           "configure_in_process"]
