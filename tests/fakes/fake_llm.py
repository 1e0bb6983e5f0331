"""A fake OpenAI-compatible chat LLM on 127.0.0.1 for prompt optimization tests.

Wire format: OpenAI's Chat Completions (``POST /v1/chat/completions``, answer
``{"choices": [{"message": {"role": "assistant", "content": ...}}]}``), as Ollama serves it
under ``/v1``. The answer, a delay (seconds) and an HTTP status are set per test; every request
body is kept in ``requests``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.serve import ServerThread


@dataclass
class FakeLLM:
    """``answer`` (text, or None to echo the first 200 characters of the user's message),
    ``delay`` seconds before answering, ``status`` of the answer (200, or an error code)."""

    answer: str | None = None
    delay: float = 0.0
    status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def chat(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append({"body": body, "authorization": request.headers.get("authorization")})
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status != 200:
            return JSONResponse({"error": {"message": "model not found", "type": "not_found"}}, status_code=self.status)
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        text = self.answer if self.answer is not None else user[:200]
        return JSONResponse({"id": "chatcmpl-1", "object": "chat.completion", "model": body.get("model"),
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": text}}]})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])


def serve_llm(llm: FakeLLM) -> ServerThread:
    """Start ``llm`` on a free 127.0.0.1 port (``.url`` + ``/v1`` is its API root)."""
    return ServerThread(llm.app(), lifespan="off").start()
