"""The fal provider against respx routes that answer as fal's queue and Platform APIs document."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
import respx

from image_studio.errors import (AuthenticationFailed, ConfigError, ContentRejected, InvalidRequest, JobCanceled,
                                 ProviderTimeout, ProviderUnavailable, RateLimited)
from image_studio.providers.base import ImageProvider
from image_studio.providers.fal.wire import app_id, request_urls
from image_studio.types import GenerationRequest, MediaKind
from tests.providers.contract import ProviderContract, make_ctx
from tests.providers.queue_helpers import build, sent_json
from tests.storage.helpers import noisy_png

Q = "https://queue.fal.run"
PLATFORM = "https://api.fal.ai/v1"
CDN = "https://v3.fal.media/files/rabbit"
FLUX = f"{Q}/fal-ai/flux/requests"  # status/result/cancel drop the endpoint's sub-path


def submitted(rid: str, app: str = "fal-ai/flux", base: str = Q) -> dict[str, str]:
    root = f"{base}/{app}/requests/{rid}"
    return {"request_id": rid, "response_url": root, "status_url": f"{root}/status", "cancel_url": f"{root}/cancel"}


def completed(**kw: Any) -> dict[str, Any]:
    return {"status": "COMPLETED", "logs": [], "metrics": {"inference_time": 0.41}, "response_url": "x", **kw}


def result(n: int = 1, nsfw: list[bool] | None = None, seed: int = 1234) -> dict[str, Any]:
    return {"images": [{"url": f"{CDN}/img-{i}.png", "width": 64, "height": 48, "content_type": "image/png"}
                       for i in range(n)],
            "seed": seed, "has_nsfw_concepts": nsfw if nsfw is not None else [False] * n,
            "timings": {"inference": 0.39}, "prompt": "a fox"}


def make(http: httpx.AsyncClient, *, settings: dict | None = None, key: str | None = "fal_test",
         url: str | None = None) -> ImageProvider:
    return build("fal", "fal1", http, key=key, settings=settings, url=url)


def mount_images(router: respx.MockRouter, n: int = 1) -> list[respx.Route]:
    return [router.get(f"{CDN}/img-{i}.png").respond(200, content=noisy_png(64, 48, seed=i),
                                                     headers={"content-type": "image/png"}) for i in range(n)]


def mount_job(router: respx.MockRouter, rid: str = "r1", model: str = "fal-ai/flux/schnell",
              res: dict[str, Any] | None = None) -> dict[str, respx.Route]:
    return {"submit": router.post(f"{Q}/{model}").respond(200, json=submitted(rid)),
            "status": router.get(f"{FLUX}/{rid}/status").respond(200, json=completed()),
            "result": router.get(f"{FLUX}/{rid}").respond(200, json=res or result()),
            "cancel": router.put(f"{FLUX}/{rid}/cancel").respond(202, json={"status": "CANCELLATION_REQUESTED"})}


class TestFalContract(ProviderContract):
    @pytest.fixture
    def provider(self, router: respx.MockRouter, http: httpx.AsyncClient) -> ImageProvider:
        mount_job(router)
        mount_images(router)
        router.get(f"{PLATFORM}/models/pricing").respond(200, json={"prices": [
            {"endpoint_id": "fal-ai/flux/schnell", "unit_price": 0.003, "unit": "megapixels", "currency": "USD"}],
            "next_cursor": None, "has_more": False})
        router.get(f"{PLATFORM}/models").respond(200, json={"models": [], "next_cursor": None, "has_more": False})
        return make(http)

    @pytest.fixture
    def down_provider(self, router: respx.MockRouter, http: httpx.AsyncClient) -> ImageProvider:
        router.route(host="down.fal.test").mock(side_effect=httpx.ConnectError("connection refused"))
        router.route(host="api.fal.ai").mock(side_effect=httpx.ConnectError("connection refused"))
        return make(http, url="https://down.fal.test")


async def test_txt2img_sends_the_documented_requests(router, http) -> None:
    routes = mount_job(router, res=result(2))
    cdn = mount_images(router, 2)
    provider = make(http, settings={"default_input": {"output_format": "png"}})
    request = GenerationRequest(prompt="a fox", negative_prompt="blurry", width=768, height=512, n=2, steps=4,
                                cfg_scale=3.5, seed=1234, extra={"acceleration": "high"})
    ctx, rec = make_ctx(provider)
    res = await provider.generate(request, ctx)

    post = routes["submit"].calls.last.request
    assert post.method == "POST" and post.url.path == "/fal-ai/flux/schnell"
    assert post.headers["authorization"] == "Key fal_test"
    assert sent_json(routes["submit"]) == {
        "prompt": "a fox", "negative_prompt": "blurry", "image_size": {"width": 768, "height": 512},
        "num_images": 2, "enable_safety_checker": True, "seed": 1234, "num_inference_steps": 4,
        "guidance_scale": 3.5, "output_format": "png", "acceleration": "high"}
    status = routes["status"].calls.last.request
    assert status.url.path == "/fal-ai/flux/requests/r1/status" and status.url.params["logs"] == "1"
    assert status.headers["authorization"] == "Key fal_test"
    assert routes["result"].calls.last.request.url.path == "/fal-ai/flux/requests/r1"
    assert all("authorization" not in r.calls.last.request.headers for r in cdn), "the key stays with fal's API"
    assert rec.remembered == ["r1"] and res.provider_job_id == "r1" and res.model == "fal-ai/flux/schnell"
    assert res.info["metrics"] == {"inference_time": 0.41} and res.info["timings"] == {"inference": 0.39}
    assert [(f.width, f.height, f.mime_type, f.seed) for f in res.files] == [(64, 48, "image/png", 1234),
                                                                              (64, 48, "image/png", None)]
    assert res.files[1].parameters["seed"] == 1234


async def test_img2img_and_inpaint_use_their_models_and_drop_the_sub_path_for_status(router, http) -> None:
    i2i = router.post(f"{Q}/fal-ai/flux/dev/image-to-image").respond(200, json=submitted("r2"))
    inpaint = router.post(f"{Q}/fal-ai/flux-lora/inpainting").respond(200, json=submitted("r3", "fal-ai/flux-lora"))
    for rid, app in (("r2", "fal-ai/flux"), ("r3", "fal-ai/flux-lora")):
        router.get(f"{Q}/{app}/requests/{rid}/status").respond(200, json=completed())
        router.get(f"{Q}/{app}/requests/{rid}").respond(200, json=result())
    mount_images(router)
    provider = make(http)
    init, mask = noisy_png(32, 32, seed=5), noisy_png(32, 32, seed=6, mode="L")
    req = GenerationRequest(prompt="a boat", width=512, height=512, init_image=init, denoising_strength=0.7)
    await provider.generate(req, make_ctx(provider)[0])
    assert sent_json(i2i)["image_url"] == "data:image/png;base64," + base64.b64encode(init).decode()
    assert sent_json(i2i)["strength"] == 0.7
    await provider.generate(req.model_copy(update={"mask": mask}), make_ctx(provider)[0])
    assert sent_json(inpaint)["mask_url"] == "data:image/png;base64," + base64.b64encode(mask).decode()


async def test_queued_running_done_reports_position_and_progress(router, http) -> None:
    routes = mount_job(router)
    mount_images(router)
    provider = make(http)
    ctx, rec = make_ctx(provider)
    remembered_at_first_poll: list[str] = []
    answers = iter([{"status": "IN_QUEUE", "queue_position": 2, "response_url": "x"},
                    {"status": "IN_PROGRESS", "logs": [{"message": "loading", "level": "INFO"},
                                                       {"message": " 75%|#######5  | 3/4 [00:00<00:00]"}]},
                    {"status": "IN_PROGRESS", "logs": []},
                    completed()])

    def status(request: httpx.Request) -> httpx.Response:
        remembered_at_first_poll.extend(rec.remembered if not remembered_at_first_poll else [])
        return httpx.Response(202, json=next(answers))

    routes["status"].mock(side_effect=status)
    res = await provider.generate(GenerationRequest(prompt="a fox", width=64, height=64), ctx)
    assert remembered_at_first_poll == ["r1"], "the request id is remembered before polling"
    assert [(p["value"], p["max"], p["message"]) for p in rec.progress] == [
        (0, 0, "queued at position 2"), (3, 4, "running"), (3, 0, "running")]
    assert res.files


async def test_cancel_while_queued_puts_the_cancel_url(router, http) -> None:
    routes = mount_job(router)
    provider = make(http)
    ctx, _ = make_ctx(provider)

    def status(request: httpx.Request) -> httpx.Response:
        ctx.cancel_event.set()
        return httpx.Response(202, json={"status": "IN_QUEUE", "queue_position": 0})

    routes["status"].mock(side_effect=status)
    with pytest.raises(JobCanceled):
        await provider.generate(GenerationRequest(prompt="a fox"), ctx)
    cancel = routes["cancel"].calls.last.request
    assert cancel.method == "PUT" and cancel.url.path == "/fal-ai/flux/requests/r1/cancel"
    assert cancel.headers["authorization"] == "Key fal_test"
    routes["cancel"].respond(400, json={"status": "ALREADY_COMPLETED"})
    await provider.cancel(ctx)  # a late cancel of a finished request is not an error
    assert routes["cancel"].call_count == 2


async def test_resume_polls_the_remembered_request_without_submitting(router, http) -> None:
    i2i = router.post(f"{Q}/fal-ai/flux/dev/image-to-image").respond(200, json=submitted("new"))
    status = router.get(f"{FLUX}/r9/status").respond(200, json=completed())
    router.get(f"{FLUX}/r9").respond(200, json=result())
    mount_images(router)
    provider = make(http)
    ctx, rec = make_ctx(provider, resume_id="r9")
    req = GenerationRequest(prompt="a boat", init_image=noisy_png(16, 16))
    res = await provider.generate(req, ctx)
    assert not i2i.called and status.called and rec.remembered == [] and res.provider_job_id == "r9"


@pytest.mark.parametrize(("code", "headers", "payload", "error"), [
    (401, {}, {"detail": "Unauthorized"}, AuthenticationFailed),
    (403, {}, {"detail": "Forbidden"}, AuthenticationFailed),
    (429, {"Retry-After": "3"}, {"detail": "Too many concurrent requests"}, RateLimited),
    (503, {}, {"detail": "Service Unavailable"}, ProviderUnavailable),
])
async def test_submit_errors_map_and_are_not_retried(router, http, code, headers, payload, error) -> None:
    submit = router.post(f"{Q}/fal-ai/flux/schnell").respond(code, json=payload, headers=headers)
    provider = make(http)
    with pytest.raises(error) as info:
        await provider.generate(GenerationRequest(prompt="a fox"), make_ctx(provider)[0])
    assert submit.call_count == 1, "fal's queue retries; the adapter does not"
    assert info.value.status == code
    if error is RateLimited:
        assert info.value.retry_after == 3


@pytest.mark.parametrize(("code", "payload", "error", "field"), [
    (422, {"detail": [{"loc": ["body", "num_images"], "msg": "Input should be less than or equal to 4",
                       "type": "less_than_equal"}]}, InvalidRequest, "n"),
    (422, {"detail": [{"loc": ["body", "acceleration"], "msg": "bad", "type": "enum"}]}, InvalidRequest,
     "extra.acceleration"),
    (422, {"detail": [{"loc": ["body", "prompt"], "msg": "The content was flagged",
                       "type": "content_policy_violation"}]}, ContentRejected, None),
    (503, {"detail": "Runner disconnected", "error_type": "runner_disconnected"}, ProviderUnavailable, None),
    (504, {"detail": "Request timed out", "error_type": "request_timeout"}, ProviderTimeout, None),
])
async def test_result_errors_map_to_the_error_tree(router, http, code, payload, error, field) -> None:
    routes = mount_job(router)
    routes["status"].respond(200, json=completed(error=str(payload["detail"]), error_type=payload.get("error_type")))
    routes["result"].respond(code, json=payload)
    provider = make(http)
    req = GenerationRequest(prompt="a fox", n=4, extra={"acceleration": "turbo"})
    with pytest.raises(error) as info:
        await provider.generate(req, make_ctx(provider)[0])
    assert type(info.value) is error and info.value.field == field


async def test_nsfw_flagged_images_are_dropped_and_all_flagged_is_rejected(router, http) -> None:
    routes = mount_job(router, res=result(2, nsfw=[True, False]))
    mount_images(router, 2)
    provider = make(http)
    res = await provider.generate(GenerationRequest(prompt="a fox", n=2), make_ctx(provider)[0])
    assert [f.parameters["output_index"] for f in res.files] == [1] and res.files[0].parameters["nsfw_dropped"] == 1
    routes["result"].respond(200, json=result(1, nsfw=[True]))
    with pytest.raises(ContentRejected):
        await provider.generate(GenerationRequest(prompt="a fox"), make_ctx(provider)[0])


async def test_a_proxy_base_is_used_for_every_queue_call(router, http) -> None:
    proxy = "http://127.0.0.1:9/fal"
    submit = router.post(f"{proxy}/fal-ai/flux/schnell").respond(200, json=submitted("rp"))  # URLs point at fal
    status = router.get(f"{proxy}/fal-ai/flux/requests/rp/status").respond(200, json=completed())
    router.get(f"{proxy}/fal-ai/flux/requests/rp").respond(200, json={"video": {
        "url": f"{CDN}/clip.mp4", "content_type": "video/mp4", "file_size": 12}})
    router.get(f"{CDN}/clip.mp4").respond(200, content=b"\x00\x00\x00\x18ftypmp42", headers={
        "content-type": "application/octet-stream"})
    provider = make(http, url=proxy, settings={"video_model": "fal-ai/kling-video/v2/master/text-to-video"})
    res = await provider.generate(GenerationRequest(prompt="waves", media="video", model="fal-ai/flux/schnell"),
                                  make_ctx(provider)[0])
    assert submit.called and status.called
    assert sent_json(submit) == {"prompt": "waves"}, "video requests carry no image size or count"
    assert res.files[0].media is MediaKind.video and res.files[0].mime_type == "video/mp4"


async def test_health_uses_the_free_pricing_call_and_models_the_metadata_call(router, http) -> None:
    pricing = router.get(f"{PLATFORM}/models/pricing").respond(200, json={"prices": [
        {"endpoint_id": "fal-ai/flux/schnell", "unit_price": 0.003, "unit": "megapixels", "currency": "USD"}],
        "next_cursor": None, "has_more": False})
    models = router.get(f"{PLATFORM}/models").respond(200, json={"models": [
        {"endpoint_id": "fal-ai/flux/schnell", "metadata": {"display_name": "FLUX.1 [schnell]",
                                                            "category": "text-to-image", "status": "active"}}],
        "next_cursor": None, "has_more": False})
    provider = make(http, settings={"models": ["fal-ai/recraft/v3"], "inpaint_model": ""})
    status = await provider.health()
    assert status.ok and status.details["prices"][0]["unit_price"] == 0.003
    probe = pricing.calls.last.request
    assert probe.headers["authorization"] == "Key fal_test" and probe.url.params["endpoint_id"] == "fal-ai/flux/schnell"
    pricing.respond(401, json={"detail": "Invalid key"})
    assert not (await provider.health()).ok
    listed = await provider.list_models()
    assert models.calls.last.request.url.params.get_list("endpoint_id") == [
        "fal-ai/flux/schnell", "fal-ai/flux/dev/image-to-image", "fal-ai/recraft/v3"]
    assert [(m.id, m.name, m.details.get("category")) for m in listed] == [
        ("fal-ai/flux/schnell", "FLUX.1 [schnell]", "text-to-image"),
        ("fal-ai/flux/dev/image-to-image", "fal-ai/flux/dev/image-to-image", None),
        ("fal-ai/recraft/v3", "fal-ai/recraft/v3", None)]
    caps = provider.capabilities
    assert caps.img2img and not caps.inpaint and caps.async_only and caps.resumable and not caps.video


async def test_missing_key_is_a_config_error_naming_the_credential(router, http) -> None:
    provider = make(http, key=None)
    with pytest.raises(ConfigError) as info:
        await provider.generate(GenerationRequest(prompt="a fox"), make_ctx(provider)[0])
    assert info.value.field == "providers.fal1.credentials.api_key"
    assert not (await provider.health()).ok


def test_app_ids_and_urls_follow_the_documented_pattern() -> None:
    assert app_id("fal-ai/flux/dev/image-to-image", field="model") == "fal-ai/flux"
    assert app_id("workflows/me/my-flow/run", field="model") == "workflows/me/my-flow"
    with pytest.raises(InvalidRequest) as info:
        app_id("flux", field="providers.f.settings.model")
    assert info.value.field == "providers.f.settings.model"
    built = request_urls(Q, "fal-ai/flux/dev", "abc")
    assert built == {"status": f"{FLUX}/abc/status", "response": f"{FLUX}/abc", "cancel": f"{FLUX}/abc/cancel"}
    given = {**submitted("abc"), "status_url": f"{Q}/fal-ai/flux/requests/abc/status?x=1"}
    assert request_urls(Q, "fal-ai/flux/dev", "abc", given)["status"].endswith("status?x=1")
