"""The Stability AI provider against respx routes that answer as the v2beta API documents
(https://platform.stability.ai/docs/api-reference): multipart requests, image answers with the
finish-reason/seed headers, the creative-upscale results polling and the error shapes."""

from __future__ import annotations

import base64

import httpx
import pytest

from image_studio.errors import (AuthenticationFailed, ConfigError, ContentRejected, GenerationFailed, InvalidRequest,
                                 JobCanceled, ProviderError, ProviderUnavailable, RateLimited)
from image_studio.providers.base import ImageProvider
from image_studio.providers.stability.wire import aspect_ratio
from image_studio.types import GenerationRequest
from tests.providers.contract import ProviderContract, make_ctx
from tests.providers.openai_helpers import multipart
from tests.providers.openai_helpers import make as make_provider
from tests.storage.helpers import noisy_png

API = "https://api.stability.ai"
CORE, SD3, ULTRA = (f"{API}/v2beta/stable-image/generate/{s}" for s in ("core", "sd3", "ultra"))
BALANCE = f"{API}/v1/user/balance"
CREATIVE = f"{API}/v2beta/stable-image/upscale/creative"
RESULTS = f"{API}/v2beta/results/"
PNG = noisy_png(64, 48, seed=3)


def image_answer(seed: int = 42, reason: str = "SUCCESS", data: bytes = PNG) -> httpx.Response:
    return httpx.Response(200, content=data, headers={"content-type": "image/png", "finish-reason": reason,
                                                      "seed": str(seed)})


def form(request: httpx.Request) -> dict[str, object]:
    """The multipart/form-data parts of ``request``: text fields as str, files as
    ``(filename, content type, bytes)``."""
    return {name: (p["filename"], p["type"], p["data"]) if p["filename"] else p["text"]
            for name, (p, *_) in multipart(request).items()}


def make(http: httpx.AsyncClient, *, credentials: dict | None = None, backends: list | None = None,
         **settings) -> ImageProvider:
    return make_provider(http, "stability", provider_id="stab", backends=backends,
                         credentials={"api_key": "sk-test"} if credentials is None else credentials,
                         settings={"poll_interval": 0.01, **settings})


class TestStabilityContract(ProviderContract):
    @pytest.fixture
    def provider(self, router, http: httpx.AsyncClient) -> ImageProvider:
        router.post(CORE).mock(return_value=image_answer())
        router.get(BALANCE).respond(200, json={"credits": 12.5})
        return make(http)

    @pytest.fixture
    def down_provider(self, router, http: httpx.AsyncClient) -> ImageProvider:
        router.route(host="api.stability.ai").mock(side_effect=httpx.ConnectError("connection refused"))
        return make(http)


async def test_txt2img_core_sends_the_documented_multipart_form(router, http) -> None:
    route = router.post(CORE).mock(return_value=image_answer(seed=7))
    provider = make(http, style_preset="anime")
    request = GenerationRequest(prompt="a lighthouse", negative_prompt="fog", width=1216, height=832, seed=7)
    ctx, rec = make_ctx(provider)
    result = await provider.generate(request, ctx)

    sent = route.calls.last.request
    assert sent.method == "POST" and sent.url == CORE
    assert sent.headers["authorization"] == "Bearer sk-test" and sent.headers["accept"] == "image/*"
    assert sent.headers["stability-client-id"] == "open-webui-image-studio"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert form(sent) == {"prompt": "a lighthouse", "negative_prompt": "fog", "seed": "7", "output_format": "png",
                          "aspect_ratio": "3:2", "style_preset": "anime"}
    (file,) = result.files
    assert file.data == PNG and file.mime_type == "image/png" and (file.width, file.height) == (64, 48)
    assert file.seed == 7 and file.parameters["endpoint"] == "generate/core"
    assert file.parameters["finish_reason"] == "SUCCESS" and file.parameters["aspect_ratio"] == "3:2"
    assert result.model == "core" and rec.remembered == [] and rec.progress[-1]["value"] == 1


