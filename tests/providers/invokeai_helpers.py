"""Fixtures and helpers of the InvokeAI provider tests (``test_invokeai*.py``): the fake server,
the shared client, a provider built through the registry, a context whose recorder notes when
the item ids were remembered, and graph-body helpers.

Import the fixtures into a test module (``from tests.providers.invokeai_helpers import fake, http``)
so pytest finds them there.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from image_studio.config import ProviderConfig
from image_studio.providers.base import ImageProvider, JobContext
from image_studio.providers.registry import create_provider
from image_studio.types import GenerationRequest
from tests.fakes.invokeai_server import MODELS, FakeInvokeAI
from tests.providers.contract import Recorder

SD15, SDXL, FLUX = MODELS[0], MODELS[1], MODELS[2]
ENQUEUE = "/api/v1/queue/default/enqueue_batch"
BOARDS = "/api/v1/boards/"


@pytest.fixture
def fake() -> Iterator[FakeInvokeAI]:
    with FakeInvokeAI() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def make_provider(url: str, http: httpx.AsyncClient, *, settings: dict | None = None,
                  credentials: dict | None = None) -> ImageProvider:
    config = ProviderConfig(type="invokeai", backends=[{"url": url}], credentials=credentials or {},
                            settings={"poll_interval": 0.05, **(settings or {})})
    return create_provider("invoke", config, http)


class OrderRecorder(Recorder):
    """Also notes how many queue-item polls the fake had seen when the id was remembered."""

    def __init__(self, fake: FakeInvokeAI | None) -> None:
        super().__init__()
        self.fake, self.polls_at_remember = fake, None

    async def on_remember(self, provider_job_id: str) -> None:
        await super().on_remember(provider_job_id)
        if self.fake is not None:
            self.polls_at_remember = sum(1 for r in self.fake.requests if "/queue/default/i/" in r["path"])


def make_ctx(provider: ImageProvider, fake: FakeInvokeAI | None = None, job_id: str = "job-1",
             **kw: Any) -> tuple[JobContext, OrderRecorder]:
    rec = OrderRecorder(fake)
    ctx = JobContext(job_id=job_id, provider_id=provider.id, http=provider.http, backend=provider.backends[0],
                     on_progress=rec.on_progress, on_remember=rec.on_remember, **kw)
    return ctx, rec


async def until(condition: Callable[[], bool]) -> None:
    """Wait (up to 10 s, then fail) until ``condition()`` holds."""
    async def wait() -> None:
        while not condition():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(wait(), timeout=10)


async def start_held(fake: FakeInvokeAI, provider: ImageProvider, *, after_nodes: int, **request: Any,
                     ) -> tuple[asyncio.Task, JobContext, OrderRecorder]:
    """Start a generation that the fake holds after ``after_nodes`` nodes; returns once the
    item ids are remembered."""
    fake.hold(after_nodes=after_nodes)
    ctx, rec = make_ctx(provider, fake)
    req = GenerationRequest(**{"prompt": "p", "width": 32, "height": 32, **request})
    job = asyncio.create_task(provider.generate(req, ctx))
    await until(lambda: bool(rec.remembered))
    return job, ctx, rec


def ident(model: dict) -> dict:
    return {k: model[k] for k in ("key", "hash", "name", "base", "type")}


def n(node_id: str, type_: str, output: bool = False, **fields: Any) -> dict:
    return {"id": node_id, "type": type_, "is_intermediate": not output, "use_cache": not output, **fields}


def e(src: str, sf: str, dst: str, df: str) -> tuple[str, str, str, str]:
    return (src, sf, dst, df)


def edges_of(body: dict) -> list[tuple[str, str, str, str]]:
    return sorted((x["source"]["node_id"], x["source"]["field"], x["destination"]["node_id"],
                   x["destination"]["field"]) for x in body["batch"]["graph"]["edges"])
