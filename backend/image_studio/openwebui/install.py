"""Install Image Studio's plugins into a running Open WebUI through its own HTTP API.

``image-studio openwebui install-tools`` calls :func:`install_tool`. It needs an admin's token
(``Authorization: Bearer``: a session token or an ``sk-`` API key). Wire format followed,
Open WebUI 0.12.4 ``open_webui/routers/tools.py``:

* ``GET /api/v1/tools/id/{id}`` (line 475): 200 with the tool, 404 when there is none;
* ``POST /api/v1/tools/create`` (line 386), body ``ToolForm`` (``models/tools.py:95``):
  ``{id, name, content, meta: {description, manifest}, access_grants}``; Open WebUI parses the
  source, stores its front matter as ``meta.manifest`` and its functions as specs;
* ``POST /api/v1/tools/id/{id}/update`` (line 524), the same body; ``access_grants`` is
  ignored there, so they are set with ``POST /api/v1/tools/id/{id}/access/update`` (line 624),
  body ``{access_grants: [...]}``;
* an access grant is ``{principal_type: 'user' | 'group', principal_id, permission: 'read' |
  'write'}``; ``principal_type 'user'`` with ``principal_id '*'`` is everyone
  (``utils/access_control/__init__.py`` ``filter_allowed_access_grants``).

Who may *generate* is still decided at call time by Open WebUI's image switch and the
``features.image_generation`` permission (:func:`image_studio.openwebui.auth.generation_gate`):
the grant only makes the tool visible in the chat's tool list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from ..errors import ConfigError
from .plugins import TOOL_ID, TOOL_NAME, plugin_description, plugin_source

EVERYONE: list[dict[str, str]] = [{"principal_type": "user", "principal_id": "*", "permission": "read"}]
"""The access grants that share a tool with every user (read = may use it)."""

TIMEOUT = 60.0
"""Seconds for each call to Open WebUI (creating a tool makes it parse and load the source)."""


@dataclass
class InstallResult:
    """What :func:`install_tool` did: ``action`` is ``created`` or ``updated``."""

    id: str
    action: str
    access_grants: list[dict[str, Any]] = field(default_factory=list)


def access_grants_for(groups: list[str] | None) -> list[dict[str, str]]:
    """Read grants for the Open WebUI group ids given, or for everyone when there are none."""
    if not groups:
        return [dict(g) for g in EVERYONE]
    return [{"principal_type": "group", "principal_id": g, "permission": "read"} for g in groups]


def _check(response: httpx.Response, what: str) -> dict[str, Any]:
    """The JSON body of a 2xx answer.

    Raises:
        ConfigError: 401/403 (field ``token``: not an admin token) or any other error status
            (field ``url``), with Open WebUI's ``detail``.
    """
    if response.is_success:
        return response.json() if response.content else {}
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = response.text[:300]
    if response.status_code in (401, 403):
        raise ConfigError(f"Open WebUI refused to {what} ({response.status_code}: {detail}): use an admin's token",
                          field="token")
    raise ConfigError(f"Open WebUI could not {what} ({response.status_code}: {detail})", field="url")


def install_tool(url: str, token: str, *, groups: list[str] | None = None, tool_id: str = TOOL_ID,
                 client: httpx.Client | None = None) -> InstallResult:
    """Create the Tool ``tool_id`` in the Open WebUI at ``url``, or update it when it exists,
    and share it (everyone, or the ``groups`` given).

    Args:
        url: Open WebUI's base URL, such as ``http://127.0.0.1:8080``.
        token: an admin's Bearer token or ``sk-`` API key.
        groups: Open WebUI group ids to share with instead of everyone.
        client: an ``httpx.Client`` to use (its base URL and headers are ignored).

    Raises:
        ConfigError: Open WebUI cannot be reached (field ``url``), the token is not an admin's
            (field ``token``), or it rejected the tool source (field ``url``).
    """
    if not token:
        raise ConfigError("an Open WebUI admin token is needed (--token or OPENWEBUI_TOKEN)", field="token")
    source = plugin_source(TOOL_ID)
    body = {"id": tool_id, "name": TOOL_NAME, "content": source,
            "meta": {"description": plugin_description(source), "manifest": {}}}
    grants = access_grants_for(groups)
    headers = {"Authorization": f"Bearer {token}"}
    base = url.rstrip("/") + "/api/v1/tools"
    owned = client is None
    http = client or httpx.Client(timeout=TIMEOUT)
    try:
        existing = http.get(f"{base}/id/{tool_id}", headers=headers, timeout=TIMEOUT)
        if existing.status_code == 404:
            _check(http.post(f"{base}/create", json={**body, "access_grants": grants}, headers=headers,
                             timeout=TIMEOUT), "create the tool")
            action = "created"
        else:
            _check(existing, "read the tool")
            _check(http.post(f"{base}/id/{tool_id}/update", json=body, headers=headers, timeout=TIMEOUT),
                   "update the tool")
            action = "updated"
        saved = _check(http.post(f"{base}/id/{tool_id}/access/update", json={"access_grants": grants},
                                 headers=headers, timeout=TIMEOUT), "share the tool")
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot reach Open WebUI at {url}: {exc}", field="url") from exc
    finally:
        if owned:
            http.close()
    return InstallResult(id=tool_id, action=action, access_grants=saved.get("access_grants") or grants)


# Functions: the Pipe and the Action ------------------------------------------------------------
#
# Wire format, Open WebUI 0.12.4 ``open_webui/routers/functions.py`` (admin only):
# ``GET /api/v1/functions/list`` (line 58; ``/id/{id}`` answers a missing one with 401, like a
# non-admin, so the list tells them apart), ``POST /create`` (207)
# and ``POST /id/{id}/update`` (384), body ``FunctionForm`` (``models/functions.py:104``:
# ``{id, name, content, meta: {description, manifest}}``; the type comes from the class);
# ``POST /id/{id}/toggle`` (293) and ``/id/{id}/toggle/global`` (347) *flip* ``is_active`` and
# ``is_global``, so they are called only when the flag is not yet as wanted. A Pipe's models
# without a model entry are seen by admins only (``utils/models.py`` ``get_filtered_models``):
# they are shared with ``POST /api/v1/models/model/access/update`` (``routers/models.py:1226``,
# ``{id, name, access_grants}``, which creates the entry when it is missing).


@dataclass
class FunctionResult:
    """What :func:`install_function` did: ``action`` is ``created`` or ``updated``;
    ``models`` the Pipe's model ids shared (empty for the Action)."""

    id: str
    action: str
    is_active: bool
    is_global: bool
    models: list[str] = field(default_factory=list)


