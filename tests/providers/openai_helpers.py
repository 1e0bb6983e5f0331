"""Shared helpers of the ``openai`` and ``openai_compatible`` adapter tests: documented
answers (openai-python ``types/images_response.py``, the models list, the error object),
a multipart reader and image makers."""

from __future__ import annotations

import base64
import email.parser
import email.policy
import io
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx
from PIL import Image

from image_studio.config import ProviderConfig
from image_studio.providers.base import ImageProvider
from image_studio.providers.registry import create_provider
from tests.storage.helpers import noisy_png

USAGE = {"input_tokens": 50, "input_tokens_details": {"image_tokens": 40, "text_tokens": 10},
         "output_tokens": 4160, "total_tokens": 4210}
MODELS = ["gpt-4o", "dall-e-3", "whisper-1", "gpt-image-1", "dall-e-2", "gpt-image-1-mini", "chatgpt-image-latest"]


def make(http: httpx.AsyncClient, type_: str = "openai", *, settings: dict | None = None,
         credentials: dict | None = None, backends: list[dict] | None = None, provider_id: str = "oa") -> ImageProvider:
    """An adapter built the way the studio builds it (registry, ProviderConfig)."""
    config = ProviderConfig(type=type_, credentials=credentials or {}, settings=settings or {},
                            backends=backends or [])
    return create_provider(provider_id, config, http)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def images_answer(*images: bytes, **top: Any) -> dict[str, Any]:
    """An ImagesResponse with ``b64_json`` items (the GPT image models' form)."""
    return {"created": 1713833628, "data": [{"b64_json": b64(i)} for i in images], **top}


def models_answer(ids: list[str] = MODELS) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": i, "object": "model", "created": 1698785189, "owned_by": "system"}
                                       for i in ids]}


def error_answer(message: str, *, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, **more: Any) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code, **more}}


def image_bytes(width: int, height: int, fmt: str = "PNG", mode: str = "RGB", color: Any = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), color).save(out, format=fmt)
    return out.getvalue()


def half_white_mask(width: int, height: int) -> bytes:
    """The studio's mask convention: white (left half) is painted, black is kept."""
    im = Image.new("L", (width, height), 0)
    im.paste(255, (0, 0, width // 2, height))
    out = io.BytesIO()
    im.save(out, format="PNG")
    return out.getvalue()


def multipart(request: httpx.Request) -> dict[str, list[dict[str, Any]]]:
    """The parts of a multipart/form-data request: ``{name: [{"filename", "type", "data"}]}``
    (``data`` bytes; text fields also as ``text``)."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.content)
    assert message.is_multipart()
    out: dict[str, list[dict[str, Any]]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True)
        out.setdefault(name, []).append({"filename": part.get_filename(), "type": part.get("content-type"),
                                         "data": data, "text": data.decode("utf-8", "replace")})
    return out


def form_fields(request: httpx.Request) -> dict[str, str]:
    """The text fields of a multipart request, one value each."""
    return {name: parts[0]["text"] for name, parts in multipart(request).items() if parts[0]["filename"] is None}


def alpha_of(png: bytes) -> Image.Image:
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG"
        return im.convert("RGBA").getchannel("A")


def tiny_png() -> bytes:
    return noisy_png(16, 16)
