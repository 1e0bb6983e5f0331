"""The websocket side of the fake ComfyUI (``comfyui_server.py``): ``/ws?clientId=`` sessions,
the ``feature_flags`` handshake, and sending JSON and binary frames.

Message shapes follow ComfyUI ``server.py`` (``websocket_handler``, ``send_json``,
``send_bytes``) and the recorded transcripts in ``tests/fixtures/comfyui/``.
"""

from __future__ import annotations

import contextlib
import json
import struct
import uuid
from typing import Any

from starlette.websockets import WebSocket


class SocketHub:
    """The fake's websockets: ``/ws?clientId=`` sessions, the ``feature_flags`` handshake and
    sending. Logs for tests: ``ws_log`` (``{"event": "open"|"recv"|"close"|"refused", "sid",
    "text"?}``) and ``sent`` (every frame, ``{"sid", "type", "data"|"event", "delivered"}``).
    Subclasses answer :meth:`greet` and have ``features`` (the ``feature_flags`` reply)."""

    features: dict[str, Any]

    def __init__(self) -> None:
        self.sockets: dict[str, WebSocket] = {}
        self.flags: dict[str, dict[str, Any]] = {}
        self.ws_log: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self.refuse_websockets = False

    async def greet(self, sid: str) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def metadata_previews(self, sid: str | None) -> bool:
        """Did this client announce ``supports_preview_metadata``?"""
        return bool(self.flags.get(sid or "", {}).get("supports_preview_metadata"))

    async def websocket(self, ws: WebSocket) -> None:
        sid = ws.query_params.get("clientId") or uuid.uuid4().hex
        if self.refuse_websockets:
            self.ws_log.append({"event": "refused", "sid": sid})
            await ws.close(code=1013)
            return
        await ws.accept()
        self.ws_log.append({"event": "open", "sid": sid})
        self.sockets[sid] = ws
        self.flags.pop(sid, None)
        await self.greet(sid)
        first = True
        try:
            while (message := await ws.receive())["type"] != "websocket.disconnect":
                if message.get("text") is not None:
                    self.ws_log.append({"event": "recv", "sid": sid, "text": message["text"]})
                    data = json.loads(message["text"])
                    if first and isinstance(data, dict) and data.get("type") == "feature_flags":
                        self.flags[sid] = dict(data.get("data") or {})
                        await self.send(sid, "feature_flags", self.features)
                first = False
        except Exception:  # noqa: BLE001 - a broken client socket just ends the session
            pass
        finally:
            if self.sockets.get(sid) is ws:
                del self.sockets[sid]
            self.ws_log.append({"event": "close", "sid": sid})

    async def drop(self) -> None:
        """Close every socket from the server side."""
        for ws in list(self.sockets.values()):
            with contextlib.suppress(Exception):
                await ws.close(code=1001)

    async def _deliver(self, ws: WebSocket | None, record: dict[str, Any], text: str | None, data: bytes) -> None:
        self.sent.append({**record, "delivered": ws is not None})
        if ws is not None:
            try:
                await (ws.send_text(text) if text is not None else ws.send_bytes(data))
            except Exception:  # noqa: BLE001 - the client went away; the frame is lost
                self.sent[-1]["delivered"] = False

    async def send(self, sid: str | None, kind: str, data: dict[str, Any]) -> None:
        """Send a JSON message to ``sid`` (every socket when None); lost if it is not connected."""
        targets = list(self.sockets.items()) if sid is None else [(sid, self.sockets.get(sid))]
        for target, ws in targets:
            await self._deliver(ws, {"sid": target, "type": kind, "data": data},
                                json.dumps({"type": kind, "data": data}), b"")

    async def send_binary(self, sid: str | None, payload: bytes) -> None:
        """Send a binary frame to ``sid``; lost if it is not connected."""
        record = {"sid": sid, "type": "binary", "event": struct.unpack(">I", payload[:4])[0], "length": len(payload)}
        await self._deliver(self.sockets.get(sid) if sid else None, record, None, payload)
