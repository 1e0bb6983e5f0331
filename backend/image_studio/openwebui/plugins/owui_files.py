"""Studio assets as Open WebUI files in a chat, and chat images as studio inputs.

Followed from Open WebUI 0.12.4 (paths under ``open_webui/``):

* ``routers/images.py:526-565`` ``upload_image(request, data, content_type, metadata, user)``:
  stores the bytes through ``upload_file_handler`` (``routers/files.py:320``; ``metadata``
  lands in the file's ``meta.data``) and, when ``metadata`` has ``chat_id`` and
  ``message_id``, links the file to that chat (``Chats.insert_chat_files``, so deleting the
  chat deletes the link); returns ``(file_item, {id, url, name, content_type})``;
* ``tools/builtin.py:371-440`` (the native ``generate_image``): the files go into the chat
  message with ``Chats.add_message_files_by_id_and_message_id(chat_id, message_id,
  [{'type': 'image', **file}])`` when the chat is saved (``utils/chat_id.py``
  ``is_saved_chat_id``), then a ``{'type': 'chat:message:files', 'data': {'files': ...}}``
  event shows them at once;
* ``routers/files.py:812-860`` (file content): the owner, an admin, or a user with access
  (``utils/access_control/files.py`` ``has_access_to_file``) may read a file; its bytes are at
  ``Storage.get_file(file.path)`` (``storage/provider.py``).

Everything from ``open_webui`` is imported inside the functions: this module is imported only
inside Open WebUI's process.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from pathlib import Path
from typing import Any

from ...errors import InvalidRequest, NotFound, PermissionDenied
from ...types import Asset, Job, MediaKind
from .runtime import ChatCall

FILE_URL = re.compile(r"/api/v1/files/([0-9a-fA-F-]{8,})(?:/content)?")
"""An Open WebUI file URL (``/api/v1/files/<id>/content``), absolute or not."""

FILE_ID_KEY = "openwebui_file_id"
"""``asset.parameters`` key holding the Open WebUI file made for the asset (by
:mod:`image_studio.openwebui.files` or :func:`attach_assets`), so it is uploaded once."""

MAX_HISTORY = 200
"""Messages walked back through a chat's history when looking for its last image."""


async def asset_bytes(studio: Any, asset: Asset) -> bytes:
    """The whole content of ``asset`` from the studio's asset store (bytes)."""
    stream = await studio.assets.open(asset)
    return b"".join([chunk async for chunk in stream])


def file_metadata(call: ChatCall, job: Job, asset: Asset) -> dict[str, Any]:
    """The ``metadata`` given to ``upload_image`` from a chat plugin (:func:`asset_metadata`
    with the call's chat and message)."""
    return asset_metadata(job, asset, chat_id=call.chat_id, message_id=call.message_id)


def asset_metadata(job: Job, asset: Asset, *, chat_id: str | None = None,
                   message_id: str | None = None) -> dict[str, Any]:
    """The ``metadata`` given to ``upload_image``: the generation parameters under
    ``image_studio`` (kept by Open WebUI in the file's ``meta.data``) and, when both are given,
    the chat and message to link the file to."""
    out: dict[str, Any] = {
        "image_studio": {
            "job_id": job.id, "asset_id": asset.id, "provider": asset.provider, "model": asset.model,
            "prompt": asset.prompt, "negative_prompt": asset.negative_prompt, "seed": asset.seed,
            "width": asset.width, "height": asset.height, "parameters": asset.parameters,
        },
    }
    if chat_id and message_id:
        out.update(chat_id=chat_id, message_id=message_id)
    return out


async def attach_assets(studio: Any, assets: list[Asset], call: ChatCall, user: Any, job: Job) -> list[dict[str, Any]]:
    """Upload ``assets`` as Open WebUI files of ``user``, add them to the chat message and show
    them (see the module docstring).

    Returns:
        The message's file entries (``{type: 'image', id, url, name, content_type}``; videos
        have type ``file``).
    """
    from open_webui.models.chats import Chats  # lazy: Open WebUI only
    from open_webui.routers.images import upload_image
    from open_webui.utils.chat_id import is_saved_chat_id

    entries: list[dict[str, Any]] = []
    for asset in assets:
        uploaded = await existing_file(call, asset, user)
        if uploaded is None:
            data = await asset_bytes(studio, asset)
            item, uploaded = await upload_image(call.request, data, asset.mime_type, file_metadata(call, job, asset),
                                                user)
            await studio.store.update_asset_parameters(asset.id, {FILE_ID_KEY: item.id})
        kind = "file" if asset.media is MediaKind.video else "image"
        entries.append({"type": kind, **uploaded})
    if entries and is_saved_chat_id(call.chat_id) and call.message_id:
        saved = await Chats.add_message_files_by_id_and_message_id(call.chat_id, call.message_id, entries)
        if saved is not None:
            entries = saved
    if call.emitter is not None and entries:
        await call.emitter({"type": "chat:message:files", "data": {"files": entries}})
    return entries


