"""Annotated FastAPI dependencies: the Studio, the caller (a :class:`Principal`), admin checks.

Who the caller is depends on the host:

* Standalone (:func:`standalone_auth`): API keys from the config, each with a role and an owner
  name, sent as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. With no key
  configured every caller is the local admin; :func:`image_studio.api.app.create_app` refuses
  that unless the server is bound to a loopback address.
* Inside Open WebUI the edge installs its own authenticator on ``app.state`` (Open WebUI's
  ``get_verified_user``), so the routes here never import ``open_webui``.

Roles: ``admin`` sees every job and asset and edits the config; ``user`` sees its own.
A non-admin on an admin route gets 403; a missing or wrong key gets 401. ``service`` is a
user-level key for a trusted front end: on the OpenAI-compatible facade it acts for the user
Open WebUI forwards (:func:`get_acting_principal`).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from ..studio import Studio

LOCAL_ADMIN = "local-admin"


@dataclass(frozen=True)
class Principal:
    """The caller. ``owner`` names whose jobs and assets they are; ``role`` admin or user."""

    owner: str
    role: str = "user"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_service(self) -> bool:
        """A service key (a trusted front end such as Open WebUI): may act for a forwarded user."""
        return self.role == "service"

    @property
    def scope(self) -> str | None:
        """The owner filter for listings: None (everything) for admins."""
        return None if self.is_admin else self.owner


Authenticator = Callable[[Request], Awaitable[Principal]]


def get_studio(request: Request) -> Studio:
    return request.app.state.studio


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("x-api-key") or request.query_params.get("api_key")


async def standalone_auth(request: Request) -> Principal:
    """Authenticate by API key against the current config (keys edited at run time apply at
    once). ``?api_key=`` is accepted for EventSource and <img> URLs, which cannot set headers.

    Raises:
        HTTPException: 401 when keys are configured and none or a wrong one is presented.
    """
    studio: Studio = request.app.state.studio
    keys = studio.config.api_keys
    if not keys:
        return Principal(owner=LOCAL_ADMIN, role="admin")
    presented = _presented_key(request)
    if presented:
        for key in keys:
            if hmac.compare_digest(key.key.get_secret_value().encode(), presented.encode()):
                return Principal(owner=key.owner, role=key.role)
    raise HTTPException(
        status_code=401,
        detail={"type": "Unauthorized", "message": "a valid API key is required (Authorization: Bearer <key>)"},
        headers={"WWW-Authenticate": "Bearer"},
    )


async def get_principal(request: Request) -> Principal:
    auth: Authenticator = getattr(request.app.state, "authenticate", standalone_auth)
    return await auth(request)


async def require_admin(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """Raises HTTPException 403 for a non-admin."""
    if not principal.is_admin:
        raise HTTPException(status_code=403, detail={"type": "Forbidden", "message": "admins only"})
    return principal


FORWARDED_USER_ID = "X-OpenWebUI-User-Id"
FORWARDED_USER_ROLE = "X-OpenWebUI-User-Role"
"""Open WebUI's forwarded user id header (sent with ``ENABLE_FORWARD_USER_INFO_HEADERS``,
with ``X-OpenWebUI-User-Name``, ``-Email`` and ``-Role``; open_webui/env.py and
utils/headers.py of Open WebUI 0.12)."""
MAX_FORWARDED_ID = 200


async def get_acting_principal(request: Request) -> Principal:
    """The caller, or the user it acts for: a **service** key (role ``service``) with Open
    WebUI's ``X-OpenWebUI-User-Id`` header acts as that user (``Principal(owner=<the id as
    sent>, role=<"admin" when X-OpenWebUI-User-Role says so, else "user">)``); without the
    header it is itself (its key's ``owner``, the
    documented service user). The header is ignored from any other caller.

    Raises:
        HTTPException: 401 as :func:`get_principal`; 422 for a forwarded id that is empty
            after stripping, longer than 200 characters or holds control characters.
    """
    principal = await get_principal(request)
    forwarded = request.headers.get(FORWARDED_USER_ID)
    if not principal.is_service or forwarded is None:
        return principal
    user_id = forwarded.strip()
    if not user_id or len(user_id) > MAX_FORWARDED_ID or not user_id.isprintable():
        raise HTTPException(status_code=422, detail={
            "type": "InvalidRequest", "field": FORWARDED_USER_ID,
            "message": f"{FORWARDED_USER_ID} must be 1-{MAX_FORWARDED_ID} printable characters"})
    role = "admin" if request.headers.get(FORWARDED_USER_ROLE, "").strip().lower() == "admin" else "user"
    return Principal(owner=user_id, role=role)


StudioDep = Annotated[Studio, Depends(get_studio)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
AdminDep = Annotated[Principal, Depends(require_admin)]
ActingPrincipalDep = Annotated[Principal, Depends(get_acting_principal)]
