"""EmbeddedQueue ordering, concurrency, removal and stop; EventBus fan-out and back-pressure."""

from __future__ import annotations

import asyncio

import pytest

from image_studio.jobs.events import EventBus
from image_studio.jobs.queue import EmbeddedQueue
from image_studio.types import ProgressEvent


async def test_fifo_order_and_worker_limit():
    seen, running, peak = [], 0, 0
    release = asyncio.Event()

    async def runner(job_id: str) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        seen.append(job_id)
        await release.wait()
        running -= 1

    q = EmbeddedQueue(workers=2)
    await q.start(runner)
    for i in range(5):
        await q.enqueue(f"j{i}")
    await asyncio.sleep(0.05)
    assert seen == ["j0", "j1"] and q.running == 2 and q.waiting == 3
    assert q.position("j2") == 0 and q.position("j4") == 2 and q.position("j0") is None
    assert q.remove("j3") and not q.remove("j3")
    release.set()
    await asyncio.sleep(0.05)
    assert seen == ["j0", "j1", "j2", "j4"] and peak == 2
    await q.stop()


async def test_runner_exception_does_not_kill_worker():
    done = []

    async def runner(job_id: str) -> None:
        if job_id == "bad":
            raise RuntimeError("boom")
        done.append(job_id)

    q = EmbeddedQueue(workers=1)
    await q.start(runner)
    await q.enqueue("bad")
    await q.enqueue("good")
    await asyncio.sleep(0.05)
    assert done == ["good"]
    await q.stop()


async def test_stop_cancels_running_jobs():
    started, cancelled = asyncio.Event(), []

    async def runner(job_id: str) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(job_id)
            raise

    q = EmbeddedQueue(workers=1)
    await q.start(runner)
    await q.enqueue("long")
    await started.wait()
    await q.stop()
    assert cancelled == ["long"]


def test_workers_must_be_positive():
    with pytest.raises(ValueError):
        EmbeddedQueue(workers=0)


async def test_bus_delivers_per_job_and_globally():
    bus = EventBus()
    async with bus.subscribe("a") as sub_a, bus.subscribe() as sub_all:
        bus.publish(ProgressEvent(job_id="a", type="started"))
        bus.publish(ProgressEvent(job_id="b", type="started"))
        assert sub_a.queue.qsize() == 1 and sub_all.queue.qsize() == 2
    assert bus.subscriber_count == 0


async def test_slow_subscriber_drops_progress_never_lifecycle():
    bus = EventBus()
    async with bus.subscribe("a") as sub:
        bus.publish(ProgressEvent(job_id="a", type="started"))
        for i in range(600):
            bus.publish(ProgressEvent(job_id="a", type="progress", value=i, max=600))
        bus.publish(ProgressEvent(job_id="a", type="succeeded"))
        events = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    types = [e.type for e in events]
    assert types[0] == "started" and types[-1] == "succeeded"
    assert len(events) <= 256 and sub.dropped > 0
    progress = [e.value for e in events if e.type == "progress"]
    assert progress == sorted(progress) and progress[-1] == 599
