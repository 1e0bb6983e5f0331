"""The studio with a ComfyUI provider (the fake that replays recorded transcripts): workflow
conversion and saved workflows through the API, generation with progress, and a restart that
resumes polling a remembered prompt without submitting it twice."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from image_studio.config import Settings, StudioConfig
from image_studio.studio import Studio
from image_studio.types import GenerationRequest, JobStatus
from tests.api.conftest import Api
from tests.fakes.comfyui_server import FakeComfyUI
from tests.providers.comfyui import graphs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "comfyui"


def comfy_config(url: str) -> StudioConfig:
    return StudioConfig.model_validate({
        "default_provider": "comfy",
        "providers": {"comfy": {"type": "comfyui", "backends": [{"url": url}],
                                "settings": {"workflow": "weightfree", "history_poll_interval": 0.5}}},
    })


@pytest.fixture
def fake():
    with FakeComfyUI() as server:
        yield server


def test_convert_save_and_run_a_workflow(make_server, fake):
    api = Api(make_server(comfy_config(fake.url)).url, None)
    ui = json.loads((FIXTURES / "ui_txt2img.json").read_text())
    converted = api.post("/workflows/convert", json={"workflow": ui}).json()
    assert converted["api"] == json.loads((FIXTURES / "api_txt2img.json").read_text())
    assert {"prompt", "negative_prompt", "seed", "steps", "checkpoint"} <= set(converted["slots"])

    sleepy = graphs.template(graphs.sleep(steps=4, step_seconds=0.5), name="sleepy",
                             steps=[["2", "steps"]], width=[["1", "width"]], height=[["1", "height"]])
    created = api.post("/workflows", json={"name": "sleepy", "workflow": sleepy})
    assert created.status_code == 201, created.text
    wf = created.json()
    assert wf["parameters"]["properties"]["steps"]["default"] == 4
    assert api.get(f"/workflows/{wf['id']}/parameters").json()["properties"]["steps"]["type"] == "integer"
    assert api.post("/workflows", json={"name": "sleepy", "workflow": sleepy}).status_code == 409
    names = [w["name"] for w in api.get("/workflows").json()]
    assert names[:3] == ["txt2img", "upscale", "weightfree"] and "sleepy" in names

    job = api.post("/generations", json={"prompt": "x", "workflow": "sleepy", "width": 64, "height": 48,
                                         "params": {"steps": 3}}).json()
    events = api.events(job["id"])
    assert events[-1][0] == "succeeded", events[-1]
    steps = [(d.get("value"), d.get("max")) for t, d in events if t == "progress"]
    assert (3, 3) in steps
    assert any(d.get("preview") for t, d in events if t in ("progress", "preview"))
    done = api.get(f"/jobs/{job['id']}").json()
    assert done["assets"][0]["width"] == 64 and done["assets"][0]["height"] == 48
    posted = [r["json"] for r in fake.requests if r["path"] == "/prompt" and r["method"] == "POST"]
    assert posted[-1]["prompt"]["2"]["inputs"]["steps"] == 3


def test_object_info_pass_through_and_models(make_server, fake):
    api = Api(make_server(comfy_config(fake.url)).url, None)
    info = api.get("/comfyui/comfy/object_info").json()
    assert "KSampler" in info and "EmptyImage" in info
    options = api.get("/providers/comfy/options").json()
    assert "euler" in options["samplers"] and "weightfree" in options["workflows"]
    assert api.post("/providers/comfy/test").json()[0]["ok"] is True


async def cut_off_mid_run(settings: Settings, config: StudioConfig, fake: FakeComfyUI, *, prompt: str,
                          steps: int):
    """Start a Studio, submit a FixtureSleepProgress job the fake holds at step 2, wait until
    its prompt_id is remembered and the prompt runs on ComfyUI, then stop the Studio (the
    process goes away mid-run; the prompt keeps running). Returns ``(job, stored job)``."""
    workflow = json.dumps(graphs.template(graphs.sleep(steps=steps, step_seconds=0.5), name="sleepy"))
    fake.pause_at_step(2)
    first = Studio(settings, config=config)
    await first.start()
    job = await first.submit(GenerationRequest(prompt=prompt, workflow=workflow, width=64, height=64))
    for _ in range(500):
        current = await first.store.get_job(job.id)
        if current.provider_job_id and fake.running is not None:  # remembered, and running on ComfyUI
            break
        await asyncio.sleep(0.02)
    assert current.status is JobStatus.running and current.provider_job_id
    await first.stop()
    return job, current


async def test_restart_resumes_remembered_prompt_without_resubmitting(tmp_path, fake):
    settings = Settings(data_dir=tmp_path, secret_key="k")
    config = comfy_config(fake.url)
    job, current = await cut_off_mid_run(settings, config, fake, prompt="resume me", steps=4)
    fake.release()

    second = Studio(settings, config=config)
    await second.start()
    try:
        done = await second.wait(job.id, 30)
        assert done.status is JobStatus.succeeded, done.error
        assert len(done.asset_ids) == 1 and done.provider_job_id == current.provider_job_id
        submits = [r for r in fake.requests if r["path"] == "/prompt" and r["method"] == "POST"]
        assert [s["json"]["prompt_id"] for s in submits] == [current.provider_job_id]
    finally:
        await second.stop()


def test_bad_slot_is_a_422_naming_the_slot(make_server, fake):
    api = Api(make_server(comfy_config(fake.url)).url, None)
    bad = graphs.template(graphs.invert(), name="bad", steps=[["9", "steps"]])
    r = api.post("/workflows", json={"name": "bad", "workflow": bad})
    assert r.status_code == 422 and r.json()["error"]["field"] == "workflow.slots.steps"


async def test_cancel_of_a_job_waiting_to_resume_stops_it_on_comfyui(tmp_path, fake):
    settings = Settings(data_dir=tmp_path, secret_key="k")
    config = comfy_config(fake.url)
    job, current = await cut_off_mid_run(settings, config, fake, prompt="cancel me later", steps=6)

    second = Studio(settings, config=config, run_queue=False)  # recovered, not yet resumed
    await second.start()
    try:
        assert second.queue_position(job.id) == 0
        canceled = await second.cancel(job.id)
        assert canceled.status is JobStatus.canceled
        interrupts = [r for r in fake.requests if r["path"] == "/interrupt"]
        assert interrupts and interrupts[-1]["json"] == {"prompt_id": current.provider_job_id}
    finally:
        fake.release()
        await second.stop()
