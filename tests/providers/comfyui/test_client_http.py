"""ComfyUIClient's HTTP side against the fake (or a real ComfyUI): each recorded scenario
(success, cached rerun, refused prompts, partial validation, upload, queue operations) and
what the client sent in it."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest
from PIL import Image

from image_studio.errors import InvalidRequest
from image_studio.providers.comfyui.client import ComfyUIClient

from .conftest import ComfyBackend, Recorder
from .graphs import fixture, invert, recorded_requests, sleep
from .helpers import collect, drain, finished, run


async def test_system_stats_and_object_info(client: ComfyUIClient) -> None:
    stats = await client.system_stats(timeout=5)
    assert stats["system"]["comfyui_version"] and isinstance(stats["devices"], list)
    recorded = recorded_requests("system_stats", "/object_info/ImageInvert")[0]["response_json"]
    info = await client.object_info("ImageInvert")
    assert info["ImageInvert"]["input"] == recorded["ImageInvert"]["input"]
    assert await client.object_info("NoSuchNode") == {}
    assert await client.get_history("00000000-0000-0000-0000-000000000000") is None


async def test_success_run_history_view_delete(client: ComfyUIClient, recorder: Recorder) -> None:
    assert await client.connect(10)
    prompt_id, events = await run(client, invert(prefix="studio_ok"))
    kinds = [e.type for e in events if e.type not in ("progress_state",)]
    assert kinds == ["execution_start", "execution_cached", "executing", "executing", "executing", "executed",
                     "execution_success", "executing"]
    assert all(e.prompt_id == prompt_id for e in events)
    assert [e.data["node"] for e in events if e.type == "executing"] == ["1", "2", "3", None]
    output = next(e for e in events if e.type == "executed").data["output"]["images"][0]
    assert output["filename"].startswith("studio_ok_") and output["type"] == "output"
    body = json.loads(recorder.calls("POST", "/prompt")[0][3])
    assert body["client_id"] == client.client_id and body["prompt_id"] == prompt_id
    entry = await client.get_history(prompt_id)
    assert entry is not None and entry["status"]["status_str"] == "success"
    assert entry["prompt"][3]["client_id"] == client.client_id
    data, content_type = await client.view(output["filename"], output["subfolder"], "output")
    assert content_type == "image/png"
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (64, 64) and "prompt" in im.info
    await client.delete_history([prompt_id])
    assert await client.get_history(prompt_id) is None
    with pytest.raises(InvalidRequest):
        await client.view("does_not_exist.png")


async def test_cached_rerun(client: ComfyUIClient) -> None:
    await client.connect(10)
    graph = invert(prefix="studio_cache")
    _, first = await run(client, graph)
    name = next(e for e in first if e.type == "executed").data["output"]["images"][0]["filename"]
    _, again = await run(client, graph)
    assert next(e for e in again if e.type == "execution_cached").data["nodes"] == ["1", "2", "3"]
    assert next(e for e in again if e.type == "executed").data["output"]["images"][0]["filename"] == name
    assert not [e for e in again if e.type == "executing" and e.data["node"] is not None]
    graph["3"]["inputs"]["filename_prefix"] = "studio_cache_partial"
    _, partial = await run(client, graph)
    assert next(e for e in partial if e.type == "execution_cached").data["nodes"] == ["1", "2"]
    assert [e.data["node"] for e in partial if e.type == "executing"] == ["3", None]


REFUSED = [("validation_error_missing_input", 0, "workflow.nodes.1.inputs.width"),
           ("validation_error_missing_input", 1, "workflow.nodes.2.inputs.image"),
           ("validation_error_bad_value", 0, "workflow.nodes.1.inputs.width"),
           ("validation_error_bad_value", 1, "workflow.nodes.2.inputs.upscale_method"),
           ("validation_error_bad_value", 2, "workflow.nodes.1.inputs."),
           ("validation_error_missing_model", 0, "workflow.nodes.4.inputs.ckpt_name"),
           ("prompt_no_outputs", 0, "workflow"),
           ("validation_error_invalid_prompt", 0, "workflow.nodes.1"),
           ("validation_error_invalid_prompt", 1, "workflow.nodes.1")]


@pytest.mark.parametrize(("name", "index", "field"), REFUSED)
async def test_refused_prompt(client: ComfyUIClient, name: str, index: int, field: str) -> None:
    recorded = recorded_requests(name, status=400)[index]
    with pytest.raises(InvalidRequest) as info:
        await client.queue_prompt(recorded["request_json"]["prompt"])
    assert info.value.field is not None and info.value.field.startswith(field)
    error = recorded["response_json"]["error"]
    assert f"[{error['type']}]" in info.value.message
    for node_id, entry in recorded["response_json"]["node_errors"].items():
        assert f"node {node_id} ({entry['class_type']})" in info.value.message
        for err in entry["errors"]:
            assert repr(err["extra_info"]["input_name"]) in info.value.message


async def test_no_prompt_and_missing_link(client: ComfyUIClient) -> None:
    missing = recorded_requests("validation_error_invalid_prompt", status=400)
    response = await client.http.post(client.base_url + "/prompt", json=missing[2]["request_json"], timeout=10)
    assert response.status_code == 400 and response.json() == missing[2]["response_json"]
    with pytest.raises(InvalidRequest) as info:
        await client.queue_prompt(missing[3]["request_json"]["prompt"])
    assert info.value.field == "workflow.nodes.2.inputs.images" and "'9'" in info.value.message


async def test_partial_validation_success(client: ComfyUIClient, caplog: pytest.LogCaptureFixture) -> None:
    prompt = fixture("partial_validation_success")["workflow_api"]
    prompt["1"]["inputs"]["color"] = 0x123456 ^ uuid.uuid4().int % 0xFFFF
    await client.connect(10)
    prompt_id = str(uuid.uuid4())
    queue = client.events.subscribe(prompt_id)
    with caplog.at_level(logging.WARNING, logger="image_studio.providers.comfyui"):
        answer = await client.queue_prompt(prompt, prompt_id=prompt_id)
    assert set(answer["node_errors"]) == {"4"} and answer["node_errors"]["4"]["dependent_outputs"] == ["5"]
    assert "node 4 (ImageScale) input 'upscale_method'" in caplog.text
    events = await collect(queue, finished)
    assert [e.data["node"] for e in events if e.type == "executed"] == ["3"]
    entry = await client.get_history(prompt_id)
    assert entry is not None and set(entry["outputs"]) == {"3"} and entry["prompt"][4] == ["3"]


def _png(color: tuple[int, int, int], size: tuple[int, int] = (48, 32)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


async def test_upload_image_cases(client: ComfyUIClient, recorder: Recorder) -> None:
    name = f"studio_upload_{uuid.uuid4().hex[:8]}.png"
    stem = name[:-4]
    first, second = _png((10, 20, 30)), _png((200, 20, 30))
    assert await client.upload_image(first, name) == {"name": name, "subfolder": "", "type": "input"}
    assert (await client.upload_image(first, name))["name"] == name, "identical bytes: same file"
    assert (await client.upload_image(second, name))["name"] == f"{stem} (1).png", "renamed"
    assert (await client.upload_image(second, name, overwrite=True))["name"] == name
    assert await client.upload_image(second, name, subfolder="studio", overwrite=True) == {
        "name": name, "subfolder": "studio", "type": "input"}
    data, _ = await client.view(name, "studio", "input")
    assert data == second
    uploads = recorder.calls("POST", "/upload/image")
    assert len(uploads) == 5


async def test_queue_operations_and_interrupt(comfy: ComfyBackend, client: ComfyUIClient, test_nodes: None) -> None:
    await client.connect(10)
    comfy.pause(1)
    ids = [str(uuid.uuid4()) for _ in range(4)]
    queues = [client.events.subscribe(i) for i in ids]
    try:
        for i, prompt_id in enumerate(ids[:3]):
            await client.queue_prompt(sleep(steps=10, step_seconds=comfy.step_seconds, preview=False, text=False),
                                      prompt_id=prompt_id)
        await collect(queues[0], lambda e: e.type == "progress")
        answer = await client.queue_prompt(sleep(steps=2, preview=False, text=False), prompt_id=ids[3], front=True)
        assert answer["number"] < 0
        queue = await client.get_queue()
        assert [item[1] for item in queue["queue_running"]] == [ids[0]]
        assert sorted(item[1] for item in queue["queue_pending"]) == sorted(ids[1:])
        assert await client.queue_position(ids[2]) == "pending"
        await client.delete_from_queue([ids[2]])
        assert await client.queue_position(ids[2]) is None
        await client.clear_queue()
        assert (await client.get_queue())["queue_pending"] == []
        await client.interrupt("11111111-2222-3333-4444-555555555555")  # not running: ignored
        await client.interrupt(ids[0])
        events = await collect(queues[0], finished)
    finally:
        comfy.release()
    stopped = next(e for e in events if e.type == "execution_interrupted")
    assert stopped.data["node_id"] == "2" and stopped.data["node_type"] == "FixtureSleepProgress"
    entry = await client.get_history(ids[0])
    assert entry is not None and entry["status"]["status_str"] == "error"
    assert [await client.get_history(i) for i in ids[1:]] == [None, None, None]
    for queue, prompt_id in zip(queues[1:], ids[1:]):
        assert all(e.prompt_id == prompt_id for e in drain(queue)), "no event crosses to another prompt"
