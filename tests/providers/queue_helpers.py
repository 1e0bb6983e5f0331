"""Fixtures and builders shared by the tests of the queue-style adapters (Replicate, fal).

Import the fixtures into a test module (``from tests.providers.queue_helpers import http, router``)
so pytest finds them there.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx

from image_studio.config import ProviderConfig
from image_studio.providers.base import ImageProvider
from image_studio.providers.registry import create_provider


def build(type_: str, provider_id: str, http: httpx.AsyncClient, *, key: str | None, settings: dict | None = None,
          url: str | None = None) -> ImageProvider:
    """An adapter built the way the studio builds it (registry, ProviderConfig), polling every
    0.01 s; ``key`` None leaves ``credentials.api_key`` out; ``url`` replaces the base URL."""
    config = ProviderConfig(type=type_, credentials={"api_key": key} if key is not None else {},
                            settings={"poll_interval": 0.01, **(settings or {})},
                            backends=[{"url": url}] if url else [])
    return create_provider(provider_id, config, http)


def sent_json(route: respx.Route) -> Any:
    """The JSON body of the last request ``route`` saw."""
    return json.loads(route.calls.last.request.content)
