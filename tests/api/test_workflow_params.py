"""Exposed-parameter metadata of saved workflows: saved with the workflow (``params`` beside
``slots``), published in ``GET /workflows/{id}/parameters``' JSON Schema, kept across updates,
and enforced on a generation's ``params`` (a value outside min/max or not in enum is refused
naming ``params.<name>``)."""

from __future__ import annotations

import asyncio
import json

import pytest

from image_studio.api.workflows import check_generation_params
from image_studio.config import Settings
from image_studio.errors import ConfigError, InvalidRequest
from image_studio.jobs.workflow_store import WorkflowStore
from image_studio.providers.comfyui.workflow import PARAMS_KEY, apply, template_from_json
from image_studio.studio import Studio
from image_studio.types import GenerationRequest
from tests.api.conftest import Api
from tests.api.test_comfyui_api import comfy_config
from tests.fakes.comfyui_server import FakeComfyUI
from tests.providers.comfyui import graphs

META = {"steps": {"title": "Sleep steps", "minimum": 1, "maximum": 6, "step": 1, "default": 2,
                  "description": "How many progress steps"},
        "preview": {"title": "Send previews", "enum": [True, False]}}


@pytest.fixture
def fake():
    with FakeComfyUI() as server:
        yield server


def sleepy(name: str = "sleepy") -> dict:
    return graphs.template(graphs.sleep(steps=3, step_seconds=0.1), name=name, steps=[["2", "steps"]],
                           preview=[["2", "preview"]], width=[["1", "width"]], height=[["1", "height"]])


def test_metadata_is_saved_and_published_in_the_schema(make_server, fake):
    api = Api(make_server(comfy_config(fake.url)).url, None)
    created = api.post("/workflows", json={"name": "sleepy", "workflow": sleepy(), "params": META})
    assert created.status_code == 201, created.text
    wf = created.json()
    assert wf["params"]["steps"] == META["steps"]
    schema = api.get(f"/workflows/{wf['id']}/parameters").json()
    steps = schema["properties"]["steps"]
    assert steps == {"type": "integer", "title": "Sleep steps", "description": "How many progress steps",
                     "default": 2, "minimum": 1, "maximum": 6, "multipleOf": 1}
    assert schema["properties"]["preview"] == {"type": "boolean", "title": "Send previews", "default": True,
                                               "enum": [True, False]}
    assert schema["properties"]["width"] == {"type": "integer", "default": 64}  # no metadata: from the graph
    assert "__params__" not in wf["slots"]

    # a slot-only update keeps the metadata of the slots that remain
    updated = api.put(f"/workflows/{wf['id']}", json={"slots": {"steps": [["2", "steps"]]}}).json()
    assert set(updated["slots"]) == {"steps"} and set(updated["params"]) == {"steps"}
    # a params update replaces it
    updated = api.put(f"/workflows/{wf['id']}", json={"params": {"steps": {"title": "Steps", "maximum": 4}}}).json()
    assert updated["params"] == {"steps": {"title": "Steps", "maximum": 4}}
    assert updated["parameters"]["properties"]["steps"] == {"type": "integer", "title": "Steps", "default": 3,
                                                            "maximum": 4}


def test_bad_metadata_is_a_422(make_server, fake):
    api = Api(make_server(comfy_config(fake.url)).url, None)
    r = api.post("/workflows", json={"name": "a", "workflow": sleepy(), "params": {"nope": {"title": "x"}}})
    assert r.status_code == 422 and r.json()["error"]["field"] == "workflow.params.nope"
    r = api.post("/workflows", json={"name": "a", "workflow": sleepy(),
                                     "params": {"steps": {"minimum": 5, "maximum": 2}}})
    assert r.status_code == 422 and r.json()["error"]["field"] == "workflow.params.steps.minimum"
    r = api.post("/workflows", json={"name": "a", "workflow": sleepy(), "params": {"steps": {"color": 1}}})
    assert r.status_code == 422