async def test_sd3_model_named_by_the_request_with_cfg_scale(router, http) -> None:
    route = router.post(SD3).mock(return_value=image_answer())
    provider = make(http)
    request = GenerationRequest(prompt="x", model="sd3.5-large-turbo", cfg_scale=4.5, width=1024, height=1024)
    result = await provider.generate(request, make_ctx(provider)[0])
    assert form(route.calls.last.request) == {"prompt": "x", "seed": "0", "output_format": "png",
                                              "aspect_ratio": "1:1", "model": "sd3.5-large-turbo",
                                              "mode": "text-to-image", "cfg_scale": "4.5"}
    assert result.model == "sd3.5-large-turbo"


async def test_img2img_asked_of_core_runs_on_sd3_with_image_and_strength(router, http) -> None:
    route = router.post(SD3).mock(return_value=image_answer())
    provider = make(http, sd3_model="sd3.5-medium", output_format="webp")
    init = noisy_png(32, 32, seed=9)
    request = GenerationRequest(prompt="oil painting", init_image=init, denoising_strength=0.4)
    await provider.generate(request, make_ctx(provider)[0])
    assert form(route.calls.last.request) == {"prompt": "oil painting", "seed": "0", "output_format": "webp",
                                              "strength": "0.4", "model": "sd3.5-medium", "mode": "image-to-image",
                                              "image": ("image.png", "image/png", init)}


async def test_ultra_img2img_and_extra_fields_pass_through(router, http) -> None:
    route = router.post(ULTRA).mock(return_value=image_answer())
    provider = make(http, service="ultra")
    init = noisy_png(16, 16)
    request = GenerationRequest(prompt="p", init_image=init, extra={"style_preset": "cinematic"})
    await provider.generate(request, make_ctx(provider)[0])
    parts = form(route.calls.last.request)
    assert parts["strength"] == "0.7" and parts["style_preset"] == "cinematic" and "mode" not in parts
    assert parts["image"] == ("image.png", "image/png", init)


async def test_inpaint_sends_image_mask_and_grow_mask(router, http) -> None:
    route = router.post(f"{API}/v2beta/stable-image/edit/inpaint").mock(return_value=image_answer())
    provider = make(http)
    init, mask = noisy_png(32, 32, seed=1), noisy_png(32, 32, seed=2, mode="L")
    request = GenerationRequest(prompt="a red door", init_image=init, mask=mask, seed=5, extra={"grow_mask": 10})
    result = await provider.generate(request, make_ctx(provider)[0])
    assert form(route.calls.last.request) == {
        "prompt": "a red door", "seed": "5", "output_format": "png", "grow_mask": "10",
        "image": ("image.png", "image/png", init), "mask": ("mask.png", "image/png", mask)}
    assert result.files[0].parameters["endpoint"] == "edit/inpaint"


@pytest.mark.parametrize(("edit", "extra", "expected"), [
    ("outpaint", {"left": 64, "up": 32}, {"prompt": "beach", "seed": "0", "output_format": "png", "left": "64",
                                          "up": "32"}),
    ("search-and-replace", {"search_prompt": "dog"}, {"prompt": "beach", "seed": "0", "output_format": "png",
                                                      "search_prompt": "dog"}),
    ("erase", {}, {"seed": "0", "output_format": "png"}),
])
async def test_extra_edit_selects_the_edit_endpoint(router, http, edit, extra, expected) -> None:
    route = router.post(f"{API}/v2beta/stable-image/edit/{edit}").mock(return_value=image_answer())
    provider = make(http)
    init = noisy_png(16, 16)
    request = GenerationRequest(prompt="beach", init_image=init, extra={"edit": edit, **extra})
    await provider.generate(request, make_ctx(provider)[0])
    assert form(route.calls.last.request) == {**expected, "image": ("image.png", "image/png", init)}


