"""The InvokeAI provider against a real fake InvokeAI 6.x server (tests/fakes/invokeai_server.py):
the contract, the exact graphs sent, boards, models, auth and error answers. Queue behaviour
(progress, cancel, failure, resume) is in ``test_invokeai_queue.py``."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image

from image_studio.config import ProviderConfig
from image_studio.errors import AuthenticationFailed, InvalidRequest, ProviderError, ProviderUnavailable, Unsupported
from image_studio.providers.base import ImageProvider
from image_studio.providers.invokeai import InvokeAIProvider, wire
from image_studio.providers.registry import create_provider
from image_studio.types import GenerationRequest
from tests.fakes.invokeai_server import FakeInvokeAI
from tests.providers.contract import ProviderContract
from tests.providers.invokeai_helpers import (BOARDS, ENQUEUE, FLUX, SD15, SDXL, e, edges_of, fake, http,  # noqa: F401
                                              ident, make_ctx, make_provider, n)
from tests.storage.helpers import noisy_png


class TestInvokeAIContract(ProviderContract):
    @pytest.fixture
    def provider(self, fake: FakeInvokeAI, http: httpx.AsyncClient) -> ImageProvider:
        return make_provider(fake.url, http)

    @pytest.fixture
    def down_provider(self, unused_port: int, http: httpx.AsyncClient) -> ImageProvider:
        return make_provider(f"http://127.0.0.1:{unused_port}", http)


async def test_registry_builds_the_adapter_with_the_local_default_url(http: httpx.AsyncClient) -> None:
    provider = create_provider("invoke", ProviderConfig(type="invokeai"), http)
    assert isinstance(provider, InvokeAIProvider)
    assert provider.backend_url(None) == "http://127.0.0.1:9090"
    caps = provider.capabilities
    assert (caps.txt2img, caps.img2img, caps.inpaint, caps.resumable) == (True, True, False, True)


async def test_txt2img_sends_the_exact_sd1_graph_and_remembers_before_polling(
        fake: FakeInvokeAI, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    request = GenerationRequest(prompt="a lighthouse", negative_prompt="blurry", width=64, height=48, n=2, steps=3,
                                cfg_scale=5.5, scheduler="euler_a", seed=1234, model=SD15["name"],
                                extra={"clip_skip": 1})
    ctx, rec = make_ctx(provider, fake, job_id="j1")
    result = await provider.generate(request, ctx)

    (body,) = fake.bodies(ENQUEUE)
    assert body["prepend"] is False
    batch = body["batch"]
    assert {k: v for k, v in batch.items() if k != "graph"} == {
        "runs": 1, "origin": "image-studio",
        "data": [[{"node_path": "noise", "field_name": "seed", "items": [1234, 1235]}]]}
    assert batch["graph"]["id"] == "image-studio-j1"
    assert batch["graph"]["nodes"] == {
        "model_loader": n("model_loader", "main_model_loader", model=ident(SD15)),
        "clip_skip": n("clip_skip", "clip_skip", skipped_layers=1),
        "positive_conditioning": n("positive_conditioning", "compel", prompt="a lighthouse"),
        "negative_conditioning": n("negative_conditioning", "compel", prompt="blurry"),
        "noise": n("noise", "noise", seed=1234, width=64, height=48, use_cpu=True),
        "denoise_latents": n("denoise_latents", "denoise_latents", steps=3, cfg_scale=5.5, cfg_rescale_multiplier=0.0,
                             scheduler="euler_a", denoising_start=0.0, denoising_end=1.0),
        "l2i": n("l2i", "l2i", output=True, fp32=False),
    }
    assert edges_of(body) == sorted([
        e("model_loader", "unet", "denoise_latents", "unet"), e("model_loader", "clip", "clip_skip", "clip"),
        e("clip_skip", "clip", "positive_conditioning", "clip"), e("clip_skip", "clip", "negative_conditioning", "clip"),
        e("positive_conditioning", "conditioning", "denoise_latents", "positive_conditioning"),
        e("negative_conditioning", "conditioning", "denoise_latents", "negative_conditioning"),
        e("noise", "noise", "denoise_latents", "noise"), e("denoise_latents", "latents", "l2i", "latents"),
        e("model_loader", "vae", "l2i", "vae")])

    assert rec.remembered == ["1,2"] and rec.polls_at_remember == 0
    assert result.provider_job_id == "1,2" and result.model == SD15["name"]
    assert result.info["item_ids"] == [1, 2] and result.info["model_key"] == SD15["key"]
    assert [f.seed for f in result.files] == [1234, 1235]
    for f, item_id in zip(result.files, (1, 2)):
        with Image.open(io.BytesIO(f.data)) as im:
            assert (im.format, im.size) == ("PNG", (64, 48))
        assert f.mime_type == "image/png" and (f.width, f.height) == (64, 48)
        assert f.data == fake.images[f.parameters["image_name"]]["data"]
        assert f.parameters | {"image_name": None, "session_id": None, "batch_id": None} == {
            "seed": f.seed, "model": SD15["name"], "model_key": SD15["key"], "base": "sd-1", "item_id": item_id,
            "steps": 3, "cfg_scale": 5.5, "scheduler": "euler_a", "denoising_start": 0.0,
            "image_name": None, "session_id": None, "batch_id": None}
    assert all(fake.items[i]["status"] == "completed" for i in (1, 2))


async def test_sdxl_img2img_uploads_the_init_image_and_sends_the_exact_graph(
        fake: FakeInvokeAI, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http, settings={"steps": 4, "scheduler": "euler"})
    init = noisy_png(32, 32, seed=3)
    request = GenerationRequest(prompt="repaint", width=64, height=64, seed=7, model=SDXL["key"], init_image=init,
                                denoising_strength=0.4)
    ctx, _ = make_ctx(provider, fake, job_id="j2")
    result = await provider.generate(request, ctx)

    (upload,) = fake.uploads
    assert upload["query"] == {"image_category": "user", "is_intermediate": "false"}
    assert (upload["content_type"], upload["data"]) == ("image/png", init)
    init_name = next(name for name, im in fake.images.items() if im["image_origin"] == "external")
    assert fake.images[init_name]["is_intermediate"] is False
    (body,) = fake.bodies(ENQUEUE)
    size = {"original_width": 64, "original_height": 64, "target_width": 64, "target_height": 64,
            "crop_top": 0, "crop_left": 0}
    assert body["batch"]["graph"]["nodes"] == {
        "model_loader": n("model_loader", "sdxl_model_loader", model=ident(SDXL)),
        "positive_conditioning": n("positive_conditioning", "sdxl_compel_prompt", prompt="repaint", style="repaint",
                                   **size),
        "negative_conditioning": n("negative_conditioning", "sdxl_compel_prompt", prompt="", style="", **size),
        "noise": n("noise", "noise", seed=7, width=64, height=64, use_cpu=True),
        "denoise_latents": n("denoise_latents", "denoise_latents", steps=4, cfg_scale=7.5, cfg_rescale_multiplier=0.0,
                             scheduler="euler", denoising_start=0.6, denoising_end=1.0),
        "i2l": n("i2l", "i2l", fp32=False),
        "resize_in": n("resize_in", "img_resize", image={"image_name": init_name}, width=64, height=64),
        "l2i": n("l2i", "l2i", output=True, fp32=False),
    }
    assert edges_of(body) == sorted([
        e("model_loader", "unet", "denoise_latents", "unet"), e("noise", "noise", "denoise_latents", "noise"),
        e("model_loader", "clip", "positive_conditioning", "clip"),
        e("model_loader", "clip2", "positive_conditioning", "clip2"),
        e("model_loader", "clip", "negative_conditioning", "clip"),
        e("model_loader", "clip2", "negative_conditioning", "clip2"),
        e("positive_conditioning", "conditioning", "denoise_latents", "positive_conditioning"),
        e("negative_conditioning", "conditioning", "denoise_latents", "negative_conditioning"),
        e("model_loader", "vae", "i2l", "vae"), e("resize_in", "image", "i2l", "image"),
        e("i2l", "latents", "denoise_latents", "latents"), e("denoise_latents", "latents", "l2i", "latents"),
        e("model_loader", "vae", "l2i", "vae")])
    (only,) = result.files
    assert (only.width, only.height, only.seed) == (64, 64, 7)
    assert only.parameters["denoising_start"] == 0.6 and only.parameters["base"] == "sdxl"


async def test_init_image_of_the_right_size_goes_straight_into_i2l(fake: FakeInvokeAI, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    request = GenerationRequest(prompt="p", width=32, height=32, init_image=noisy_png(32, 32), steps=2)
    await provider.generate(request, make_ctx(provider)[0])
    nodes = fake.bodies(ENQUEUE)[0]["batch"]["graph"]["nodes"]
    assert "resize_in" not in nodes
    assert nodes["i2l"]["image"] == {"image_name": next(iter(fake.images))}
    assert nodes["denoise_latents"]["denoising_start"] == 0.25  # settings' default strength 0.75


async def test_a_size_off_the_8_pixel_grid_is_sampled_smaller_and_resized_back(
        fake: FakeInvokeAI, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http, settings={"board": "studio"})
    result = await provider.generate(GenerationRequest(prompt="p", width=60, height=44, steps=2), make_ctx(provider)[0])
    nodes = fake.bodies(ENQUEUE)[0]["batch"]["graph"]["nodes"]
    board = {"board_id": next(iter(fake.boards))}
    assert (nodes["noise"]["width"], nodes["noise"]["height"]) == (56, 40)
    assert nodes["l2i"] == n("l2i", "l2i", fp32=False)
    assert nodes["resize_out"] == n("resize_out", "img_resize", output=True, width=60, height=44, board=board)
    (only,) = result.files
    assert (only.width, only.height) == (60, 44)
    assert fake.images[only.parameters["image_name"]]["board_id"] == board["board_id"]


async def test_board_is_created_once_and_reused(fake: FakeInvokeAI, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http, settings={"board": "Image Studio"})
    first = await provider.generate(GenerationRequest(prompt="a", width=32, height=32, steps=1), make_ctx(provider)[0])
    second = await provider.generate(GenerationRequest(prompt="b", width=32, height=32, steps=1), make_ctx(provider)[0])

    (create,) = fake.calls(BOARDS, "POST")
    assert create["query"] == {"board_name": "Image Studio"}
    (board_id,) = fake.boards
    assert [c["query"] for c in fake.calls(BOARDS, "GET")] == [{"all": "true", "include_archived": "true"}]
    for body in fake.bodies(ENQUEUE):
        assert body["batch"]["graph"]["nodes"]["l2i"]["board"] == {"board_id": board_id}
    for f in first.files + second.files:
        assert fake.images[f.parameters["image_name"]]["board_id"] == board_id == f.parameters["board_id"]

    restarted = make_provider(fake.url, http, settings={"board": "Image Studio"})  # a new process: finds it
    await restarted.generate(GenerationRequest(prompt="c", width=32, height=32, steps=1), make_ctx(restarted)[0])
    assert len(fake.calls(BOARDS, "POST")) == 1 and len(fake.boards) == 1
    assert fake.bodies(ENQUEUE)[-1]["batch"]["graph"]["nodes"]["l2i"]["board"] == {"board_id": board_id}


async def test_list_models_gives_main_models_by_key(fake: FakeInvokeAI, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    models = await provider.list_models()
    assert [(m.id, m.name, m.details["base"]) for m in models] == [
        (m["key"], m["name"], m["base"]) for m in (SD15, SDXL, FLUX)]
    assert fake.calls("/api/v2/models/")[0]["query"] == {"model_type": "main"}


async def test_model_choice_key_name_setting_and_default(fake: FakeInvokeAI, http: httpx.AsyncClient) -> None:
    def loader_key(i: int) -> str:
        return fake.bodies(ENQUEUE)[i]["batch"]["graph"]["nodes"]["model_loader"]["model"]["key"]

    default = make_provider(fake.url, http)
    await default.generate(GenerationRequest(prompt="p", width=32, height=32), make_ctx(default)[0])
    configured = make_provider(fake.url, http, settings={"model": "SDXL-BASE-1.0"})
    await configured.generate(GenerationRequest(prompt="p", width=32, height=32), make_ctx(configured)[0])
    await configured.generate(GenerationRequest(prompt="p", width=32, height=32, model=SD15["key"]),
                              make_ctx(configured)[0])
    assert [loader_key(i) for i in range(3)] == [SD15["key"], SDXL["key"], SD15["key"]]

    with pytest.raises(Unsupported) as info:  # not here: the next provider of the chain may have it
        await default.generate(GenerationRequest(prompt="p", model="nope"), make_ctx(default)[0])
    assert info.value.field == "model" and "sdxl-base-1.0" in info.value.message
    with pytest.raises(Unsupported) as unsupported:
        await default.generate(GenerationRequest(prompt="p", model=FLUX["name"]), make_ctx(default)[0])
    assert unsupported.value.field == "model"


async def test_validation_errors_name_our_field(fake: FakeInvokeAI, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    cases = [(GenerationRequest(prompt="p", width=32, height=32, scheduler="karras"), "scheduler"),
             (GenerationRequest(prompt="p", width=32, height=32, extra={"cfg_rescale_multiplier": 2}),
              "extra.cfg_rescale_multiplier"),
             (GenerationRequest(prompt="p", width=32, height=32, extra={"nodes": {"noise": {"width": 33}}}),
              "extra.nodes.noise.width")]
    for request, field in cases:
        with pytest.raises(InvalidRequest) as info:
            await provider.generate(request, make_ctx(provider)[0])
        assert info.value.field == field, info.value.message
    with pytest.raises(InvalidRequest) as bad_override:
        await provider.generate(GenerationRequest(prompt="p", extra={"nodes": {"nope": {}}}), make_ctx(provider)[0])
    assert bad_override.value.field == "extra.nodes.nope"
    assert fake.items == {}


async def test_unsupported_and_bad_inputs_are_refused_before_enqueue(fake: FakeInvokeAI, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    init = noisy_png(32, 32)
    with pytest.raises(Unsupported) as inpaint:
        await provider.generate(GenerationRequest(prompt="p", init_image=init, mask=init), make_ctx(provider)[0])
    assert inpaint.value.field == "mask"
    with pytest.raises(InvalidRequest) as bad:
        await provider.generate(GenerationRequest(prompt="p", init_image=b"not an image"), make_ctx(provider)[0])
    assert bad.value.field == "init_image"
    assert fake.bodies(ENQUEUE) == [] and fake.uploads == []


async def test_bearer_token_for_multi_user_mode(http: httpx.AsyncClient) -> None:
    with FakeInvokeAI(token="s3cret") as fake:
        good = make_provider(fake.url, http, credentials={"token": "s3cret"})
        result = await good.generate(GenerationRequest(prompt="p", width=32, height=32), make_ctx(good)[0])
        assert result.files
        assert fake.calls(ENQUEUE)[0]["headers"]["authorization"] == "Bearer s3cret"
        assert all(r["headers"].get("authorization") == "Bearer s3cret" for r in fake.requests)

        anonymous = make_provider(fake.url, http)
        with pytest.raises(AuthenticationFailed):
            await anonymous.generate(GenerationRequest(prompt="p"), make_ctx(anonymous)[0])
        status = await anonymous.health()
        assert not status.ok and "authentication token" in (status.message or "")

        proxy = make_provider(fake.url, http, credentials={"token": "s3cret"},
                              settings={"auth_header": "X-Api-Key", "auth_scheme": ""})
        assert not (await proxy.health()).ok
        assert fake.requests[-1]["headers"]["x-api-key"] == "s3cret"


async def test_server_error_on_enqueue_is_provider_unavailable(fake: FakeInvokeAI, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http)
    fake.inject(ENQUEUE, 500, body={"detail": "Unexpected error while enqueuing batch: disk I/O error"})
    with pytest.raises(ProviderUnavailable) as info:
        await provider.generate(GenerationRequest(prompt="p", width=32, height=32), make_ctx(provider)[0])
    assert "disk I/O error" in info.value.message and info.value.retryable


async def test_invokeai_5_is_reported_and_its_batch_not_left_running(http: httpx.AsyncClient) -> None:
    with FakeInvokeAI(version="5.15.0", item_ids=False) as fake:
        provider = make_provider(fake.url, http)
        status = await provider.health()
        assert not status.ok and "6.0 or newer" in (status.message or "")
        fake.hold(after_nodes=1)
        with pytest.raises(ProviderError) as info:
            await provider.generate(GenerationRequest(prompt="p", width=32, height=32), make_ctx(provider)[0])
        assert "6.0 or newer" in info.value.message and not info.value.retryable
        batch_id = fake.items[1]["batch_id"]
        assert fake.bodies("/api/v1/queue/default/cancel_by_batch_ids") == [{"batch_ids": [batch_id]}]
        assert fake.items[1]["status"] == "canceled"


async def test_health_and_options(fake: FakeInvokeAI, http: httpx.AsyncClient) -> None:
    provider = make_provider(fake.url, http, settings={"board": "studio"})
    status = await provider.health()
    assert status.ok and status.details == {"version": "6.14.0", "pending": 0, "in_progress": 0}
    assert await provider.options() == {"schedulers": list(wire.SCHEDULERS), "scheduler": "dpmpp_3m_k",
                                        "boards": [], "board": "studio"}
    await provider.generate(GenerationRequest(prompt="p", width=32, height=32, steps=1), make_ctx(provider)[0])
    assert (await provider.options())["boards"] == ["studio"]


def test_wire_helpers() -> None:
    assert wire.parse_item_ids("4, 5,6") == [4, 5, 6]
    with pytest.raises(ValueError):
        wire.parse_item_ids("batch-abc")
    assert [wire.major_version(v) for v in ("6.14.0-alpha", "v5.15.0", "dev", None)] == [6, 5, None, None]
    assert [wire.scaled(s) for s in (7, 8, 60, 1024)] == [8, 8, 56, 1024]
    item = {"status": "in_progress", "session": {"graph": {"nodes": {"a": {}, "b": {}, "l2i": {}}},
                                                 "executed": ["p1", "p2"],
                                                 "prepared_source_mapping": {"p1": "a", "p2": "a"}}}
    assert wire.node_progress(item) == (1, 3)
