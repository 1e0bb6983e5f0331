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


__all__ = ["EVERYONE", "InstallResult", "access_grants_for", "install_tool"]