@pytest.mark.parametrize(("extra", "field"), [
    ({"edit": "search-and-replace"}, "extra.search_prompt"),
    ({"edit": "outpaint"}, "extra.left"),
    ({"edit": "recolor"}, "extra.edit"),
    ({"upscale": "huge"}, "extra.upscale"),
])
async def test_bad_edit_requests_fail_before_any_call(router, http, extra, field) -> None:
    provider = make(http)
    request = GenerationRequest(prompt="p", init_image=noisy_png(8, 8), extra=extra)
    with pytest.raises(InvalidRequest) as info:
        await provider.generate(request, make_ctx(provider)[0])
    assert info.value.field == field and not router.calls


async def test_edit_without_init_image_and_bad_seed_or_model_name_the_field(router, http) -> None:
    provider = make(http)
    cases = [(GenerationRequest(prompt="p", extra={"upscale": "fast"}), "init_image"),
             (GenerationRequest(prompt="p", seed=2**40), "seed"),
             (GenerationRequest(prompt="p", model="dall-e-3"), "model")]
    for request, field in cases:
        with pytest.raises(InvalidRequest) as info:
            await provider.generate(request, make_ctx(provider)[0])
        assert info.value.field == field
    assert not router.calls


async def test_fast_upscale_sends_only_image_and_format(router, http) -> None:
    route = router.post(f"{API}/v2beta/stable-image/upscale/fast").mock(
        return_value=image_answer(data=noisy_png(256, 192)))
    provider = make(http)
    init = noisy_png(64, 48)
    result = await provider.generate(GenerationRequest(prompt="p", init_image=init, extra={"upscale": "fast"}),
                                     make_ctx(provider)[0])
    assert form(route.calls.last.request) == {"output_format": "png", "image": ("image.png", "image/png", init)}
    assert (result.files[0].width, result.files[0].height) == (256, 192) and result.model == "upscale-fast"


async def test_creative_upscale_remembers_the_id_then_polls_to_the_image(router, http) -> None:
    provider = make(http)
    ctx, rec = make_ctx(provider)
    submit = router.post(CREATIVE).respond(200, json={"id": "gen-1"})
    seen_remembered: list[list[str]] = []
    answers = iter([httpx.Response(202, json={"id": "gen-1", "status": "in-progress"}),
                    httpx.Response(202, json={"id": "gen-1", "status": "in-progress"}),
                    image_answer(seed=99, data=noisy_png(128, 96))])

    def results(request: httpx.Request) -> httpx.Response:
        seen_remembered.append(list(rec.remembered))
        return next(answers)

    poll_route = router.get(f"{RESULTS}gen-1").mock(side_effect=results)
    request = GenerationRequest(prompt="crisp detail", init_image=noisy_png(32, 24),
                                extra={"upscale": "creative", "creativity": 0.3})
    result = await provider.generate(request, ctx)

    sent = submit.calls.last.request
    assert sent.headers["accept"] == "application/json"
    parts = form(sent)
    assert parts["prompt"] == "crisp detail" and parts["creativity"] == "0.3" and "upscale" not in parts
    assert seen_remembered[0] == ["gen-1"], "the id is remembered before the first poll"
    assert poll_route.call_count == 3
    assert poll_route.calls.last.request.headers["authorization"] == "Bearer sk-test"
    assert [(p["value"], p["max"], p["message"]) for p in rec.progress[:2]] == [
        (1, 2, "in-progress"), (2, 3, "in-progress")]
    assert rec.progress[-1]["value"] == rec.progress[-1]["max"] == 1
    assert result.provider_job_id == "gen-1" and result.files[0].seed == 99
    assert result.files[0].parameters["generation_id"] == "gen-1"


