"""ComfyUIProvider job lifecycle: cancel (API call and cancel event), timeout, websocket loss
(reconnect, and /history polling when it stays down), resume from a remembered prompt_id, and
a prompt deleted from the queue by someone else."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from image_studio.errors import JobCanceled, ProviderTimeout
from tests.providers.contract import make_ctx

from .conftest import ComfyBackend, Recorder
from .helpers import LIMIT, bodies, request, sleep_workflow, started, until


async def test_cancel_interrupts_on_the_backend(comfy: ComfyBackend, make_provider: Any, recorder: Recorder,
                                                test_nodes: None) -> None:
    provider = make_provider(workflow=sleep_workflow(comfy, steps=12))
    ctx, rec, task = await started(comfy, provider)
    try:
        await provider.cancel(ctx)
        with pytest.raises(JobCanceled, match="interrupted at node 2"):
            await asyncio.wait_for(task, LIMIT)
    finally:
        comfy.release()
    prompt_id = rec.remembered[0]
    assert bodies(recorder, "POST", "/queue") == [{"delete": [prompt_id]}]
    assert bodies(recorder, "POST", "/interrupt") == [{"prompt_id": prompt_id}]


async def test_cancel_event_stops_the_prompt(comfy: ComfyBackend, make_provider: Any, recorder: Recorder,
                                             test_nodes: None) -> None:
    provider = make_provider(workflow=sleep_workflow(comfy, steps=12))
    ctx, rec, task = await started(comfy, provider)
    try:
        ctx.cancel_event.set()
        with pytest.raises(JobCanceled, match="canceled"):
            await asyncio.wait_for(task, LIMIT)
    finally:
        comfy.release()
    assert bodies(recorder, "POST", "/interrupt") == [{"prompt_id": rec.remembered[0]}]


async def test_timeout_stops_the_prompt(comfy: ComfyBackend, make_provider: Any, recorder: Recorder,
                                        fake: Any) -> None:
    provider = make_provider(workflow=sleep_workflow(comfy, steps=12))
    comfy.pause(1)
    ctx, rec = make_ctx(provider, timeout=0.5)
    try:
        with pytest.raises(ProviderTimeout) as info:
            await asyncio.wait_for(provider.generate(request(), ctx), LIMIT)
    finally:
        comfy.release()
    assert info.value.retryable and rec.remembered[0] in info.value.message
    assert bodies(recorder, "POST", "/interrupt") == [{"prompt_id": rec.remembered[0]}]


async def test_websocket_reconnect_mid_run(comfy: ComfyBackend, make_provider: Any, test_nodes: None) -> None:
    provider = make_provider(workflow=sleep_workflow(comfy, steps=8))
    ctx, rec, task = await started(comfy, provider)
    try:
        await provider.client().events.drop()
        await until(lambda: provider.client().events.connects >= 2)
    finally:
        comfy.release()
    result = await asyncio.wait_for(task, LIMIT)
    assert result.files and provider.client().events.connects == 2


async def test_lost_websocket_falls_back_to_history_poll(comfy: ComfyBackend, make_provider: Any, fake: Any,
                                                         recorder: Recorder) -> None:
    provider = make_provider(workflow=sleep_workflow(comfy, steps=6), history_poll_interval=0.2)
    ctx, rec, task = await started(comfy, provider)
    fake.refuse_websockets = True
    fake.drop_sockets()
    await until(lambda: any(x["event"] == "refused" for x in fake.ws_log))  # it tried to reconnect, in vain
    assert not provider.client().events.connected
    comfy.release()
    result = await asyncio.wait_for(task, LIMIT)
    prompt_id = rec.remembered[0]
    assert result.files and result.provider_job_id == prompt_id
    end = [m for m in fake.sent if m["type"] == "executing" and m["data"] == {"node": None, "prompt_id": prompt_id}]
    assert end and not end[0]["delivered"], "the end of the run never reached the client"
    assert recorder.calls("GET", f"/history/{prompt_id}")


async def test_resume_running_prompt_without_second_post(comfy: ComfyBackend, make_provider: Any,
                                                         recorder: Recorder, test_nodes: None) -> None:
    first = make_provider(workflow=sleep_workflow(comfy, steps=8))
    ctx, rec, task = await started(comfy, first)
    task.cancel()  # the service stops; the prompt keeps running on the backend
    with pytest.raises(asyncio.CancelledError):
        await task
    prompt_id = rec.remembered[0]
    assert recorder.calls("POST", "/interrupt") == []
    second = make_provider(workflow=sleep_workflow(comfy, steps=8))
    ctx2, rec2 = make_ctx(second, resume_id=prompt_id)
    resumed = asyncio.create_task(second.generate(request(), ctx2))
    await until(lambda: resumed.done() or recorder.calls("GET", "/queue"))  # it found the prompt still running
    comfy.release()
    result = await asyncio.wait_for(resumed, LIMIT)
    assert result.provider_job_id == prompt_id and result.files and result.info["resumed"] is True
    assert len(recorder.calls("POST", "/prompt")) == 1
    assert rec2.remembered == []


async def test_resume_finished_prompt(make_provider: Any, recorder: Recorder) -> None:
    provider = make_provider(delete_history=False)
    ctx, rec = make_ctx(provider)
    done = await provider.generate(request(), ctx)
    again = make_provider()
    ctx2, _ = make_ctx(again, resume_id=rec.remembered[0])
    result = await again.generate(request(), ctx2)
    assert [f.data for f in result.files] == [f.data for f in done.files]
    assert len(recorder.calls("POST", "/prompt")) == 1


async def test_resume_unknown_prompt_submits_it_once(make_provider: Any, recorder: Recorder) -> None:
    provider = make_provider()
    prompt_id = str(uuid.uuid4())
    ctx, rec = make_ctx(provider, resume_id=prompt_id)
    result = await provider.generate(request(), ctx)
    assert result.provider_job_id == prompt_id and result.info["resumed"] is False
    assert [b["prompt_id"] for b in bodies(recorder, "POST", "/prompt")] == [prompt_id]
    assert rec.remembered == [prompt_id]


async def test_prompt_deleted_from_queue_is_canceled(comfy: ComfyBackend, make_provider: Any,
                                                     test_nodes: None) -> None:
    blocker = make_provider(workflow=sleep_workflow(comfy, steps=12))
    ctx, _, blocking = await started(comfy, blocker)
    provider = make_provider(history_poll_interval=0.2)
    ctx2, rec2 = make_ctx(provider)
    waiting = asyncio.create_task(provider.generate(request(), ctx2))
    try:
        await until(lambda: bool(rec2.remembered))
        await until(lambda: bool(blocker.client().events.queue_remaining and
                                 blocker.client().events.queue_remaining >= 2))
        await provider.client().delete_from_queue(rec2.remembered)
        with pytest.raises(JobCanceled, match="left the queue"):
            await asyncio.wait_for(waiting, LIMIT)
    finally:
        ctx.cancel_event.set()
        comfy.release()
        await asyncio.gather(blocking, return_exceptions=True)