def test_generation_within_limits_runs_and_outside_fails_naming_the_param(make_server, fake):
    api = Api(make_server(comfy_config(fake.url)).url, None)
    assert api.post("/workflows", json={"name": "sleepy", "workflow": sleepy(), "params": META}).status_code == 201
    job = api.post("/generations", json={"prompt": "x", "workflow": "sleepy", "width": 64, "height": 48,
                                         "params": {"steps": 2}}).json()
    assert api.events(job["id"])[-1][0] == "succeeded"
    posted = [r["json"] for r in fake.requests if r["path"] == "/prompt" and r["method"] == "POST"]
    assert posted[-1]["prompt"]["2"]["inputs"]["steps"] == 2

    r = api.post("/generations", json={"prompt": "x", "workflow": "sleepy", "width": 64, "height": 48,
                                       "params": {"steps": 9}})
    if r.status_code == 422:  # refused before a job exists (check_generation_params hooked in)
        assert r.json()["error"]["field"] == "params.steps"
    else:  # refused when the job starts
        events = api.events(r.json()["id"])
        assert events[-1][0] == "failed"
        job = api.get(f"/jobs/{r.json()['id']}").json()
        assert job["error"]["field"] == "params.steps" and "at most 6" in job["error"]["message"]
    assert len([r for r in fake.requests if r["path"] == "/prompt" and r["method"] == "POST"]) == len(posted)


async def test_check_generation_params_reads_the_saved_workflow(tmp_path, fake):
    studio = Studio(Settings(data_dir=tmp_path, secret_key="k"), config=comfy_config(fake.url))
    await studio.start()
    try:
        template = template_from_json(sleepy(), object_info=None)
        await WorkflowStore(studio.store).create(name="sleepy", api=template.prompt, ui=None,
                                                 slots={k: [list(t) for t in v] for k, v in template.slots.items()},
                                                 owner=None, params=META)
        await check_generation_params(studio, GenerationRequest(prompt="x", workflow="sleepy", params={"steps": 6}))
        await check_generation_params(studio, GenerationRequest(prompt="x", workflow="weightfree"))
        for params, field in (({"steps": 0}, "params.steps"), ({"preview": "yes"}, "params.preview"),
                              ({"steps": "many"}, "params.steps")):
            with pytest.raises(InvalidRequest) as err:
                await check_generation_params(studio, GenerationRequest(prompt="x", workflow="sleepy", params=params))
            assert err.value.field == field and err.value.http_status == 422
        with pytest.raises(InvalidRequest) as err:  # a standard field that fills the slot is checked too
            await check_generation_params(studio, GenerationRequest(prompt="x", workflow="sleepy", steps=7))
        assert err.value.field == "steps"
        stored = await WorkflowStore(studio.store).get("sleepy")
        assert stored.slots[PARAMS_KEY] == META and stored.params == META
    finally:
        await studio.stop()
    await asyncio.sleep(0)


def test_template_json_round_trip_and_apply():
    data = {**sleepy(), "params": META}
    template = template_from_json(json.loads(json.dumps(data)))
    assert template.to_json()["params"] == META
    assert template_from_json(template.to_json()).params_json() == META
    prompt = apply(template, GenerationRequest(prompt="x", params={"steps": 5}))
    assert prompt["2"]["inputs"]["steps"] == 5
    with pytest.raises(InvalidRequest):
        apply(template, GenerationRequest(prompt="x", params={"steps": 7}))
    with pytest.raises(ConfigError):
        template_from_json({**sleepy(), "slots": {PARAMS_KEY: [["2", "steps"]]}})
    with pytest.raises(ConfigError):
        template_from_json({**sleepy(), "params": {"steps": {"type": "float"}}})
    # the editor's type (from object_info) wins over the value's: step_seconds 1 is a FLOAT
    typed = template_from_json({**sleepy(), "slots": {"secs": [["2", "step_seconds"]]},
                                "params": {"secs": {"type": "number", "default": 1}}})
    assert typed.parameters_schema()["properties"]["secs"] == {"type": "number", "default": 1}