async def test_resume_polls_the_remembered_id_without_submitting(router, http) -> None:
    submit = router.post(CREATIVE).respond(200, json={"id": "never"})
    polled = router.get(f"{RESULTS}gen-9").mock(side_effect=[
        httpx.Response(202, json={"id": "gen-9", "status": "in-progress"}), image_answer(seed=3)])
    provider = make(http)
    ctx, rec = make_ctx(provider, resume_id="gen-9")
    request = GenerationRequest(prompt="p", init_image=noisy_png(8, 8), extra={"upscale": "creative"})
    result = await provider.generate(request, ctx)
    assert submit.call_count == 0 and polled.call_count == 2 and rec.remembered == []
    assert result.provider_job_id == "gen-9" and result.info["resumed"] is True and result.files[0].data == PNG


async def test_cancel_while_polling_raises_and_needs_no_cancel_call(router, http) -> None:
    router.post(CREATIVE).respond(200, json={"id": "gen-c"})
    provider = make(http)
    ctx, rec = make_ctx(provider)

    def still_running(request: httpx.Request) -> httpx.Response:
        ctx.cancel_event.set()
        return httpx.Response(202, json={"id": "gen-c", "status": "in-progress"})

    polled = router.get(f"{RESULTS}gen-c").mock(side_effect=still_running)
    request = GenerationRequest(prompt="p", init_image=noisy_png(8, 8), extra={"upscale": "creative"})
    with pytest.raises(JobCanceled):
        await provider.generate(request, ctx)
    assert rec.remembered == ["gen-c"] and polled.call_count == 1
    calls = len(router.calls)
    await provider.cancel(ctx)  # Stability has no cancel endpoint: nothing is sent
    assert len(router.calls) == calls


async def test_expired_result_is_a_generation_failure(router, http) -> None:
    router.get(f"{RESULTS}gone").respond(404, json={"id": "e1", "name": "generation_not_found",
                                                    "errors": ["generation not found"]})
    provider = make(http)
    with pytest.raises(GenerationFailed) as info:
        await provider.generate(GenerationRequest(prompt="p"), make_ctx(provider, resume_id="gone")[0])
    assert not info.value.retryable and "24 h" in info.value.message


async def test_n_images_are_n_calls_with_consecutive_seeds(router, http) -> None:
    route = router.post(CORE).mock(side_effect=[image_answer(seed=10), image_answer(seed=11)])
    provider = make(http)
    ctx, rec = make_ctx(provider)
    result = await provider.generate(GenerationRequest(prompt="p", n=2, seed=10), ctx)
    assert [form(c.request)["seed"] for c in route.calls] == ["10", "11"]
    assert [f.seed for f in result.files] == [10, 11]
    assert [(p["value"], p["max"]) for p in rec.progress] == [(1, 2), (2, 2)]


async def test_json_answer_is_read_as_well(router, http) -> None:
    router.post(CORE).respond(200, json={"image": base64.b64encode(PNG).decode(), "finish_reason": "SUCCESS",
                                         "seed": 5})
    provider = make(http)
    result = await provider.generate(GenerationRequest(prompt="p"), make_ctx(provider)[0])
    assert result.files[0].data == PNG and result.files[0].seed == 5 and result.files[0].mime_type == "image/png"


