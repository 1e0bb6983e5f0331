"""A scripted OpenAI-compatible chat model on 127.0.0.1, for driving Open WebUI's tool calling.

Wire format: OpenAI's Chat Completions API as Open WebUI 0.12.4 calls it
(``open_webui/routers/openai.py``: ``GET {base}/models``, ``POST {base}/chat/completions``;
``utils/middleware.py``: native function calling sends ``tools`` and runs tool calls only on
the streaming path, reading ``choices[0].delta.tool_calls[i].{index, id, function.name,
function.arguments}`` from server-sent ``data:`` chunks ended by ``data: [DONE]``, then calls
the model again with the ``role: tool`` results).

The script, per request:

* the conversation ends with a ``tool`` message -> a final text, ``FINAL_PREFIX`` plus the
  tool's result (so a test can see what the tool told the model);
* ``tools`` offers :attr:`FakeChatModel.tool_name` -> one call of it with
  :attr:`FakeChatModel.arguments`;
* anything else (such as Open WebUI's title or tag tasks) -> a plain text.

Both ``stream: true`` (SSE) and non-stream JSON answers are served. Every request body is kept
in :attr:`FakeChatModel.requests`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from tests.fakes.serve import ServerThread

MODEL_ID = "fake-tool-caller"
FINAL_PREFIX = "Done. The tool said: "
PLAIN_TEXT = "A plain answer."


@dataclass
class FakeChatModel:
    """The script and what was asked. ``arguments`` may be changed between tests."""

    tool_name: str = "generate_image"
    arguments: dict[str, Any] = field(default_factory=lambda: {"prompt": "a red fox"})
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def tool_results(self) -> list[str]:
        """The contents of every ``tool`` message the model was sent, in order."""
        with self.lock:
            return [str(m.get("content")) for body in self.requests for m in body.get("messages", [])
                    if m.get("role") == "tool"]

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """The assistant message for one request: ``{content}`` or ``{tool_calls}``."""
        with self.lock:
            self.requests.append(body)
            call_number = len(self.requests)
        messages = body.get("messages") or []
        if messages and messages[-1].get("role") == "tool":
            return {"content": FINAL_PREFIX + str(messages[-1].get("content"))}
        names = {(t.get("function") or {}).get("name") for t in body.get("tools") or []}
        if self.tool_name in names:
            return {"tool_calls": [{"id": f"call_{call_number}", "type": "function",
                                    "function": {"name": self.tool_name, "arguments": json.dumps(self.arguments)}}]}
        return {"content": PLAIN_TEXT}


def _completion(message: dict[str, Any]) -> dict[str, Any]:
    finish = "tool_calls" if "tool_calls" in message else "stop"
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": MODEL_ID,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": message.get("content"),
                                                 **({"tool_calls": message["tool_calls"]} if "tool_calls" in message
                                                    else {})},
                         "finish_reason": finish}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def _chunks(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The SSE chunks of one answer: role, then content or the tool call in two parts, then finish."""
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    if "tool_calls" in message:
        for i, call in enumerate(message["tool_calls"]):
            deltas.append({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                           "function": {"name": call["function"]["name"], "arguments": ""}}]})
            deltas.append({"tool_calls": [{"index": i, "function": {"arguments": call["function"]["arguments"]}}]})
    else:
        text = message["content"]
        deltas += [{"content": text[: len(text) // 2]}, {"content": text[len(text) // 2:]}]
    finish = "tool_calls" if "tool_calls" in message else "stop"
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": MODEL_ID}
    out = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    out.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    return out


def build_app(model: FakeChatModel) -> Starlette:
    """The Starlette app: ``GET /v1/models`` and ``POST /v1/chat/completions``."""

    async def models(_request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0,
                                                         "owned_by": "tests"}]})

    async def completions(request: Request) -> JSONResponse | StreamingResponse:
        body = await request.json()
        message = model.answer(body)
        if not body.get("stream"):
            return JSONResponse(_completion(message))

        async def events() -> AsyncIterator[bytes]:
            for chunk in _chunks(message):
                yield f"data: {json.dumps(chunk)}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/models", models), Route("/v1/chat/completions", completions, methods=["POST"])])


def serve(model: FakeChatModel) -> ServerThread:
    """A started :class:`ServerThread` for ``model`` (base URL for Open WebUI: ``server.url + '/v1'``)."""
    return ServerThread(build_app(model), lifespan="off").start()
