"""One websocket per ComfyUI backend, shared by every job on it.

:class:`EventStream` keeps ``/ws?clientId=<client_id>`` open, reconnecting when it drops, and
hands each message to the queue of the prompt it belongs to. The wire format follows
ComfyUI's ``server.py`` (``websocket_handler``, ``send_json``, ``send_bytes``) and the
frontend's first frame ``{"type": "feature_flags", "data": {"supports_preview_metadata":
true}}``, recorded in ``tests/fixtures/comfyui/progress_preview_interrupt.json``.

Attribution: JSON messages carry ``data.prompt_id``; event-4 previews carry it in their
metadata. Legacy event-1 previews, event-3 progress text, and the ``{"node": ...}`` that the
server re-sends after a reconnect carry none: they go to the prompt currently executing on
this backend, tracked from ``execution_start`` / ``executing`` messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ...errors import ProviderError
from .protocol import BinaryFrame, parse_binary_frame

WS_CONNECTED = "ws_connected"
"""Synthetic event: the socket (re)opened; messages may have been lost meanwhile."""
WS_DISCONNECTED = "ws_disconnected"
"""Synthetic event: the socket dropped; the job should rely on ``/history`` polling."""

RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)
"""Seconds between reconnect attempts (the last one repeats)."""

MAX_FRAME = 64 * 1024 * 1024
"""Largest websocket message accepted, in bytes (previews are a few hundred KB)."""

FEATURE_FLAGS = {"type": "feature_flags", "data": {"supports_preview_metadata": True}}


@dataclass
class ComfyEvent:
    """One message for one prompt.

    ``type`` is ComfyUI's message type (``progress``, ``executing``, ``execution_error`` ...),
    ``preview`` for binary preview frames, ``progress_text`` for binary text frames, or
    :data:`WS_CONNECTED` / :data:`WS_DISCONNECTED`. ``data`` is the message's ``data``;
    ``frame`` the parsed binary frame, if any.
    """

    type: str
    data: dict[str, Any] = field(default_factory=dict)
    prompt_id: str | None = None
    frame: BinaryFrame | None = None


class EventStream:
    """The shared websocket of one backend.

    Args:
        url: ``ws://host:port/ws?clientId=<client_id>``.
        connect_timeout: seconds for one opening handshake.
        headers: extra HTTP headers for the handshake (auth).
        feature_flags: send the frontend's ``feature_flags`` frame (previews then come as
            event-4 frames with a ``prompt_id``).
        proxy: passed to ``websockets.connect`` (None: connect directly).
    """

    def __init__(self, url: str, *, connect_timeout: float = 10.0, headers: dict[str, str] | None = None,
                 feature_flags: bool = True, proxy: str | bool | None = None,
                 logger: logging.Logger | None = None) -> None:
        self.url = url
        scheme, sep, rest = url.partition("://")
        self.label = f"{scheme}{sep}{rest.partition('/')[0].rpartition('@')[2]}"
        """The socket's address without credentials, for logs and task names."""
        self.connect_timeout = connect_timeout
        self.headers = dict(headers or {})
        self.feature_flags = feature_flags
        self.proxy = proxy
        self.logger = logger or logging.getLogger("image_studio.providers.comfyui.ws")
        self.executing_prompt: str | None = None
        self.server_features: dict[str, Any] = {}
        self.queue_remaining: int | None = None
        self.connects = 0
        self.last_error: str | None = None
        self._subs: dict[str, asyncio.Queue[ComfyEvent]] = {}
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._attempt = asyncio.Event()
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        """Start the reader task (idempotent)."""
        if self._task is None or self._task.done():
            self._closed = False
            self._task = asyncio.create_task(self._run(), name=f"comfyui-ws {self.label}")

    async def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the socket; False when an attempt has failed
        already or the time runs out (the caller then relies on ``/history`` polling, and
        hears :data:`WS_CONNECTED` when the reader gets through later)."""
        self.start()
        if self.connected:
            return True
        if self.last_error is not None:
            return False
        waiters = [asyncio.ensure_future(self._connected.wait()), asyncio.ensure_future(self._attempt.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        return self.connected

    async def drop(self) -> None:
        """Close the current socket; the reader reconnects (for callers that detect a stall, and tests)."""
        ws = self._ws
        if ws is not None:
            await ws.close()

    async def close(self) -> None:
        """Stop the reader and close the socket."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._connected.clear()

    # -- subscriptions -------------------------------------------------------------------

    def subscribe(self, prompt_id: str) -> asyncio.Queue[ComfyEvent]:
        """The queue that receives every message of ``prompt_id`` (subscribe before submitting)."""
        return self._subs.setdefault(prompt_id, asyncio.Queue())

    def unsubscribe(self, prompt_id: str) -> None:
        self._subs.pop(prompt_id, None)

    def _deliver(self, event: ComfyEvent) -> None:
        if event.prompt_id is not None:
            queue = self._subs.get(event.prompt_id)
            if queue is not None:
                queue.put_nowait(event)

    def _broadcast(self, kind: str) -> None:
        for pid, queue in list(self._subs.items()):
            queue.put_nowait(ComfyEvent(kind, prompt_id=pid))

    # -- reader --------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while not self._closed:
            try:
                async with connect(self.url, open_timeout=self.connect_timeout, max_size=MAX_FRAME,
                                   additional_headers=self.headers or None, proxy=self.proxy,
                                   compression=None) as ws:
                    self._ws = ws
                    failures = 0
                    await self._on_open(ws)
                    async for message in ws:
                        self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except (OSError, ConnectionClosed, InvalidHandshake, InvalidURI, asyncio.TimeoutError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.logger.debug("ComfyUI websocket %s: %s", self.label, self.last_error)
            except Exception as exc:  # noqa: BLE001 - the reader must outlive any surprise
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.logger.warning("ComfyUI websocket %s failed: %s", self.label, self.last_error, exc_info=True)
            finally:
                self._ws = None
                self._attempt.set()
                if self._connected.is_set():
                    self._connected.clear()
                    self._broadcast(WS_DISCONNECTED)
            if self._closed:
                break
            await asyncio.sleep(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)])
            failures += 1

    async def _on_open(self, ws: ClientConnection) -> None:
        if self.feature_flags:
            await ws.send(json.dumps(FEATURE_FLAGS))
        self.connects += 1
        self.last_error = None
        self._connected.set()
        self._attempt.set()
        if self.connects > 1:
            self.logger.info("ComfyUI websocket %s reconnected", self.label)
        self._broadcast(WS_CONNECTED)

    def _dispatch(self, message: str | bytes) -> None:
        try:
            if isinstance(message, (bytes, bytearray, memoryview)):
                self._on_binary(bytes(message))
            else:
                self._on_text(message)
        except (ProviderError, ValueError, TypeError, KeyError) as exc:
            self.logger.warning("ComfyUI websocket %s: unreadable message skipped: %s", self.label, exc)

    def _on_text(self, text: str) -> None:
        msg = json.loads(text)
        if not isinstance(msg, dict):
            return
        kind = str(msg.get("type"))
        data = msg.get("data") if isinstance(msg.get("data"), dict) else {}
        if kind == "status":
            info = (data.get("status") or {}).get("exec_info") or {}
            self.queue_remaining = info.get("queue_remaining", self.queue_remaining)
            return
        if kind == "feature_flags":
            self.server_features = dict(data)
            return
        pid = str(data["prompt_id"]) if data.get("prompt_id") else None
        if kind == "execution_start":
            self.executing_prompt = pid
        elif kind == "executing":
            if pid is None:  # re-sent after a reconnect: {"node": id} only
                pid = self.executing_prompt
            elif data.get("node") is None:
                if self.executing_prompt == pid:
                    self.executing_prompt = None
            else:
                self.executing_prompt = pid
        self._deliver(ComfyEvent(kind, data, pid))

    def _on_binary(self, payload: bytes) -> None:
        frame = parse_binary_frame(payload)
        if frame is None:
            return
        pid = frame.prompt_id or self.executing_prompt
        kind = "progress_text" if frame.text is not None else "preview"
        data = {"node": frame.node_id, "text": frame.text} if frame.text is not None else dict(frame.metadata)
        self._deliver(ComfyEvent(kind, data, pid, frame))