def _ensure_flag(http: httpx.Client, base: str, function_id: str, headers: dict[str, str], current: dict[str, Any],
                 flag: str, path: str) -> dict[str, Any]:
    """Call the toggle ``path`` when ``current[flag]`` is false; the function as it then is."""
    if current.get(flag):
        return current
    return _check(http.post(f"{base}/id/{function_id}/{path}", headers=headers, timeout=TIMEOUT),
                  f"turn on {flag} of function {function_id}")


def _share_pipe_models(http: httpx.Client, url: str, function_id: str, headers: dict[str, str],
                       grants: list[dict[str, str]]) -> list[str]:
    """Give every model of the Pipe ``function_id`` in ``GET /api/models`` the ``grants``."""
    listed = _check(http.get(url.rstrip("/") + "/api/models", headers=headers, timeout=TIMEOUT), "list the models")
    shared = []
    for model in listed.get("data") or []:
        if not str(model.get("id", "")).startswith(function_id + ".") or not model.get("pipe"):
            continue
        _check(http.post(url.rstrip("/") + "/api/v1/models/model/access/update", headers=headers, timeout=TIMEOUT,
                         json={"id": model["id"], "name": model.get("name") or model["id"], "access_grants": grants}),
               f"share the model {model['id']}")
        shared.append(model["id"])
    return shared


def install_function(url: str, token: str, function_id: str, *, groups: list[str] | None = None,
                     client: httpx.Client | None = None) -> FunctionResult:
    """Create or update the Image Studio function ``function_id`` (:data:`.plugins.PIPE_ID` or
    :data:`.plugins.ACTION_ID`) in the Open WebUI at ``url`` and turn it on; the Action is made
    global (its button under every message), the Pipe's models are shared with everyone (or the
    ``groups``). Run again after adding providers or workflows to share their models.

    Raises:
        ConfigError: as :func:`install_tool`; KeyError: an unknown ``function_id``.
    """
    from .plugins import ACTION_ID, ACTION_NAME, PIPE_ID, PIPE_NAME, function_source

    if not token:
        raise ConfigError("an Open WebUI admin token is needed (--token or OPENWEBUI_TOKEN)", field="token")
    source = function_source(function_id)
    name = {PIPE_ID: PIPE_NAME, ACTION_ID: ACTION_NAME}[function_id]
    body = {"id": function_id, "name": name, "content": source,
            "meta": {"description": plugin_description(source), "manifest": {}}}
    headers = {"Authorization": f"Bearer {token}"}
    base = url.rstrip("/") + "/api/v1/functions"
    owned = client is None
    http = client or httpx.Client(timeout=TIMEOUT)
    try:
        listed = _check(http.get(f"{base}/list", headers=headers, timeout=TIMEOUT), "list the functions")
        if function_id not in {f.get("id") for f in listed or []}:
            current = _check(http.post(f"{base}/create", json=body, headers=headers, timeout=TIMEOUT),
                             f"create the function {function_id}")
            action = "created"
        else:
            current = _check(http.post(f"{base}/id/{function_id}/update", json=body, headers=headers,
                                       timeout=TIMEOUT), f"update the function {function_id}")
            action = "updated"
        current = _ensure_flag(http, base, function_id, headers, current, "is_active", "toggle")
        if function_id == ACTION_ID:
            current = _ensure_flag(http, base, function_id, headers, current, "is_global", "toggle/global")
        models = (_share_pipe_models(http, url, function_id, headers, access_grants_for(groups))
                  if function_id == PIPE_ID else [])
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot reach Open WebUI at {url}: {exc}", field="url") from exc
    finally:
        if owned:
            http.close()
    return FunctionResult(id=function_id, action=action, is_active=bool(current.get("is_active")),
                          is_global=bool(current.get("is_global")), models=models)


def install_functions(url: str, token: str, *, groups: list[str] | None = None,
                      client: httpx.Client | None = None) -> list[FunctionResult]:
    """:func:`install_function` for the Pipe, then the Action."""
    from .plugins import FUNCTION_SOURCES

    return [install_function(url, token, fid, groups=groups, client=client) for fid in FUNCTION_SOURCES]


__all__ = ["EVERYONE", "FunctionResult", "InstallResult", "access_grants_for", "install_function",
           "install_functions", "install_tool"]
