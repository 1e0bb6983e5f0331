"""The OpenAI-compatible facade: the OpenAI Images API in front of the studio's chain and queue.

Mounted at ``/api/v1/image-studio/openai/v1``, so that Open WebUI's image engine ``openai``
(base URL set to that path; it appends ``/images/generations`` and ``/images/edits``) and any
OpenAI client run through the studio. Routes in :mod:`.routes`; model names to providers and
workflows in :mod:`.mapping` (config section ``openai_facade``); body to request in
:mod:`.translate`; wire shapes and OpenAI error bodies in :mod:`.wire`.

Who owns the jobs (:func:`image_studio.api.deps.get_acting_principal`): the caller's key
owner; for a key of role ``service`` with Open WebUI's forwarded ``X-OpenWebUI-User-Id``
header, that user id as sent.
"""

from .routes import router

__all__ = ["router"]
