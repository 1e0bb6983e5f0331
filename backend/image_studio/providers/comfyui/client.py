"""HTTP and websocket client of one ComfyUI backend.

Routes and bodies follow ComfyUI's ``server.py`` (``PromptServer`` routes, version 0.3.64),
checked against the transcripts in ``tests/fixtures/comfyui/``:

=========================  ===========================================================
``POST /prompt``           ``{"prompt", "client_id", "prompt_id", "extra_data", "front"}``
``GET /history/{id}``      ``{id: entry}`` or ``{}`` for an unknown id
``POST /history``          ``{"delete": [ids]}`` or ``{"clear": true}``; empty 200
``GET /view``              ``filename``, ``subfolder``, ``type`` (output, input, temp)
``POST /upload/image``     multipart ``image`` (file), ``type``, ``subfolder``, ``overwrite``
``GET /queue``             ``{"queue_running": [...], "queue_pending": [...]}``, items
                           ``[number, prompt_id, prompt, extra_data, outputs_to_execute]``
``POST /queue``            ``{"delete": [ids]}`` or ``{"clear": true}``; empty 200
``POST /interrupt``        ``{"prompt_id": id}`` (ignored unless that prompt is running)
``GET /object_info[/{c}]`` node definitions
``GET /system_stats``      ``{"system": {...}, "devices": [...]}``
``GET /ws?clientId=``      the event stream (see :mod:`.ws`)
=========================  ===========================================================

Every call has a timeout; transport failures become :class:`ProviderUnavailable` or
:class:`ProviderTimeout`, error statuses the class :func:`raise_for_status` picks, and a
refused prompt an :class:`InvalidRequest` naming the node and input at fault.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

from ...errors import ProviderError, ProviderTimeout, ProviderUnavailable
from ..base import raise_for_status
from .protocol import node_errors_summary, prompt_rejection
from .ws import EventStream

if TYPE_CHECKING:
    from ...config import BackendConfig
    from ..base import ImageProvider


class ComfyUIClient:
    """One ComfyUI backend: its HTTP API on the shared ``http`` client and one websocket.

    Args:
        base_url: ``http://host:port`` (no trailing slash needed).
        http: the shared ``httpx.AsyncClient``.
        client_id: the websocket ``clientId`` and the ``client_id`` of every prompt; one per
            backend and process (a new uuid4 hex when None).
        provider, backend: used to name the provider and backend in errors (and to map them
            with the provider's ``raise_for_status`` / ``transport_errors``).
        timeout: seconds per HTTP call unless a call says otherwise.
        connect_timeout: seconds for the websocket handshake.
        headers: extra headers (e.g. ``Authorization``) for HTTP and the websocket handshake.
        feature_flags: announce ``supports_preview_metadata`` on the websocket.
    """

    def __init__(self, base_url: str, http: httpx.AsyncClient, client_id: str | None = None, *,
                 provider: ImageProvider | None = None, backend: BackendConfig | None = None,
                 timeout: float = 30.0, connect_timeout: float = 10.0, headers: dict[str, str] | None = None,
                 feature_flags: bool = True,
                 logger: logging.Logger | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.client_id = client_id or uuid.uuid4().hex
        self.provider = provider
        self.backend = backend
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.logger = logger or logging.getLogger("image_studio.providers.comfyui")
        self.events = EventStream(self.ws_url, connect_timeout=connect_timeout, headers=self.headers,
                                  feature_flags=feature_flags, proxy=True if http.trust_env else None,
                                  logger=self.logger)

    @property
    def ws_url(self) -> str:
        """``ws(s)://host:port/ws?clientId=<client_id>``."""
        scheme, _, rest = self.base_url.partition("://")
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws?{urlencode({'clientId': self.client_id})}"

    @property
    def label(self) -> str:
        return self.backend.label if self.backend is not None else self.base_url

    # -- error mapping ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _transport(self) -> AsyncIterator[None]:
        if self.provider is not None:
            async with self.provider.transport_errors(self.backend):
                yield
            return
        try:
            yield
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"timed out: {exc!r}", provider="comfyui", backend=self.label) from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(f"cannot reach backend: {exc!r}", provider="comfyui",
                                      backend=self.label) from exc

    def _check(self, response: httpx.Response, what: str) -> None:
        if self.provider is not None:
            self.provider.raise_for_status(response, self.backend, what=what)
        else:
            raise_for_status(response, provider="comfyui", backend=self.label, what=what)

    async def _request(self, method: str, path: str, *, what: str, timeout: float | None = None,
                       check: bool = True, **kw: Any) -> httpx.Response:
        async with self._transport():
            response = await self.http.request(method, self.base_url + path, headers=self.headers or None,
                                               timeout=self.timeout if timeout is None else timeout, **kw)
        if check:
            self._check(response, what)
        return response

    def _json(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderError(f"{what}: ComfyUI answered with non-JSON ({response.headers.get('content-type')})",
                                provider=self.provider.id if self.provider else "comfyui", backend=self.label,
                                status=response.status_code) from exc

    # -- prompts ---------------------------------------------------------------------------

    async def queue_prompt(self, prompt: dict[str, Any], *, prompt_id: str | None = None,
                           extra_data: dict[str, Any] | None = None, front: bool = False) -> dict[str, Any]:
        """``POST /prompt``: queue an API-format prompt under ``prompt_id`` (a uuid4 string,
        chosen here when None) with this client's ``client_id``.

        Returns ComfyUI's answer ``{"prompt_id", "number", "node_errors"}``; non-empty
        ``node_errors`` on a 200 name output branches that were dropped (logged here).

        Raises:
            InvalidRequest: HTTP 400; the message names node id, class_type and input, and
                ``field`` is ``workflow.nodes.<id>.inputs.<name>``.
            ProviderError: any other failure, as :func:`raise_for_status` maps it.
        """
        body: dict[str, Any] = {"prompt": prompt, "client_id": self.client_id,
                                "prompt_id": prompt_id or str(uuid.uuid4())}
        if extra_data:
            body["extra_data"] = extra_data
        if front:
            body["front"] = True
        response = await self._request("POST", "/prompt", what="queue prompt", json=body, check=False)
        if response.status_code == 400:
            try:
                payload: Any = response.json()
            except ValueError:
                payload = response.text
            raise prompt_rejection(payload, 400)
        self._check(response, "queue prompt")
        answer = self._json(response, "queue prompt")
        if answer.get("node_errors"):
            self.logger.warning("ComfyUI %s queued prompt %s without some outputs: %s", self.label,
                                answer.get("prompt_id"), node_errors_summary(answer["node_errors"]))
        return answer

    async def get_history(self, prompt_id: str) -> dict[str, Any] | None:
        """``GET /history/{id}``: the entry of one prompt, or None while it is unknown
        (queued, running, never submitted or deleted)."""
        data = self._json(await self._request("GET", f"/history/{prompt_id}", what="history"), "history")
        entry = data.get(prompt_id) if isinstance(data, dict) else None
        return entry if isinstance(entry, dict) else None

    async def history(self, max_items: int | None = None) -> dict[str, Any]:
        """``GET /history``: ``{prompt_id: entry}``, the most recent ``max_items``."""
        params = {"max_items": max_items} if max_items is not None else None
        return self._json(await self._request("GET", "/history", what="history", params=params), "history")

    async def delete_history(self, prompt_ids: list[str]) -> None:
        """``POST /history {"delete": [...]}``."""
        await self._request("POST", "/history", what="delete history", json={"delete": list(prompt_ids)})

    async def view(self, filename: str, subfolder: str = "", type: str = "output", *,
                   timeout: float = 120.0) -> tuple[bytes, str | None]:
        """``GET /view``: the bytes of one file and its Content-Type.

        Raises:
            InvalidRequest: 404, no such file (the message names it).
        """
        params = {"filename": filename, "subfolder": subfolder, "type": type}
        response = await self._request("GET", "/view", what=f"view {type}/{subfolder}/{filename}".replace("//", "/"),
                                       params=params, timeout=timeout)
        return response.content, response.headers.get("content-type")

    async def upload_image(self, data: bytes, filename: str, *, subfolder: str = "", type: str = "input",
                           overwrite: bool = False, content_type: str = "image/png",
                           timeout: float = 60.0) -> dict[str, Any]:
        """``POST /upload/image`` (multipart): store an input image on the backend.

        Returns ``{"name", "subfolder", "type"}``; ``name`` may differ from ``filename``
        (ComfyUI renames to ``name (1).png`` when another file has that name and
        ``overwrite`` is false, and keeps the name for identical bytes).
        """
        fields = {"type": type, "subfolder": subfolder, "overwrite": "true" if overwrite else "false"}
        files = {"image": (filename, data, content_type)}
        response = await self._request("POST", "/upload/image", what="upload image", data=fields, files=files,
                                       timeout=timeout)
        return self._json(response, "upload image")

    # -- queue -----------------------------------------------------------------------------

    async def get_queue(self) -> dict[str, Any]:
        """``GET /queue``: ``{"queue_running": [...], "queue_pending": [...]}``."""
        return self._json(await self._request("GET", "/queue", what="queue"), "queue")

    async def delete_from_queue(self, prompt_ids: list[str]) -> None:
        """``POST /queue {"delete": [...]}``: drop pending prompts (a running one is untouched)."""
        await self._request("POST", "/queue", what="delete from queue", json={"delete": list(prompt_ids)})

    async def clear_queue(self) -> None:
        """``POST /queue {"clear": true}``: drop every pending prompt."""
        await self._request("POST", "/queue", what="clear queue", json={"clear": True})

    async def interrupt(self, prompt_id: str | None = None) -> None:
        """``POST /interrupt``: stop ``prompt_id`` if it is the one running (every running
        prompt when None)."""
        body = {"prompt_id": prompt_id} if prompt_id else {}
        await self._request("POST", "/interrupt", what="interrupt", json=body)

    async def queue_position(self, prompt_id: str) -> str | None:
        """``"running"``, ``"pending"`` or None (not in the queue)."""
        queue = await self.get_queue()
        for state, key in (("running", "queue_running"), ("pending", "queue_pending")):
            if any(len(item) > 1 and item[1] == prompt_id for item in queue.get(key) or []):
                return state
        return None

    # -- information -----------------------------------------------------------------------

    async def object_info(self, node_class: str | None = None) -> dict[str, Any]:
        """``GET /object_info`` (every node) or ``/object_info/{class}`` (``{}`` if unknown)."""
        path = f"/object_info/{node_class}" if node_class else "/object_info"
        return self._json(await self._request("GET", path, what="object_info", timeout=max(self.timeout, 60.0)),
                          "object_info")

    async def system_stats(self, *, timeout: float | None = None) -> dict[str, Any]:
        """``GET /system_stats``: versions, RAM and devices."""
        return self._json(await self._request("GET", "/system_stats", what="system_stats", timeout=timeout),
                          "system_stats")

    # -- websocket -------------------------------------------------------------------------

    async def connect(self, timeout: float | None = None) -> bool:
        """Start the shared websocket and wait up to ``timeout`` seconds (the handshake
        timeout when None) for it; False when it is not up (jobs then poll ``/history``)."""
        return await self.events.wait_connected(self.events.connect_timeout if timeout is None else timeout)

    async def close(self) -> None:
        """Close the websocket (the shared HTTP client belongs to the caller)."""
        await self.events.close()
