"""Open WebUI users as the studio's callers, and Open WebUI's image-generation permission.

:func:`authenticate` is installed as ``app.state.authenticate`` (read by
:func:`image_studio.api.deps.get_principal`); :func:`generation_gate` as
``app.state.generation_gate`` (read by the generation routes in :mod:`image_studio.api.generations`
and open to the other entry points: the OpenAI-compatible facade, the Tool).

Sources followed (Open WebUI 0.12.4):

* ``open_webui/utils/auth.py:600-619`` ``get_optional_verified_user_from_request``: the token
  from ``Authorization: Bearer``, else the ``token`` cookie (so ``<img>`` and EventSource work
  from the browser), else ``request.state.token`` (the ``x-api-key`` middleware); ``sk-`` API
  keys go through Open WebUI's own checks (API keys enabled, ``features.api_keys``, endpoint
  restrictions). It returns the user only for the roles ``user`` and ``admin`` and None
  otherwise (``pending``, unknown, expired or revoked token), without raising.
* ``open_webui/routers/images.py:568-583``: image generation answers 403 when
  ``image_generation.enable`` is off, and to a non-admin without the
  ``features.image_generation`` permission (``has_permission`` over the user's groups, then the
  default ``user.permissions``, ``utils/access_control/__init__.py:70-103``).
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request

from ..api.deps import Principal
from ..errors import PermissionDenied

SIGN_IN_MESSAGE = ("sign in to Open WebUI first (a new account must be approved by an admin before it "
                   "can use Image Studio)")
DISABLED_MESSAGE = ("image generation is turned off in Open WebUI: an admin turns it on in Admin Panel > "
                    "Settings > Images (Image Generation)")
NO_PERMISSION_MESSAGE = ("your Open WebUI account may not generate images: an admin grants the 'Image "
                         "Generation' feature in Admin Panel > Users > Groups (default permissions or a group)")


def principal_for(user: object) -> Principal:
    """The studio's caller for an Open WebUI user (``UserModel``: ``id``, ``role``): owner is the
    user id; role ``admin`` for Open WebUI admins, ``user`` for everyone else."""
    return Principal(owner=str(getattr(user, "id")), role="admin" if getattr(user, "role", None) == "admin" else "user")


async def authenticate(request: Request) -> Principal:
    """The caller of a studio route, from Open WebUI's token, cookie or API key; failing
    that, one of the studio's own configured ``api_keys`` (see :func:`studio_key_principal`).

    Returns:
        A :class:`Principal`; the Open WebUI user is also left on
        ``request.state.openwebui_user`` for the routes that need it.

    Raises:
        HTTPException: 401 (``{"type": "Unauthorized", "message": ...}``, ``WWW-Authenticate:
            Bearer``) with no credentials, an invalid or expired token, a rejected API key, or
            a ``pending`` account. A non-admin on an admin route then gets 403 from
            :func:`image_studio.api.deps.require_admin` (Open WebUI's ``get_admin_user`` would
            answer 401).
    """
    from open_webui.utils.auth import get_optional_verified_user_from_request  # lazy: Open WebUI only

    user = await get_optional_verified_user_from_request(request)
    if user is None:
        key_principal = studio_key_principal(request)
        if key_principal is not None:
            return key_principal
        raise HTTPException(status_code=401, detail={"type": "Unauthorized", "message": SIGN_IN_MESSAGE},
                            headers={"WWW-Authenticate": "Bearer"})
    request.state.openwebui_user = user
    return principal_for(user)


def studio_key_principal(request: Request) -> Principal | None:
    """The studio API key presented (``Authorization: Bearer`` or ``X-API-Key``) as a
    Principal, when it matches one of the config's ``api_keys`` (compared in constant time);
    else None. This lets a trusted front end use a studio key inside Open WebUI, such as Open
    WebUI's own image engine calling the OpenAI-compatible facade with a ``service`` key. Unlike
    the standalone service, no configured key never means "local admin" here."""
    header = request.headers.get("authorization", "")
    presented = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("x-api-key")
    studio = getattr(request.app.state, "studio", None)
    if not presented or studio is None:
        return None
    for key in studio.config.api_keys:
        if hmac.compare_digest(key.key.get_secret_value().encode(), presented.encode()):
            return Principal(owner=key.owner, role=key.role)
    return None


async def generation_gate(request: Request, principal: Principal) -> None:
    """Refuse a generation the way Open WebUI's own image router would.

    Reads ``image_generation.enable`` and ``user.permissions`` from Open WebUI's ``config``
    table on every call (an admin's change applies at once, in every worker).

    Raises:
        PermissionDenied: (403) image generation is off in Open WebUI (for admins too, as in
            Open WebUI; field ``image_generation.enable``), or the caller is neither an admin nor
            a service key (Open WebUI itself, which checked its user already) and
            neither a group nor the default permissions grant ``features.image_generation``
            (field ``features.image_generation``).
    """
    from open_webui.models.config import Config  # lazy: Open WebUI only
    from open_webui.utils.access_control import has_permission

    values = await Config.get_many("image_generation.enable", "user.permissions")
    if not values.get("image_generation.enable"):
        raise PermissionDenied(DISABLED_MESSAGE, field="image_generation.enable")
    if principal.is_admin or principal.is_service:
        # A service key is Open WebUI itself calling the facade: its image router has already
        # checked its user (group grants included), which the key cannot re-check by id.
        return
    if not await has_permission(principal.owner, "features.image_generation", values.get("user.permissions") or {}):
        raise PermissionDenied(NO_PERMISSION_MESSAGE, field="features.image_generation")
