"""The InvokeAI provider's queue behaviour against the fake server: progress while queued and
running, cancel (ours and the server's), failed items, running out of time, and resuming from
remembered queue item ids without enqueuing again."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from image_studio.errors import GenerationFailed, JobCanceled, ProviderTimeout
from image_studio.types import GenerationRequest
from tests.fakes.invokeai_server import FakeInvokeAI
from tests.providers.invokeai_helpers import (ENQUEUE, SD15, fake, http, ident, make_ctx, make_provider,  # noqa: F401
                                              start_held, until)


async def test_progress_while_queued_then_running(http: httpx.AsyncClient) -> None:
    with FakeInvokeAI() as fake:
        provider = make_provider(fake.url, http)
        fake.hold(after_nodes=3)
        blocker_ctx, _ = make_ctx(provider, job_id="blocker")
        blocker = asyncio.create_task(provider.generate(GenerationRequest(prompt="x", width=32, height=32), blocker_ctx))
        await until(lambda: fake.items.get(1, {}).get("status") == "in_progress")
        ctx, rec = make_ctx(provider, fake, job_id="mine")
        job = asyncio.create_task(provider.generate(GenerationRequest(prompt="y", width=32, height=32), ctx))

        await until(lambda: any((p["message"] or "").startswith("waiting") for p in rec.progress))
        queued = next(p for p in rec.progress if (p["message"] or "").startswith("waiting"))
        assert queued["message"] == "waiting in the InvokeAI queue (1 pending, 1 running)"
        assert queued["value"] == 0 and queued["max"] == 6  # the 6 nodes of our SD1 txt2img graph
        fake.release(1)  # the blocker finishes; ours runs up to the hold
        await until(lambda: fake.items[2]["status"] == "in_progress" and any(p["value"] == 3 for p in rec.progress))
        assert not job.done()
        fake.release()
        result, _ = await asyncio.gather(job, blocker)

    assert len(result.files) == 1
    values = [p["value"] for p in rec.progress]
    assert values == sorted(values) and values[-1] == rec.progress[-1]["max"] == 6
    assert rec.progress[-1]["message"] == "1/1 images done"


async def test_cancel_cancels_the_queue_item_and_raises(fake: FakeInvokeAI, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    job, ctx, rec = await start_held(fake, provider, after_nodes=2, n=2)
    await until(lambda: fake.items[1]["status"] == "in_progress" and bool(rec.progress))
    ctx.cancel_event.set()
    with pytest.raises(JobCanceled):
        await job
    cancels = [r["path"] for r in fake.requests if r["method"] == "PUT"]
    assert cancels == ["/api/v1/queue/default/i/1/cancel", "/api/v1/queue/default/i/2/cancel"]
    assert [fake.items[i]["status"] for i in (1, 2)] == ["canceled", "canceled"]


async def test_cancel_method_cancels_the_remembered_items(fake: FakeInvokeAI, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    job, ctx, _ = await start_held(fake, provider, after_nodes=1)
    ctx.cancel_event.set()  # what the orchestrator does, then provider.cancel(ctx)
    await provider.cancel(ctx)
    with pytest.raises(JobCanceled):
        await job
    assert fake.items[1]["status"] == "canceled"
    assert len(fake.calls("/api/v1/queue/default/i/1/cancel", "PUT")) >= 1
    await provider.cancel(ctx)  # again, on a finished item: harmless
    assert fake.items[1]["status"] == "canceled"


async def test_failed_item_raises_generation_failed_with_its_error(fake: FakeInvokeAI, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    fake.hold(after_nodes=1)  # item 2 waits after its first node; item 1 fails after its first
    fake.fail_next("OutOfMemoryError", "CUDA out of memory. Tried to allocate 2.00 GiB", after_nodes=1)
    with pytest.raises(GenerationFailed) as info:
        await provider.generate(GenerationRequest(prompt="p", width=32, height=32, n=2), make_ctx(provider)[0])
    assert "OutOfMemoryError: CUDA out of memory" in info.value.message and info.value.retryable
    assert fake.items[1]["status"] == "failed" and fake.items[2]["status"] == "canceled"


async def test_a_node_failing_on_the_server_is_not_retryable(fake: FakeInvokeAI, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    gone = {"model": {**ident(SD15), "key": "deleted-model"}}
    request = GenerationRequest(prompt="p", width=32, height=32, extra={"nodes": {"model_loader": gone}})
    with pytest.raises(GenerationFailed) as info:
        await provider.generate(request, make_ctx(provider)[0])
    assert "Unknown model deleted-model" in info.value.message and not info.value.retryable


async def test_resume_polls_the_remembered_items_without_enqueuing_again(
        fake: FakeInvokeAI, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    crashed, _, rec = await start_held(fake, provider, after_nodes=2, n=2, seed=11)
    await until(lambda: fake.items[1]["status"] == "in_progress")
    crashed.cancel()  # the process died: nothing is canceled on the server
    with pytest.raises(asyncio.CancelledError):
        await crashed

    restarted = make_provider(fake.url, http)
    ctx2, rec2 = make_ctx(restarted, job_id="job-1", resume_id=rec.remembered[0])
    fake.release()
    result = await restarted.generate(GenerationRequest(prompt="p", width=32, height=32, n=2, seed=11), ctx2)

    assert len(fake.bodies(ENQUEUE)) == 1 and rec2.remembered == []
    assert [f.seed for f in result.files] == [11, 12] and result.provider_job_id == "1,2"
    assert not [r for r in fake.requests if r["method"] == "PUT"]


async def test_resume_of_a_vanished_item_fails_without_retry(fake: FakeInvokeAI, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    with pytest.raises(GenerationFailed) as info:
        await provider.generate(GenerationRequest(prompt="p"), make_ctx(provider, resume_id="99")[0])
    assert "99 is gone" in info.value.message and not info.value.retryable
    assert fake.bodies(ENQUEUE) == []


async def test_an_item_canceled_on_the_server_fails_the_job(fake: FakeInvokeAI, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    job, _, _ = await start_held(fake, provider, after_nodes=2)
    await http.put(f"{fake.url}/api/v1/queue/default/i/1/cancel", timeout=5)  # someone in InvokeAI's UI
    with pytest.raises(GenerationFailed) as info:
        await job
    assert "canceled on the InvokeAI server" in info.value.message and not info.value.retryable


async def test_running_out_of_time_cancels_the_items(fake: FakeInvokeAI, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    fake.hold(after_nodes=1)
    ctx, _ = make_ctx(provider, timeout=1.0)
    with pytest.raises(ProviderTimeout):
        await provider.generate(GenerationRequest(prompt="p", width=32, height=32), ctx)
    assert fake.items[1]["status"] == "canceled"
