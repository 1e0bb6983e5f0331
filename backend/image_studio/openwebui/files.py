"""Every studio asset is also an Open WebUI file, linked to its chat (Open WebUI mode only).

:func:`install` (called by :func:`image_studio.openwebui.mount.mount`) registers
:class:`AssetFiles` on the studio:

* ``Studio.asset_hooks``: when a job's assets are committed (before the job's end is
  published), each asset whose owner is an Open WebUI user becomes a file of that user through
  Open WebUI's own ``upload_image`` (``open_webui/routers/images.py:526-565``: the bytes go to
  the configured storage provider through ``upload_file_handler``, ``metadata`` lands in the
  file's ``meta.data``, and with ``chat_id`` + ``message_id`` the file is linked to that chat,
  ``Chats.insert_chat_files``). The metadata is :func:`.plugins.owui_files.asset_metadata`
  (``{image_studio: {asset_id, job_id, prompt, seed, parameters...}, chat_id, message_id}``).
  The chat comes from ``request.extra['openwebui']`` (filled by the Tool, Pipe and Action, and
  by the OpenAI-compatible facade from Open WebUI's ``X-OpenWebUI-Chat-Id`` /
  ``X-OpenWebUI-Message-Id`` headers) and is used only when it is one of the owner's chats.
  The file id is kept on the asset (``parameters['openwebui_file_id']``), so the chat plugins
  reuse that file instead of uploading a second one. Owners that are not Open WebUI users (the
  studio's own API keys, ``service`` keys without a forwarded user) get no file.
* ``Studio.asset_delete_hooks``: deleting an asset deletes its file as Open WebUI's own
  ``DELETE /api/v1/files/{id}`` does (``routers/files.py:1032-1080``: ``Files.delete_file_by_id``
  then ``Storage.delete_file(file.path)``; our files are uploaded with ``process=False``, so
  they have no embeddings to remove).

``upload_image`` needs the live app (``request.app.url_path_for``): the hooks run in the API
process, with a request built on Open WebUI's ``app``. Everything from ``open_webui`` is
imported inside the functions.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from typing import Any

from ..api.openai_facade.translate import OPENWEBUI_EXTRA_KEY
from ..types import Asset, Job
from .plugins.owui_files import FILE_ID_KEY, asset_bytes, asset_metadata

log = logging.getLogger("image_studio.openwebui")


def install(app: Any, studio: Any) -> "AssetFiles | None":
    """Register :class:`AssetFiles` on ``studio`` (asset and delete hooks) and declare
    ``request.extra['openwebui']`` a host key (kept from the providers). Returns the hooks, or
    None (nothing registered) when ``open_webui`` is not installed (a stand-in app in tests)."""
    if importlib.util.find_spec("open_webui") is None:
        log.info("open_webui is not installed: studio assets are not mirrored as Open WebUI files")
        return None
    files = AssetFiles(app, studio)
    studio.host_extra_keys.add(OPENWEBUI_EXTRA_KEY)
    studio.asset_hooks.append(files.on_assets)
    studio.asset_delete_hooks.append(files.on_delete)
    return files


def chat_context(job: Job) -> tuple[str | None, str | None]:
    """``(chat_id, message_id)`` from the job's ``request.extra['openwebui']``, or Nones."""
    context = job.request.extra.get(OPENWEBUI_EXTRA_KEY)
    if not isinstance(context, dict):
        return None, None
    chat_id, message_id = context.get("chat_id"), context.get("message_id")
    return (str(chat_id) if chat_id else None), (str(message_id) if message_id else None)


class AssetFiles:
    """The asset hooks (see the module docstring). ``app``: Open WebUI's FastAPI app."""

    def __init__(self, app: Any, studio: Any) -> None:
        self.app = app
        self.studio = studio

    def _request(self) -> Any:
        """A Starlette request on Open WebUI's app: what ``upload_image`` reads (``.app``)."""
        from starlette.requests import Request

        return Request({"type": "http", "app": self.app, "method": "POST", "path": "/", "headers": [],
                        "query_string": b""})

    async def _chat_of(self, job: Job, user_id: str) -> tuple[str | None, str | None]:
        """The job's chat and message, when that chat exists and is ``user_id``'s (a caller
        cannot link files into another user's chat); else ``(None, None)``."""
        from open_webui.models.chats import Chats  # lazy: Open WebUI only

        chat_id, message_id = chat_context(job)
        if not chat_id or not message_id:
            return None, None
        if await Chats.get_chat_by_id_and_user_id(chat_id, user_id) is None:
            log.info("job %s: chat %s is not its owner's saved chat; its files are not linked to it", job.id, chat_id)
            return None, None
        return chat_id, message_id

    async def on_assets(self, job: Job, assets: list[Asset]) -> None:
        """Upload each of ``assets`` as a file of the job's owner (when an Open WebUI user)
        and remember the file id on the asset. A failed upload is logged; the others go on."""
        from open_webui.models.users import Users  # lazy: Open WebUI only
        from open_webui.routers.images import upload_image

        user = await Users.get_user_by_id(job.owner) if job.owner else None
        if user is None:
            return  # a studio API key or a service key: no Open WebUI user to own a file
        chat_id, message_id = await self._chat_of(job, user.id)
        request = self._request()
        for asset in assets:
            if asset.parameters.get(FILE_ID_KEY):
                continue
            try:
                data = await asset_bytes(self.studio, asset)
                metadata = asset_metadata(job, asset, chat_id=chat_id, message_id=message_id)
                item, _ = await upload_image(request, data, asset.mime_type, metadata, user)
                await self.studio.store.update_asset_parameters(asset.id, {FILE_ID_KEY: item.id})
            except Exception:  # noqa: BLE001 - one lost file must not stop the others
                log.exception("asset %s (job %s) could not be stored as an Open WebUI file", asset.id, job.id)

    async def on_delete(self, asset: Asset) -> None:
        """Delete the Open WebUI file made for ``asset`` (only a file of the asset's owner
        whose metadata names this asset: nothing else is ever deleted)."""
        from open_webui.models.files import Files  # lazy: Open WebUI only
        from open_webui.storage.provider import Storage

        file_id = asset.parameters.get(FILE_ID_KEY)
        item = await Files.get_file_by_id(str(file_id)) if file_id else None
        if item is None:
            return
        made_for = (((item.meta or {}).get("data") or {}).get("image_studio") or {}).get("asset_id")
        if item.user_id != asset.owner or made_for != asset.id:
            log.warning("Open WebUI file %s is not the one made for asset %s; it is kept", file_id, asset.id)
            return
        if await Files.delete_file_by_id(item.id) and item.path:
            await asyncio.to_thread(Storage.delete_file, item.path)


__all__ = ["AssetFiles", "chat_context", "install"]
