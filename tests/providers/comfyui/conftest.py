"""Fixtures of the ComfyUI tests: the fake server (or a real ComfyUI at ``$COMFYUI_URL``),
a recording HTTP client, a ComfyUI client and provider factories.

With ``COMFYUI_URL`` set (e.g. ``http://127.0.0.1:8188``, a ComfyUI started with ``--cpu``
and no model files), every test runs against it, except those needing the fake's forced
scenarios (fixture ``fake``), and those needing the test-only nodes when the server lacks
them (fixture ``test_nodes``; see ``/work/shared/comfyui_test_nodes``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from image_studio.config import BackendConfig, ProviderConfig
from image_studio.providers.comfyui.client import ComfyUIClient
from image_studio.providers.comfyui.provider import ComfyUIProvider
from tests.fakes.comfyui_server import FakeComfyUI

REAL_URL = os.environ.get("COMFYUI_URL", "").strip().rstrip("/")


@dataclass
class ComfyBackend:
    """Where the tests run: the fake (``fake`` set) or a real ComfyUI."""

    url: str
    fake: FakeComfyUI | None = None
    object_info: dict[str, Any] = field(default_factory=dict)

    @property
    def real(self) -> bool:
        return self.fake is None

    @property
    def step_seconds(self) -> float:
        """Seconds per FixtureSleepProgress step: long enough on a real server to act mid-run."""
        return 0.3 if self.real else 0.01

    def pause(self, step: int) -> None:
        """Hold sleep-node runs after ``step`` (fake only; a real run just takes its time)."""
        if self.fake is not None:
            self.fake.pause_at_step(step)

    def release(self) -> None:
        if self.fake is not None:
            self.fake.release()


@pytest.fixture
def comfy() -> Iterator[ComfyBackend]:
    if REAL_URL:
        info = httpx.get(f"{REAL_URL}/object_info", timeout=60, trust_env=False).json()
        yield ComfyBackend(REAL_URL, None, info)
        return
    with FakeComfyUI() as fake:
        yield ComfyBackend(fake.url, fake, fake.object_info)


@pytest.fixture
def fake(comfy: ComfyBackend) -> FakeComfyUI:
    """The fake server; skips against a real ComfyUI (the test forces scenarios)."""
    if comfy.fake is None:
        pytest.skip("needs the fake ComfyUI's forced scenarios")
    return comfy.fake


@pytest.fixture
def test_nodes(comfy: ComfyBackend) -> None:
    """Skip unless the server has FixtureSleepProgress and FixtureRaiseError."""
    if not {"FixtureSleepProgress", "FixtureRaiseError"} <= set(comfy.object_info):
        pytest.skip("the ComfyUI at COMFYUI_URL lacks the test-only fixture nodes")


class Recorder:
    """Every HTTP request the client sent: ``(method, path, query, body bytes)``."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, str], bytes]] = []

    async def __call__(self, request: httpx.Request) -> None:
        body = request.content if not request.headers.get("content-type", "").startswith("multipart") else b""
        self.sent.append((request.method, request.url.path, dict(request.url.params), body))

    def calls(self, method: str, path: str) -> list[tuple[str, str, dict[str, str], bytes]]:
        prefix = path[:-1] if path.endswith("*") else None
        return [c for c in self.sent if c[0] == method and (c[1].startswith(prefix) if prefix else c[1] == path)]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def http(recorder: Recorder) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(event_hooks={"request": [recorder]}, trust_env=False) as client:
        yield client


@pytest.fixture
async def client(comfy: ComfyBackend, http: httpx.AsyncClient) -> AsyncIterator[ComfyUIClient]:
    c = ComfyUIClient(comfy.url, http, timeout=30)
    yield c
    await c.close()


@pytest.fixture
async def make_provider(comfy: ComfyBackend, http: httpx.AsyncClient) -> AsyncIterator[Any]:
    """``make_provider(url=None, **settings)``: a ComfyUIProvider on the backend (closed after)."""
    made: list[ComfyUIProvider] = []

    def make(url: str | None = None, **settings: Any) -> ComfyUIProvider:
        settings.setdefault("history_poll_interval", 0.5)
        settings.setdefault("connect_timeout", 5)
        config = ProviderConfig(type="comfyui", settings=settings, backends=[BackendConfig(url=url or comfy.url)])
        provider = ComfyUIProvider("comfy", config, http)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.close()
