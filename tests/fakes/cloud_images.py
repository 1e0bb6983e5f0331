"""A small fake of the cloud image APIs that Open WebUI's engines "openai" and "gemini" call, on
127.0.0.1 (Starlette under uvicorn in a thread, :class:`tests.fakes.serve.ServerThread`), for
tests where the studio runs in another process (inside Open WebUI), so respx cannot reach it.

Wire formats (the documented shapes the studio's adapters follow):

* OpenAI Images (https://platform.openai.com/docs/api-reference/images): ``POST
  /v1/images/generations`` JSON ``{model, prompt, n, size, response_format}`` ->
  ``{"created", "data": [{"b64_json"}]}``; ``GET /v1/models`` -> ``{"data": [{"id"}]}``;
* Gemini API (https://ai.google.dev/api): ``POST /v1beta/models/{model}:predict`` (Imagen)
  ``{"instances": [{"prompt"}], "parameters": {"sampleCount", ...}}`` ->
  ``{"predictions": [{"bytesBase64Encoded", "mimeType"}]}``, ``:generateContent`` ->
  ``{"candidates": [{"content": {"parts": [{"inlineData": {"mimeType", "data"}}]}}]}``; the key in
  ``x-goog-api-key``; ``GET /v1beta/models`` lists nothing.

Every call is kept in :attr:`FakeCloudImages.calls` as ``{"method", "path", "headers", "json"}``.
"""

from __future__ import annotations

import base64
import io
import json
import time
from typing import Any

from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.serve import ServerThread


def _png_b64(width: int, height: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (40, 120, 200)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


class FakeCloudImages:
    """``with FakeCloudImages() as cloud: cloud.url`` (no trailing slash); ``cloud.calls``."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        app = Starlette(routes=[
            Route("/v1/images/generations", self.openai_generate, methods=["POST"]),
            Route("/v1/models", self.openai_models, methods=["GET"]),
            Route("/v1beta/models", self.gemini_models, methods=["GET"]),
            Route("/v1beta/models/{call:path}", self.gemini_call, methods=["POST", "GET"]),
        ])
        self.server = ServerThread(app)

    @property
    def url(self) -> str:
        return self.server.url

    def __enter__(self) -> "FakeCloudImages":
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def calls_to(self, path_part: str) -> list[dict[str, Any]]:
        """The calls whose path holds ``path_part``, oldest first."""
        return [c for c in self.calls if path_part in c["path"]]

    async def _record(self, request: Request) -> dict[str, Any]:
        body = await request.body()
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = None
        self.calls.append({"method": request.method, "path": request.url.path,
                           "headers": {k.lower(): v for k, v in request.headers.items()}, "json": data})
        return data or {}

    async def openai_generate(self, request: Request) -> JSONResponse:
        body = await self._record(request)
        w, _, h = str(body.get("size") or "1024x1024").partition("x")
        size = (int(w), int(h)) if w.isdigit() and h.isdigit() else (64, 64)
        n = int(body.get("n") or 1)
        return JSONResponse({"created": int(time.time()), "data": [{"b64_json": _png_b64(*size)} for _ in range(n)]})

    async def openai_models(self, request: Request) -> JSONResponse:
        await self._record(request)
        return JSONResponse({"object": "list", "data": [{"id": "gpt-image-1", "object": "model"}]})

    async def gemini_models(self, request: Request) -> JSONResponse:
        await self._record(request)
        return JSONResponse({"models": []})

    async def gemini_call(self, request: Request) -> JSONResponse:
        body = await self._record(request)
        call = request.path_params["call"]
        if call.endswith(":predict"):
            count = int(((body.get("parameters") or {}).get("sampleCount")) or 1)
            return JSONResponse({"predictions": [{"bytesBase64Encoded": _png_b64(64, 64), "mimeType": "image/png"}
                                                 for _ in range(count)]})
        if call.endswith(":generateContent"):
            return JSONResponse({"candidates": [{"content": {"parts": [
                {"inlineData": {"mimeType": "image/png", "data": _png_b64(64, 64)}}]}, "finishReason": "STOP"}]})
        return JSONResponse({"error": {"code": 404, "status": "NOT_FOUND", "message": f"no {call}"}}, status_code=404)