@pytest.mark.parametrize(("response", "error", "check"), [
    (httpx.Response(401, json={"id": "1", "name": "unauthorized", "errors": ["bad key"]}), AuthenticationFailed,
     lambda e: e.status == 401),
    (httpx.Response(402, json={"id": "2", "name": "payment_required", "errors": ["no credits"]}), ProviderError,
     lambda e: type(e) is ProviderError and not e.retryable and "credits" in e.message),
    (httpx.Response(403, json={"id": "3", "name": "content_moderation", "errors": ["flagged"]}), ContentRejected,
     lambda e: not e.retryable),
    (httpx.Response(429, headers={"retry-after": "7"}, json={"name": "rate_limit_exceeded", "errors": ["slow"]}),
     RateLimited, lambda e: e.retry_after == 7.0),
    (httpx.Response(429, json={"name": "rate_limit_exceeded", "errors": ["slow"]}), RateLimited,
     lambda e: e.retry_after == 60.0),
    (httpx.Response(500, json={"name": "internal_error", "errors": ["oops"]}), ProviderUnavailable,
     lambda e: e.retryable and e.status == 500),
    (image_answer(reason="CONTENT_FILTERED"), ContentRejected, lambda e: "CONTENT_FILTERED" in e.message),
    (image_answer(reason="ERROR"), GenerationFailed, lambda e: "ERROR" in e.message),
])
async def test_error_answers_map_to_the_error_tree(router, http, response, error, check) -> None:
    router.post(CORE).mock(return_value=response)
    provider = make(http)
    with pytest.raises(error) as info:
        await provider.generate(GenerationRequest(prompt="p"), make_ctx(provider)[0])
    assert check(info.value), info.value.to_dict()


@pytest.mark.parametrize(("errors", "extra", "field"), [
    (["negative_prompt: must be at most 10000 characters"], {}, "negative_prompt"),
    (["grow_mask: must be <= 100"], {"grow_mask": 500}, "extra.grow_mask"),
    (["image: width must be at least 64 pixels"], {}, "init_image"),
])
async def test_bad_request_names_our_field(router, http, errors, extra, field) -> None:
    router.post(CORE).respond(400, json={"id": "x", "name": "bad_request", "errors": errors})
    provider = make(http)
    with pytest.raises(InvalidRequest) as info:
        await provider.generate(GenerationRequest(prompt="p", extra=extra), make_ctx(provider)[0])
    assert info.value.field == field and errors[0] in info.value.message


async def test_missing_key_is_a_config_error_and_health_says_so(router, http) -> None:
    provider = make(http, credentials={})
    with pytest.raises(ConfigError) as info:
        await provider.generate(GenerationRequest(prompt="p"), make_ctx(provider)[0])
    assert info.value.field == "providers.stab.credentials.api_key"
    status = await provider.health()
    assert not status.ok and "api_key" in status.message and not router.calls


async def test_health_reads_the_credit_balance(router, http) -> None:
    route = router.get(BALANCE).respond(200, json={"credits": 3.25})
    status = await make(http).health()
    assert status.ok and status.details["credits"] == 3.25 and "3.25" in status.message
    assert route.calls.last.request.headers["authorization"] == "Bearer sk-test"
    router.get(BALANCE).respond(401, json={"name": "unauthorized", "errors": ["bad key"]})
    assert not (await make(http).health()).ok


async def test_backend_url_overrides_the_api_base(router, http) -> None:
    route = router.post("http://127.0.0.1:9999/stability/v2beta/stable-image/generate/core").mock(
        return_value=image_answer())
    provider = make(http, backends=[{"url": "http://127.0.0.1:9999/stability", "headers": {"x-proxy": "1"}}])
    await provider.generate(GenerationRequest(prompt="p"), make_ctx(provider)[0])
    assert route.calls.last.request.headers["x-proxy"] == "1"


async def test_models_options_and_aspect_ratios(http) -> None:
    provider = make(http, service="sd3", sd3_model="sd3.5-medium")
    models = {m.id: m for m in await provider.list_models()}
    assert {"ultra", "core", "sd3.5-large", "sd3.5-medium"} <= set(models)
    assert models["sd3.5-medium"].details["default"] and not models["core"].details["default"]
    options = await provider.options()
    assert "anime" in options["style_presets"] and options["upscalers"] == ["fast", "conservative", "creative"]
    assert provider.capabilities.upscale and provider.capabilities.resumable and provider.capabilities.inpaint
    assert [aspect_ratio(w, h) for w, h in ((1024, 1024), (1920, 1080), (640, 1536), (832, 1216))] == [
        "1:1", "16:9", "9:21", "2:3"]