async def existing_file(call: ChatCall, asset: Asset, user: Any) -> dict[str, Any] | None:
    """The entry (``{id, url, name, content_type}``, as ``upload_image`` returns) of the Open
    WebUI file already made for ``asset`` (``parameters['openwebui_file_id']``, owned by
    ``user``), linked to the call's chat if it is not yet; None when there is none."""
    from open_webui.models.chats import Chats  # lazy: Open WebUI only
    from open_webui.models.files import Files

    file_id = asset.parameters.get(FILE_ID_KEY)
    item = await Files.get_file_by_id(str(file_id)) if file_id else None
    if item is None or item.user_id != user.id:
        return None
    meta = item.meta or {}
    if call.chat_id and call.message_id and (meta.get("data") or {}).get("chat_id") != call.chat_id:
        await Chats.insert_chat_files(chat_id=call.chat_id, message_id=call.message_id, file_ids=[item.id],
                                      user_id=user.id)
    return {"id": item.id, "url": call.request.app.url_path_for("get_file_content_by_id", id=item.id),
            "name": meta.get("name") or item.filename, "content_type": meta.get("content_type")}


def _decode_data_url(value: str) -> tuple[bytes, str]:
    header, _, payload = value.partition(",")
    mime = header[5:].split(";", 1)[0] or "image/png"
    try:
        return base64.b64decode(payload, validate=True), mime
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest("the image data URL is not valid base64", field="image") from exc


async def read_openwebui_file(file_id: str, user: Any) -> tuple[bytes, str]:
    """The bytes and content type of Open WebUI file ``file_id``, if ``user`` may read it.

    Raises:
        NotFound: no such file, or its content is gone (field ``image``).
        PermissionDenied: ``user`` may not read it (field ``image``).
    """
    from open_webui.models.files import Files  # lazy: Open WebUI only
    from open_webui.storage.provider import Storage
    from open_webui.utils.access_control.files import has_access_to_file

    item = await Files.get_file_by_id(file_id)
    if item is None or not item.path:
        raise NotFound(f"no Open WebUI file {file_id!r}", field="image")
    if not (item.user_id == user.id or user.role == "admin" or await has_access_to_file(file_id, "read", user)):
        raise PermissionDenied(f"you may not read the Open WebUI file {file_id!r}", field="image")
    path = Path(await asyncio.to_thread(Storage.get_file, item.path))
    if not path.is_file():
        raise NotFound(f"the content of Open WebUI file {file_id!r} is missing", field="image")
    mime = (item.meta or {}).get("content_type") or "image/png"
    return await asyncio.to_thread(path.read_bytes), mime


async def load_image(reference: str, user: Any) -> tuple[bytes, str]:
    """An image given by the model: an Open WebUI file id, a ``/api/v1/files/<id>/content`` URL,
    or a ``data:`` URL. Other URLs are refused (the server would fetch what the model names).

    Raises:
        InvalidRequest: an unusable reference (field ``image``); NotFound, PermissionDenied as
            :func:`read_openwebui_file`.
    """
    reference = (reference or "").strip()
    if reference.startswith("data:"):
        return _decode_data_url(reference)
    match = FILE_URL.search(reference)
    if match:
        return await read_openwebui_file(match.group(1), user)
    if re.fullmatch(r"[0-9a-fA-F-]{8,}", reference):
        return await read_openwebui_file(reference, user)
    raise InvalidRequest("image must be an Open WebUI file id, a /api/v1/files/<id>/content URL or a data: URL; "
                         "leave it empty to use the chat's last image", field="image")


def _image_refs(message: dict[str, Any]) -> list[str]:
    """Image references in one chat message's ``files``, last first."""
    refs = []
    for entry in message.get("files") or []:
        if not isinstance(entry, dict):
            continue
        content_type = entry.get("content_type") or (entry.get("file") or {}).get("meta", {}).get("content_type") or ""
        if entry.get("type") != "image" and not str(content_type).startswith("image/"):
            continue
        ref = entry.get("id") or entry.get("url")
        if ref:
            refs.append(str(ref))
    return list(reversed(refs))


async def find_chat_image(call: ChatCall, user: Any) -> tuple[bytes, str]:
    """The last image in the chat: this request's attached files first, then the messages of
    the current branch, newest first (from ``message_id`` up through ``parentId``).

    Raises:
        NotFound: the chat has no image (field ``image``).
    """
    from open_webui.models.chats import Chats  # lazy: Open WebUI only

    candidates = _image_refs({"files": call.metadata.get("files") or []})
    if call.chat_id:
        chat = await Chats.get_chat_by_id(call.chat_id)
        messages = ((chat.chat if chat else {}) or {}).get("history", {}).get("messages", {})
        current = call.message_id
        for _ in range(MAX_HISTORY):
            message = messages.get(current) if current else None
            if message is None:
                break
            candidates.extend(_image_refs(message))
            current = message.get("parentId")
    for ref in candidates:
        try:
            return await load_image(ref, user)
        except (NotFound, InvalidRequest):
            continue
    raise NotFound("there is no image in this chat to edit: attach one, or pass its file id or URL",
                   field="image")
