"""providers/common.py: credentials, downloads and the polling loop."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import respx

from image_studio.config import ProviderConfig
from image_studio.errors import ConfigError, JobCanceled, ProviderTimeout, ProviderUnavailable
from image_studio.providers.common import api_key, bearer, download, image_size, poll
from image_studio.providers.placeholder import PlaceholderProvider
from tests.providers.contract import make_ctx
from tests.storage.helpers import noisy_png


@pytest.fixture
async def provider():
    async with httpx.AsyncClient() as http:
        yield PlaceholderProvider("p", ProviderConfig(type="placeholder", credentials={"api_key": " k-1 "}), http)


async def test_api_key_and_bearer(provider):
    assert api_key(provider) == "k-1" and bearer(provider) == {"Authorization": "Bearer k-1"}
    with pytest.raises(ConfigError) as info:
        api_key(provider, "token")
    assert info.value.field == "providers.p.credentials.token"


async def test_download_and_errors(provider):
    data = noisy_png(20, 10)
    with respx.mock:
        respx.get("https://cdn.example/a.png").respond(200, content=data, headers={"content-type": "image/png; x=1"})
        respx.get("https://cdn.example/gone.png").respond(503)
        got, ctype = await download(provider, None, "https://cdn.example/a.png")
        assert got == data and ctype == "image/png" and image_size(got) == (20, 10)
        with pytest.raises(ProviderUnavailable):
            await download(provider, None, "https://cdn.example/gone.png")
    assert image_size(b"not an image") == (None, None)


async def test_poll_until_finished_reports_each_update(provider):
    ctx, _ = make_ctx(provider)
    states = iter(["queued", "running", "running", "done"])
    seen = []

    async def update(state, n):
        seen.append((state, n))

    result = await poll(ctx, lambda: asyncio.sleep(0, next(states)), lambda s: s == "done", interval=0.001,
                        on_update=update)
    assert result == "done" and seen[-1] == ("done", 4)


async def test_poll_stops_on_cancel_and_timeout(provider):
    ctx, _ = make_ctx(provider)
    asyncio.get_running_loop().call_later(0.05, ctx.cancel_event.set)
    with pytest.raises(JobCanceled):
        await poll(ctx, lambda: asyncio.sleep(0, "running"), lambda s: False, interval=0.01)
    ctx, _ = make_ctx(provider, timeout=0.05)
    with pytest.raises(ProviderTimeout):
        await poll(ctx, lambda: asyncio.sleep(0, "running"), lambda s: False, interval=0.01)
