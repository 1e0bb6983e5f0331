"""Studio job lifecycle details: queue expiry, per-job timeout, events order, unknown ids."""

from __future__ import annotations

import asyncio

import pytest

from image_studio.config import Settings, StudioConfig
from image_studio.errors import NotFound
from image_studio.studio import Studio
from image_studio.types import GenerationRequest, JobStatus

CONFIG = StudioConfig.model_validate({
    "default_provider": "slow",
    "providers": {"slow": {"type": "placeholder", "settings": {"delay": 0.5}}},
})


def req(prompt: str = "p") -> GenerationRequest:
    return GenerationRequest(prompt=prompt, width=64, height=64)


async def test_job_waiting_past_queue_ttl_expires(tmp_path):
    settings = Settings(data_dir=tmp_path, workers=1, queue_ttl=0.1, secret_key="k")
    async with Studio(settings, config=CONFIG) as studio:
        first = await studio.submit(req("first"))
        async with studio.events() as events:
            second = await studio.submit(req("second"))
            done = await studio.wait(second.id, 10)
            seen = []
            while not events.empty():
                seen.append(events.get_nowait())
        assert (await studio.wait(first.id, 10)).status is JobStatus.succeeded
    assert done.status is JobStatus.expired and done.error["type"] == "Expired"
    assert done.started_at is None
    assert [e.type for e in seen if e.job_id == second.id] == ["queued", "expired"]


async def test_per_job_timeout_fails_the_job(tmp_path):
    settings = Settings(data_dir=tmp_path, secret_key="k")
    async with Studio(settings, config=CONFIG) as studio:
        job = await studio.submit(GenerationRequest(prompt="long", width=64, height=64, n=8), timeout=0.3)
        done = await studio.wait(job.id, 10)
    assert done.status is JobStatus.failed
    assert done.error["type"] == "ProviderTimeout" and "timed out" in done.error["message"]


async def test_lifecycle_events_in_order(tmp_path):
    async with Studio(Settings(data_dir=tmp_path, secret_key="k"), config=CONFIG) as studio:
        async with studio.events() as events:
            job = await studio.submit(req())
            await studio.wait(job.id, 10)
            await asyncio.sleep(0)
            types = []
            while not events.empty():
                types.append(events.get_nowait().type)
    assert types[0] == "queued" and types[1] == "started" and types[-1] == "succeeded"
    assert set(types[2:-1]) == {"progress"}


async def test_other_owner_and_unknown_ids_are_not_found(tmp_path):
    async with Studio(Settings(data_dir=tmp_path, secret_key="k"), config=CONFIG) as studio:
        job = await studio.submit(req(), owner="alice")
        with pytest.raises(NotFound):
            await studio.get_job(job.id, owner="bob")
        with pytest.raises(NotFound):
            await studio.cancel("missing")
        assert (await studio.get_job(job.id, owner="alice")).owner == "alice"
