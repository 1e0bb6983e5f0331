"""ComfyUIProvider runs against the fake (or a real ComfyUI): results, errors, progress and
previews, img2img uploads, capability checks, and the information calls."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from PIL import Image

from image_studio.errors import ConfigError, GenerationFailed, InvalidRequest, Unsupported
from image_studio.providers.comfyui.provider import ComfyUIProvider
from image_studio.providers.registry import provider_class
from image_studio.types import MediaKind
from tests.providers.contract import make_ctx

from .conftest import ComfyBackend, Recorder
from .graphs import invert, raising, template
from .helpers import bodies, near, request, sleep_workflow


async def test_weightfree_generate(make_provider: Any, recorder: Recorder) -> None:
    provider = make_provider()
    posted_at_remember: list[int] = []
    ctx, rec = make_ctx(provider, job_id="job/1")
    original = ctx.on_remember

    async def remember(prompt_id: str) -> None:
        posted_at_remember.append(len(recorder.calls("POST", "/prompt")))
        await original(prompt_id)

    ctx.on_remember = remember
    result = await provider.generate(request(width=96, height=48, n=2), ctx)
    assert posted_at_remember == [0], "the prompt_id is remembered before POST /prompt"
    prompt_id = rec.remembered[0]
    assert result.provider_job_id == prompt_id == bodies(recorder, "POST", "/prompt")[0]["prompt_id"]
    assert result.info["workflow"] == "weightfree" and result.info["seed"] is None
    assert len(result.files) == 2
    for f in result.files:
        assert f.mime_type == "image/png" and f.media is MediaKind.image and (f.width, f.height) == (96, 48)
        with Image.open(io.BytesIO(f.data)) as im:
            assert near(im.convert("RGB").getpixel((0, 0)), (0xFF - 0x33, 0xFF - 0x66, 0xFF - 0xCC))  # 0x3366CC inverted
        assert f.parameters["comfyui_prompt_id"] == prompt_id
    await provider.close()  # the history delete runs in the background; close waits for it
    assert bodies(recorder, "POST", "/history") == [{"delete": [prompt_id]}]
    sent = bodies(recorder, "POST", "/prompt")[0]
    assert sent["prompt"]["1"]["inputs"] == {"width": 96, "height": 48, "batch_size": 2, "color": 3368652}
    assert sent["extra_data"] == {"extra_pnginfo": {"image_studio_job": "job/1"}}


async def test_params_reach_the_graph(make_provider: Any, recorder: Recorder) -> None:
    provider = make_provider(delete_history=False)
    ctx, _ = make_ctx(provider)
    result = await provider.generate(request(params={"color": 0x000000}), ctx)
    with Image.open(io.BytesIO(result.files[0].data)) as im:
        assert near(im.convert("RGB").getpixel((0, 0)), (255, 255, 255))
    assert recorder.calls("POST", "/history") == []


async def test_refused_prompt_is_invalid_request(make_provider: Any) -> None:
    provider = make_provider()
    ctx, _ = make_ctx(provider)
    with pytest.raises(InvalidRequest) as info:
        await provider.generate(request(params={"1.width": 0}), ctx)
    assert info.value.field == "workflow.nodes.1.inputs.width"
    assert "node 1 (EmptyImage)" in info.value.message and "smaller than min" in info.value.message
    with pytest.raises(InvalidRequest) as txt:
        await provider.generate(request(workflow="txt2img", seed=3), make_ctx(provider)[0])
    assert txt.value.field == "workflow.nodes.4.inputs.ckpt_name"  # no checkpoints on the backend


async def test_execution_error_is_generation_failed(make_provider: Any, test_nodes: None) -> None:
    provider = make_provider(workflow=json.dumps(template(raising(message="boom here"))))
    with pytest.raises(GenerationFailed) as info:
        await provider.generate(request(), make_ctx(provider)[0])
    assert info.value.field == "workflow.nodes.2" and info.value.retryable is False
    assert "FixtureRaiseError" in info.value.message and "RuntimeError: boom here" in info.value.message


async def test_txt2img_with_a_broken_checkpoint(make_provider: Any, recorder: Recorder, fake: Any) -> None:
    fake.checkpoints = ["v1-5-pruned-emaonly-fp16.safetensors"]  # passes validation, fails to load (no weights)
    provider = make_provider(workflow="txt2img")
    with pytest.raises(GenerationFailed) as info:
        await provider.generate(request(prompt="a lighthouse", negative_prompt="fog", steps=4, seed=99,
                                        width=512, height=384), make_ctx(provider)[0])
    assert info.value.field == "workflow.nodes.4"
    assert "CheckpointLoaderSimple" in info.value.message and "header too large" in info.value.message
    sent = bodies(recorder, "POST", "/prompt")[0]["prompt"]
    assert sent["6"]["inputs"]["text"] == "a lighthouse" and sent["7"]["inputs"]["text"] == "fog"
    assert (sent["3"]["inputs"]["seed"], sent["3"]["inputs"]["steps"]) == (99, 4)
    assert sent["5"]["inputs"] == {"width": 512, "height": 384, "batch_size": 1}


async def test_forced_execution_error(make_provider: Any, fake: Any) -> None:
    fake.force("execution_error")
    provider = make_provider()
    with pytest.raises(GenerationFailed, match=r"node 1 \(EmptyImage\)"):
        await provider.generate(request(), make_ctx(provider)[0])


@pytest.mark.parametrize("feature_flags", [True, False])
async def test_progress_and_previews(comfy: ComfyBackend, make_provider: Any, test_nodes: None,
                                     feature_flags: bool) -> None:
    provider = make_provider(workflow=sleep_workflow(comfy, steps=4))
    client = provider.client()
    client.events.feature_flags = feature_flags
    ctx, rec = make_ctx(provider)
    result = await provider.generate(request(), ctx)
    assert result.files
    steps = [(p["value"], p["max"]) for p in rec.progress if p["preview"] is None and p["message"] is None]
    assert steps == [(i, 4) for i in range(1, 5)]
    previews = [p for p in rec.progress if p["preview"] is not None]
    assert len(previews) == 4 and all(p["preview_mime"] == "image/jpeg" for p in previews)
    with Image.open(io.BytesIO(previews[-1]["preview"])) as im:
        assert im.format == "JPEG"
    assert [p["message"] for p in rec.progress if p["message"]] == [f"step {i}/4" for i in range(1, 5)]


async def test_previews_can_be_turned_off(comfy: ComfyBackend, make_provider: Any, test_nodes: None) -> None:
    provider = make_provider(workflow=sleep_workflow(comfy, steps=2), preview=False)
    ctx, rec = make_ctx(provider)
    await provider.generate(request(), ctx)
    assert rec.progress and all(p["preview"] is None for p in rec.progress)


async def test_img2img_uploads_the_init_image(make_provider: Any, recorder: Recorder) -> None:
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
             "2": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "nearest-exact",
                                                          "width": 64, "height": 64, "crop": "disabled"}},
             "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "studio_i2i"}}}
    inline = template(graph, init_image=[["1", "image"]], width=[["2", "width"]], height=[["2", "height"]])
    provider = make_provider(workflow=inline)
    buf = io.BytesIO()
    Image.new("RGB", (48, 32), (12, 200, 99)).save(buf, "PNG")
    ctx, _ = make_ctx(provider, job_id="job 7")
    result = await provider.generate(request(width=96, height=64, init_image=buf.getvalue()), ctx)
    with Image.open(io.BytesIO(result.files[0].data)) as im:
        assert im.size == (96, 64) and near(im.convert("RGB").getpixel((5, 5)), (12, 200, 99))
    sent = bodies(recorder, "POST", "/prompt")[0]["prompt"]
    assert sent["1"]["inputs"]["image"] == "image_studio/job_7_init_image.png"
    assert len(recorder.calls("POST", "/upload/image")) == 1


async def test_unsupported_requests(make_provider: Any, recorder: Recorder) -> None:
    provider = make_provider()
    for req, field in ((request(init_image=b"\x89PNG..."), "init_image"), (request(media="video"), "media")):
        with pytest.raises(Unsupported) as info:
            await provider.generate(req, make_ctx(provider)[0])
        assert info.value.field == field and info.value.provider == "comfy"
    single = make_provider(workflow=json.dumps({"prompt": invert(), "slots": {}}))
    with pytest.raises(Unsupported) as batch:
        await single.generate(request(n=2), make_ctx(single)[0])
    assert batch.value.field == "n"
    assert recorder.calls("POST", "/prompt") == []


async def test_health_models_and_options(comfy: ComfyBackend, make_provider: Any) -> None:
    provider = make_provider()
    status = await provider.health()
    assert status.ok and status.message.startswith("ComfyUI ") and status.details["devices"]
    models = await provider.list_models()
    assert all(m.kind == "checkpoint" and m.provider == "comfy" for m in models)
    options = await provider.options()
    assert "euler" in options["samplers"] and "normal" in options["schedulers"]
    assert options["workflows"] == ["txt2img", "upscale", "weightfree", "weightfree_video"] and "loras" in options
    if comfy.fake is not None:
        assert models == [] and options["upscalers"] == []  # UpscaleModelLoader known, no model files
        comfy.fake.checkpoints = ["a.safetensors", "b.ckpt"]
        assert [m.id for m in await provider.list_models()] == ["a.safetensors", "b.ckpt"]


def test_settings_errors(make_provider: Any) -> None:
    with pytest.raises(ConfigError) as info:
        make_provider(workflow="nope")
    assert info.value.field == "providers.comfy.settings.workflow"
    with pytest.raises(ConfigError) as bad:
        make_provider(history_poll_interval=0)
    assert bad.value.field == "providers.comfy.settings.history_poll_interval"
    assert make_provider(workflow={"prompt": invert(), "slots": {}}).capabilities.inpaint is False
    caps = make_provider().capabilities
    assert caps.resumable and caps.img2img and {m.value for m in caps.media} == {"image", "video"}


def test_registered_as_comfyui() -> None:
    assert provider_class("comfyui") is ComfyUIProvider
    assert ComfyUIProvider.needs_backend and ComfyUIProvider.type == "comfyui"
