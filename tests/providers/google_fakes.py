"""Shared pieces of the Gemini API adapter tests (gemini, imagen, veo): documented answer shapes."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx

from image_studio.config import ProviderConfig
from image_studio.providers.base import ImageProvider
from image_studio.providers.registry import create_provider

BASE = "https://generativelanguage.googleapis.com/v1beta"
KEY = "AIza-test-key"

MODELS_PAGE_1 = {
    "models": [
        {"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash",
         "supportedGenerationMethods": ["generateContent", "countTokens"]},
        {"name": "models/gemini-2.5-flash-image", "displayName": "Nano Banana", "version": "2.0",
         "supportedGenerationMethods": ["generateContent", "countTokens"]},
        {"name": "models/imagen-4.0-generate-001", "displayName": "Imagen 4",
         "supportedGenerationMethods": ["predict"]},
    ],
    "nextPageToken": "page-2",
}
MODELS_PAGE_2 = {
    "models": [
        {"name": "models/gemini-3-pro-image-preview", "displayName": "Nano Banana Pro",
         "supportedGenerationMethods": ["generateContent"]},
        {"name": "models/imagen-4.0-fast-generate-001", "displayName": "Imagen 4 Fast",
         "supportedGenerationMethods": ["predict"]},
        {"name": "models/veo-3.0-generate-001", "displayName": "Veo 3",
         "supportedGenerationMethods": ["predictLongRunning"]},
        {"name": "models/gemini-embedding-001", "supportedGenerationMethods": ["embedContent"]},
    ],
}


def make(type_: str, http: httpx.AsyncClient, *, settings: dict | None = None, key: str | None = KEY,
         url: str | None = None, provider_id: str = "g") -> ImageProvider:
    """An adapter of ``type_`` (gemini, imagen, veo) on the default base URL unless ``url``."""
    config = ProviderConfig(type=type_, credentials={"api_key": key} if key else {}, settings=settings or {},
                            backends=[{"url": url}] if url else [])
    return create_provider(provider_id, config, http)


def error_body(code: int, status: str, message: str, details: list[dict] | None = None) -> dict[str, Any]:
    """A Google JSON error body."""
    return {"error": {"code": code, "status": status, "message": message, **({"details": details} if details else {})}}


def models_route(request: httpx.Request) -> httpx.Response:
    """``GET /models`` in two pages (``pageToken=page-2`` gives the second)."""
    page = MODELS_PAGE_2 if request.url.params.get("pageToken") == "page-2" else MODELS_PAGE_1
    return httpx.Response(200, json=page)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def sent_json(call: Any) -> dict[str, Any]:
    """The JSON body of a recorded respx call."""
    return json.loads(call.request.content)
