"""A minimal ComfyUI client: the baseline the studio's overhead is measured against.

It does only what any script must do to get an image out of ComfyUI, following ComfyUI's
``server.py`` (0.3.64) and the transcripts in ``tests/fixtures/comfyui/``:

1. one websocket ``GET /ws?clientId=<id>`` kept open (as the studio keeps one per backend);
2. ``POST /prompt`` ``{"prompt", "client_id", "prompt_id"}``;
3. wait for the text frame ``{"type": "executing", "data": {"node": null, "prompt_id": id}}``;
4. ``GET /history/{id}``, take the first output image;
5. ``GET /view?filename=&subfolder=&type=`` for its bytes.

No retries, no storage, no events: the least work possible, on the same httpx and websockets
libraries (and the same settings: no websocket compression) as the studio.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect


class DirectClient:
    """One ComfyUI at ``base_url``; safe for many concurrent :meth:`generate` calls.

    Args:
        base_url: ``http://host:port``.
        timeout: seconds per HTTP call and per websocket handshake.
    """

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.client_id = uuid.uuid4().hex
        self.http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)
        self.prompt_ids: list[str] = []
        self._done: dict[str, asyncio.Future[None]] = {}
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the websocket and start reading it."""
        ws_url = self.base_url.replace("http", "ws", 1) + f"/ws?clientId={self.client_id}"
        self._ws = await connect(ws_url, open_timeout=self.timeout, max_size=None, compression=None)
        self._reader = asyncio.create_task(self._read(), name="direct-client-ws")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._ws is not None:
            await self._ws.close()
        await self.http.aclose()

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if not isinstance(message, str):
                continue  # binary previews
            msg = json.loads(message)
            data = msg.get("data") or {}
            if msg.get("type") == "executing" and data.get("node") is None:
                fut = self._done.pop(str(data.get("prompt_id")), None)
                if fut is not None and not fut.done():
                    fut.set_result(None)

    async def generate(self, prompt: dict[str, Any], *, timeout: float = 120.0,
                       marks: dict[str, float] | None = None) -> bytes:
        """Queue ``prompt`` (API format), wait for it, return the bytes of its first output image.

        ``marks``, when given, receives ``perf_counter`` stamps ``post``, ``done`` (history
        entry read) and ``fetched``.

        Raises:
            RuntimeError: ComfyUI refused the prompt or the prompt made no image.
            asyncio.TimeoutError: not finished within ``timeout`` seconds.
        """
        clock = time.perf_counter
        prompt_id = str(uuid.uuid4())
        done = asyncio.get_running_loop().create_future()
        self._done[prompt_id] = done
        if marks is not None:
            marks["post"] = clock()
        r = await self.http.post("/prompt", json={"prompt": prompt, "client_id": self.client_id,
                                                  "prompt_id": prompt_id})
        if r.status_code != 200:
            self._done.pop(prompt_id, None)
            raise RuntimeError(f"POST /prompt: {r.status_code} {r.text[:300]}")
        self.prompt_ids.append(prompt_id)
        await asyncio.wait_for(done, timeout)
        entry = (await self.http.get(f"/history/{prompt_id}")).json()[prompt_id]
        if marks is not None:
            marks["done"] = clock()
        image = next((img for out in entry["outputs"].values() for img in out.get("images", [])
                      if img.get("type") == "output"), None)
        if image is None:
            raise RuntimeError(f"prompt {prompt_id} made no output image: {entry.get('status')}")
        r = await self.http.get("/view", params={"filename": image["filename"], "subfolder": image["subfolder"],
                                                 "type": image["type"]})
        r.raise_for_status()
        if marks is not None:
            marks["fetched"] = clock()
        return r.content

    async def forget(self) -> None:
        """Delete this client's prompts from ComfyUI's history (not timed; keeps a real
        ComfyUI's history as it was)."""
        ids, self.prompt_ids = self.prompt_ids, []
        for i in range(0, len(ids), 200):
            await self.http.post("/history", json={"delete": ids[i:i + 200]})
