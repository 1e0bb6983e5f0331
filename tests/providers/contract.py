"""The shared provider contract suite: every adapter's tests subclass :class:`ProviderContract`.

A subclass provides the fixtures ``provider`` (an adapter wired to a working fake or real
backend) and ``down_provider`` (the same adapter pointed at a port where nothing listens), and
may override :meth:`request` to fit the adapter (a workflow, a size it accepts).
"""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from image_studio.errors import JobCanceled, ProviderError
from image_studio.providers.base import ImageProvider, JobContext
from image_studio.types import Capabilities, GenerationRequest, GenerationResult, HealthStatus, ModelInfo


class Recorder:
    """Collects what an adapter reports through a JobContext."""

    def __init__(self) -> None:
        self.progress: list[dict] = []
        self.remembered: list[str] = []

    async def on_progress(self, **kw) -> None:
        self.progress.append(kw)

    async def on_remember(self, provider_job_id: str) -> None:
        self.remembered.append(provider_job_id)


def make_ctx(provider: ImageProvider, job_id: str = "job-contract", **kw) -> tuple[JobContext, Recorder]:
    """A JobContext for ``provider``'s first backend and the Recorder behind it."""
    rec = Recorder()
    ctx = JobContext(
        job_id=job_id,
        provider_id=provider.id,
        http=provider.http,
        backend=provider.backends[0],
        on_progress=rec.on_progress,
        on_remember=rec.on_remember,
        **kw,
    )
    return ctx, rec


class ProviderContract:
    """Tests every adapter must pass."""

    @pytest.fixture
    def provider(self) -> ImageProvider:  # pragma: no cover - overridden
        raise NotImplementedError

    @pytest.fixture
    def down_provider(self) -> ImageProvider:  # pragma: no cover - overridden
        raise NotImplementedError

    def request(self) -> GenerationRequest:
        return GenerationRequest(prompt="a red fox in the snow", width=64, height=64, steps=2, seed=42)

    async def test_capabilities_are_declared(self, provider: ImageProvider) -> None:
        caps = provider.capabilities
        assert isinstance(caps, Capabilities)
        assert caps.media, "a provider produces at least one media kind"
        assert caps.max_width >= 64 and caps.max_height >= 64 and caps.max_n >= 1
        assert provider.type and provider.id

    async def test_generate_returns_decodable_files(self, provider: ImageProvider) -> None:
        ctx, rec = make_ctx(provider)
        result = await provider.generate(self.request(), ctx)
        assert isinstance(result, GenerationResult)
        assert result.provider == provider.id
        assert result.files, "a successful generation returns at least one file"
        for f in result.files:
            assert f.data and f.mime_type
            if f.media.value == "image":
                with Image.open(io.BytesIO(f.data)) as im:
                    im.load()
                    assert im.width > 0 and im.height > 0

    async def test_health_ok_and_names_provider(self, provider: ImageProvider) -> None:
        status = await provider.health()
        assert isinstance(status, HealthStatus)
        assert status.ok, status.message
        assert status.provider == provider.id

    async def test_list_models_gives_model_info(self, provider: ImageProvider) -> None:
        models = await provider.list_models()
        assert isinstance(models, list)
        assert all(isinstance(m, ModelInfo) and m.id for m in models)

    async def test_canceled_before_start_raises(self, provider: ImageProvider) -> None:
        ctx, _ = make_ctx(provider)
        ctx.cancel_event.set()
        with pytest.raises(JobCanceled):
            await provider.generate(self.request(), ctx)

    async def test_down_backend_health_not_ok(self, down_provider: ImageProvider) -> None:
        status = await asyncio.wait_for(down_provider.health(), timeout=15)
        assert not status.ok
        assert status.message

    async def test_down_backend_generate_raises_provider_error(self, down_provider: ImageProvider) -> None:
        ctx, _ = make_ctx(down_provider)
        with pytest.raises(ProviderError) as info:
            await asyncio.wait_for(down_provider.generate(self.request(), ctx), timeout=15)
        assert info.value.retryable
