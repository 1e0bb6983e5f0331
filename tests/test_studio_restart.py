"""Restart recovery: jobs queued and running when the process stops are handled on the next
start — queued ones run, running ones resume on a resumable provider or fail with the reason —
and nothing is lost or run twice."""

from __future__ import annotations

import asyncio

from image_studio.config import Settings, StudioConfig
from image_studio.jobs.store import AssetFilter
from image_studio.studio import Studio
from image_studio.types import GenerationRequest, JobStatus

CONFIG = StudioConfig.model_validate({
    "default_provider": "slow",
    "providers": {"slow": {"type": "placeholder", "settings": {"delay": 0.4}}},
})


async def wait_for(predicate, timeout: float = 15.0) -> None:  # noqa: ANN001
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_queued_jobs_run_after_restart_and_running_unresumable_job_fails(tmp_path):
    settings = Settings(data_dir=tmp_path, workers=1, secret_key="k")
    first = Studio(settings, config=CONFIG)
    await first.start()
    jobs = [await first.submit(GenerationRequest(prompt=f"job {i}", width=64, height=64), owner="u") for i in range(3)]

    async def running() -> bool:
        return (await first.store.get_job(jobs[0].id)).status is JobStatus.running

    await wait_for(running)
    await first.stop()  # no grace: job 0 is cut off mid-run

    second = Studio(settings, config=CONFIG)
    await second.start()
    try:
        for job in jobs[1:]:
            done = await second.wait(job.id, 15)
            assert done.status is JobStatus.succeeded, done.error
            assert len(done.asset_ids) == 1
        interrupted = await second.get_job(jobs[0].id)
        assert interrupted.status is JobStatus.failed
        assert interrupted.error["type"] == "Interrupted"
        assert "not run again" in interrupted.error["message"]
        assert interrupted.asset_ids == []
        assets = (await second.list_assets(AssetFilter(), limit=50)).items
        assert sorted(a.prompt for a in assets) == ["job 1", "job 2"]  # none twice, none for job 0
    finally:
        await second.stop()


async def test_restart_with_nothing_pending_changes_nothing(tmp_path):
    settings = Settings(data_dir=tmp_path, secret_key="k")
    async with Studio(settings, config=CONFIG) as studio:
        job = await studio.submit(GenerationRequest(prompt="done before", width=64, height=64))
        assert (await studio.wait(job.id, 10)).status is JobStatus.succeeded
    async with Studio(settings, config=CONFIG) as studio:
        again = await studio.get_job(job.id)
        assert again.status is JobStatus.succeeded and len(again.asset_ids) == 1
