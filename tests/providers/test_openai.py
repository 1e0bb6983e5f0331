"""The ``openai`` adapter against respx routes that answer as the OpenAI Images API documents
(https://platform.openai.com/docs/api-reference/images; openai-python ``src/openai/types``)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import respx

from image_studio.errors import (AuthenticationFailed, ConfigError, ContentRejected, GenerationFailed,
                                 InvalidRequest, JobCanceled, ProviderUnavailable, RateLimited, Unsupported)
from image_studio.providers.base import ImageProvider
from image_studio.providers.openai import OpenAIProvider
from image_studio.providers.openai.wire import duration, retry_after
from image_studio.types import GenerationRequest
from tests.providers.contract import ProviderContract, make_ctx
from tests.providers.openai_helpers import (USAGE, alpha_of, b64, error_answer, form_fields, half_white_mask,
                                            image_bytes, images_answer, make, models_answer, multipart,
                                            tiny_png)

__all__ = ["http", "router"]  # fixtures
BASE = "https://api.openai.com/v1"
GEN, EDIT, MODELS_URL = BASE + "/images/generations", BASE + "/images/edits", BASE + "/models"
KEY = {"api_key": "sk-test-123"}


class TestOpenAIContract(ProviderContract):
    @pytest.fixture
    def provider(self, http: httpx.AsyncClient, router: respx.MockRouter) -> ImageProvider:
        router.post(GEN).respond(200, json=images_answer(tiny_png(), usage=USAGE))
        router.get(MODELS_URL).respond(200, json=models_answer())
        return make(http, credentials=KEY)

    @pytest.fixture
    def down_provider(self, http: httpx.AsyncClient, router: respx.MockRouter) -> ImageProvider:
        router.route(host="api.openai.com").mock(side_effect=httpx.ConnectError("connection refused"))
        return make(http, credentials=KEY)

    def request(self) -> GenerationRequest:
        return GenerationRequest(prompt="a red fox in the snow", width=1024, height=1024)


async def test_txt2img_sends_the_documented_body_and_headers(http, router) -> None:
    webp = image_bytes(24, 16, "WEBP")
    route = router.post(GEN).respond(200, json=images_answer(webp, webp, usage=USAGE, size="1536x1024",
                                                             quality="high", background="transparent",
                                                             output_format="webp"),
                                     headers={"x-request-id": "req_abc"})
    provider = make(http, credentials=KEY, settings={
        "quality": "high", "style": "vivid", "background": "transparent", "output_format": "webp",
        "output_compression": 80, "moderation": "low", "input_fidelity": "high", "user": "u-1",
        "organization": "org-9", "project": "proj_7"})
    ctx, rec = make_ctx(provider)
    result = await provider.generate(GenerationRequest(prompt="a lighthouse", negative_prompt="fog", width=1536,
                                                       height=1024, n=2, seed=5), ctx)

    sent = route.calls.last.request
    assert sent.method == "POST" and str(sent.url) == GEN
    assert sent.headers["authorization"] == "Bearer sk-test-123"
    assert sent.headers["openai-organization"] == "org-9" and sent.headers["openai-project"] == "proj_7"
    # style is dall-e-3's, input_fidelity an edit field, response_format refused by GPT image models
    assert json.loads(sent.content) == {"prompt": "a lighthouse", "n": 2, "model": "gpt-image-1", "size": "1536x1024",
                                        "quality": "high", "background": "transparent", "output_format": "webp",
                                        "output_compression": 80, "moderation": "low", "user": "u-1"}
    assert [f.data for f in result.files] == [webp, webp]
    first = result.files[0]
    assert (first.mime_type, first.width, first.height, first.seed) == ("image/webp", 24, 16, None)
    assert first.parameters == {"model": "gpt-image-1", "size": "1536x1024", "quality": "high",
                                "background": "transparent", "output_format": "webp"}
    assert result.info == {"usage": USAGE, "created": 1713833628, "request_id": "req_abc"}
    assert result.model == "gpt-image-1" and result.backend == BASE and result.provider == "oa"
    assert (rec.progress[0]["value"], rec.progress[0]["max"]) == (0, 2)
    assert (rec.progress[-1]["value"], rec.progress[-1]["max"]) == (2, 2)


async def test_dall_e_3_url_answer_is_downloaded_without_our_key(http, router) -> None:
    png = tiny_png()
    url = "https://oaidalleapiprodscus.blob.core.windows.net/private/org-x/img-1.png?se=2026&sig=abc"
    route = router.post(GEN).respond(200, json={"created": 1, "data": [{"url": url, "revised_prompt": "A tall fox"}]})
    cdn = router.get(url).respond(200, content=png, headers={"content-type": "image/png"})
    provider = make(http, credentials=KEY, settings={"quality": "hd", "style": "natural", "response_format": "url",
                                                     "background": "opaque", "moderation": "low"})
    result = await provider.generate(GenerationRequest(prompt="fox", model="dall-e-3", width=1792, height=1024),
                                     make_ctx(provider)[0])

    assert json.loads(route.calls.last.request.content) == {
        "prompt": "fox", "n": 1, "model": "dall-e-3", "size": "1792x1024", "quality": "hd", "style": "natural",
        "response_format": "url"}
    assert "authorization" not in cdn.calls.last.request.headers
    (f,) = result.files
    assert f.data == png and f.mime_type == "image/png"
    assert f.parameters["revised_prompt"] == "A tall fox" and f.parameters["style"] == "natural"
    assert "usage" not in result.info


async def test_dall_e_2_drops_the_qualities_of_other_models(http, router) -> None:
    route = router.post(GEN).respond(200, json=images_answer(tiny_png(), tiny_png(), tiny_png()))
    provider = make(http, credentials=KEY, settings={"model": "dall-e-2", "quality": "hd", "style": "vivid"})
    result = await provider.generate(GenerationRequest(prompt="x", width=512, height=512, n=3), make_ctx(provider)[0])
    assert json.loads(route.calls.last.request.content) == {"prompt": "x", "n": 3, "model": "dall-e-2",
                                                            "size": "512x512", "response_format": "b64_json"}
    assert len(result.files) == 3


@pytest.mark.parametrize(("model", "width", "height", "field", "listed"), [
    ("dall-e-3", 1000, 1000, "width", "1024x1024, 1792x1024, 1024x1792"),
    ("dall-e-3", 1024, 1000, "height", "1024x1024, 1792x1024, 1024x1792"),
    ("dall-e-2", 768, 768, "width", "256x256, 512x512, 1024x1024"),
    ("gpt-image-1", 512, 512, "width", "1024x1024, 1536x1024, 1024x1536, auto"),
    ("gpt-image-1-mini", 1024, 1792, "height", "1024x1024, 1536x1024, 1024x1536, auto"),
    ("gpt-image-2", 1000, 1008, "width", "multiples of 16"),
    ("gpt-image-2", 3840, 1200, "width", "aspect 1:3 to 3:1"),
    ("gpt-image-2", 3840, 3840, "width", "8294400 pixels"),
])
async def test_sizes_a_model_does_not_take_are_refused_before_sending(http, router, model, width, height, field,
                                                                      listed) -> None:
    route = router.post(GEN).respond(200, json=images_answer(tiny_png()))
    provider = make(http, credentials=KEY)
    with pytest.raises(InvalidRequest) as info:
        await provider.generate(GenerationRequest(prompt="x", model=model, width=width, height=height),
                                make_ctx(provider)[0])
    assert info.value.field == field and listed in info.value.message
    assert not route.called


async def test_gpt_image_2_takes_free_sizes_and_auto(http, router) -> None:
    route = router.post(GEN).respond(200, json=images_answer(tiny_png()))
    provider = make(http, credentials=KEY, settings={"model": "gpt-image-2"})
    await provider.generate(GenerationRequest(prompt="x", width=1536, height=864), make_ctx(provider)[0])
    assert json.loads(route.calls.last.request.content)["size"] == "1536x864"
    await provider.generate(GenerationRequest(prompt="x", extra={"size": "auto"}), make_ctx(provider)[0])
    assert json.loads(route.calls.last.request.content)["size"] == "auto"
    with pytest.raises(InvalidRequest) as info:
        await provider.generate(GenerationRequest(prompt="x", model="dall-e-3", extra={"size": "auto"}),
                                make_ctx(provider)[0])
    assert info.value.field == "extra.size"


async def test_model_limits_are_capabilities(http, router) -> None:
    dalle3 = make(http, credentials=KEY, settings={"model": "dall-e-3"})
    caps = dalle3.capabilities
    assert (caps.max_n, caps.max_width, caps.img2img, caps.inpaint, caps.negative_prompt) == (1, 1792, False, False,
                                                                                              False)
    gpt = make(http, credentials=KEY).capabilities
    assert (gpt.max_n, gpt.max_width, gpt.img2img, gpt.inpaint, gpt.seed) == (10, 1536, True, True, False)
    assert make(http, credentials=KEY, settings={"model": "gpt-image-2"}).capabilities.max_width == 3840
    route = router.post(GEN).respond(200, json=images_answer(tiny_png()))
    with pytest.raises(Unsupported) as info:
        await dalle3.generate(GenerationRequest(prompt="x", n=2), make_ctx(dalle3)[0])
    assert info.value.field == "n"
    init = image_bytes(64, 64)
    with pytest.raises(Unsupported) as info:
        await dalle3.generate(GenerationRequest(prompt="x", init_image=init, mask=half_white_mask(64, 64)),
                              make_ctx(dalle3)[0])
    assert info.value.field == "mask"
    with pytest.raises(Unsupported) as info:  # dall-e-2 edits need a mask
        await dalle3.generate(GenerationRequest(prompt="x", model="dall-e-2", init_image=init), make_ctx(dalle3)[0])
    assert info.value.field == "init_image"
    for request, field in ((GenerationRequest(prompt="x", media="video"), "media"),
                           (GenerationRequest(init_image=init, upscale={"scale": 2}), "upscale"),
                           (GenerationRequest(prompt="x", loras=[{"name": "detail"}]), "loras"),
                           (GenerationRequest(prompt="x", hires={"scale": 1.5}), "hires")):
        with pytest.raises(Unsupported) as info:
            await dalle3.generate(request, make_ctx(dalle3)[0])
        assert info.value.field == field
    assert not route.called


async def test_inpaint_uploads_image_and_an_alpha_mask(http, router) -> None:
    route = router.post(EDIT).respond(200, json=images_answer(tiny_png(), usage=USAGE))
    provider = make(http, credentials=KEY, settings={"quality": "medium", "input_fidelity": "high",
                                                     "moderation": "low", "style": "vivid"})
    init = image_bytes(64, 32, "JPEG")
    request = GenerationRequest(prompt="add a hat", init_image=init, mask=half_white_mask(32, 16), n=1,
                                extra={"output_format": "jpeg"})
    result = await provider.generate(request, make_ctx(provider)[0])

    sent = route.calls.last.request
    assert sent.method == "POST" and str(sent.url) == EDIT
    assert sent.headers["authorization"] == "Bearer sk-test-123"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    parts = multipart(sent)
    (image,) = parts["image"]
    assert (image["filename"], image["type"], image["data"]) == ("image0.jpg", "image/jpeg", init)
    (mask,) = parts["mask"]
    assert (mask["filename"], mask["type"]) == ("mask.png", "image/png")
    alpha = alpha_of(mask["data"])
    assert alpha.size == (64, 32)  # resized to the image
    assert alpha.getpixel((5, 5)) == 0 and alpha.getpixel((60, 5)) == 255  # white -> transparent -> painted
    # moderation and style are generation-only fields
    assert form_fields(sent) == {"prompt": "add a hat", "n": "1", "model": "gpt-image-1", "size": "1024x1024",
                                 "quality": "medium", "input_fidelity": "high", "output_format": "jpeg"}
    assert result.files[0].data == tiny_png() and result.info["usage"] == USAGE


async def test_reference_images_go_as_image_array_parts(http, router) -> None:
    route = router.post(EDIT).respond(200, json=images_answer(tiny_png()))
    provider = make(http, credentials=KEY)
    init, ref = image_bytes(32, 32), image_bytes(32, 32, "WEBP", color=(0, 0, 255))
    await provider.generate(GenerationRequest(prompt="the two together", init_image=init,
                                              extra={"reference_images": ["data:image/webp;base64," + b64(ref)]}),
                            make_ctx(provider)[0])
    parts = multipart(route.calls.last.request)
    assert "image" not in parts
    assert [(p["filename"], p["type"], p["data"]) for p in parts["image[]"]] == [
        ("image0.png", "image/png", init), ("image1.webp", "image/webp", ref)]
    assert "reference_images" not in form_fields(route.calls.last.request)


async def test_dall_e_2_edits_get_a_png_and_keep_an_alpha_mask(http, router) -> None:
    route = router.post(EDIT).respond(200, json=images_answer(tiny_png()))
    provider = make(http, credentials=KEY, settings={"model": "dall-e-2"})
    mask = image_bytes(16, 16, mode="RGBA", color=(0, 0, 0, 0))  # already OpenAI-style: all transparent
    await provider.generate(GenerationRequest(prompt="x", width=256, height=256, init_image=image_bytes(16, 16, "JPEG"),
                                              mask=mask), make_ctx(provider)[0])
    parts = multipart(route.calls.last.request)
    assert parts["image"][0]["type"] == "image/png" and parts["image"][0]["data"].startswith(b"\x89PNG")
    assert alpha_of(parts["mask"][0]["data"]).getextrema() == (0, 0)
    assert form_fields(route.calls.last.request)["response_format"] == "b64_json"


@pytest.mark.parametrize(("status", "body", "headers", "error", "check"), [
    (401, error_answer("Incorrect API key provided", code="invalid_api_key"), {}, AuthenticationFailed,
     lambda e: e.status == 401 and not e.retryable),
    (429, error_answer("Rate limit reached for images per minute", type_="requests", code="rate_limit_exceeded"),
     {"retry-after": "7"}, RateLimited, lambda e: e.retry_after == 7 and e.retryable),
    (429, error_answer("Rate limit reached", type_="requests"),
     {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1.5s",
      "x-ratelimit-remaining-tokens": "900", "x-ratelimit-reset-tokens": "6m0s"},
     RateLimited, lambda e: e.retry_after == 1.5),
    (429, error_answer("You exceeded your current quota", type_="insufficient_quota", code="insufficient_quota"),
     {}, RateLimited, lambda e: not e.retryable and e.retry_after is None),
    (400, error_answer("Your request was rejected as a result of our safety system.",
                       code="content_policy_violation"), {}, ContentRejected, lambda e: e.status == 400),
    (400, error_answer("Your request was rejected by the safety system. safety_violations=[violence].",
                       type_="image_generation_user_error", code="moderation_blocked",
                       moderation_details={"moderation_stage": "input"}), {}, ContentRejected, lambda e: True),
    (400, error_answer("Your request was rejected by the safety system.", type_="image_generation_user_error"),
     {}, ContentRejected, lambda e: True),
    (400, error_answer("Invalid value: '1000x1000'.", param="size", code="invalid_value"), {}, InvalidRequest,
     lambda e: e.field == "width"),
    (400, error_answer("Prompt too long", param="prompt"), {}, InvalidRequest, lambda e: e.field == "prompt"),
    (404, error_answer("The model 'gpt-image-9' does not exist", param="model", code="model_not_found"), {},
     InvalidRequest, lambda e: e.field == "model"),
    (500, error_answer("The server had an error", type_="server_error"), {}, ProviderUnavailable,
     lambda e: e.retryable),
    (503, {"error": {"message": "Engine overloaded"}}, {}, ProviderUnavailable, lambda e: e.status == 503),
])
async def test_error_answers_map_to_the_error_tree(http, router, status, body, headers, error, check) -> None:
    router.post(GEN).respond(status, json=body, headers=headers)
    provider = make(http, credentials=KEY)
    with pytest.raises(error) as info:
        await provider.generate(GenerationRequest(prompt="x"), make_ctx(provider)[0])
    assert check(info.value), info.value.to_dict()


async def test_a_refused_extra_field_is_named(http, router) -> None:
    router.post(GEN).respond(400, json=error_answer("Invalid value: 'ultra'", param="quality"))
    provider = make(http, credentials=KEY, settings={"background": "opaque"})
    with pytest.raises(InvalidRequest) as info:
        await provider.generate(GenerationRequest(prompt="x", extra={"quality": "ultra"}), make_ctx(provider)[0])
    assert info.value.field == "extra.quality"
    router.post(GEN).respond(400, json=error_answer("bad background", param="background"))
    with pytest.raises(InvalidRequest) as info:
        await provider.generate(GenerationRequest(prompt="x"), make_ctx(provider)[0])
    assert info.value.field == "providers.oa.settings.background"
    with pytest.raises(InvalidRequest) as info:
        await provider.generate(GenerationRequest(prompt="x", extra={"stream": True}), make_ctx(provider)[0])
    assert info.value.field == "extra.stream"


async def test_answers_without_images_fail(http, router) -> None:
    provider = make(http, credentials=KEY)
    router.post(GEN).respond(200, json={"created": 1, "data": []})
    with pytest.raises(GenerationFailed):
        await provider.generate(GenerationRequest(prompt="x"), make_ctx(provider)[0])
    router.post(GEN).respond(200, json={"created": 1, "data": [{"b64_json": "%%%"}]})
    with pytest.raises(GenerationFailed):
        await provider.generate(GenerationRequest(prompt="x"), make_ctx(provider)[0])


async def test_missing_key_is_a_config_error_at_use_not_at_start(http, router) -> None:
    route = router.route(host="api.openai.com").respond(200, json=models_answer())
    provider = make(http)  # builds fine
    with pytest.raises(ConfigError) as info:
        await provider.generate(GenerationRequest(prompt="x"), make_ctx(provider)[0])
    assert info.value.field == "providers.oa.credentials.api_key"
    status = await provider.health()
    assert not status.ok and "credentials.api_key" in status.message
    assert not route.called


async def test_models_health_and_options(http, router) -> None:
    route = router.get(MODELS_URL).respond(200, json=models_answer())
    provider = make(http, credentials=KEY)
    models = await provider.list_models()
    assert [m.id for m in models] == ["chatgpt-image-latest", "dall-e-2", "dall-e-3", "gpt-image-1",
                                      "gpt-image-1-mini"]
    assert models[0].details == {"owned_by": "system", "created": 1698785189}
    assert route.calls.last.request.headers["authorization"] == "Bearer sk-test-123"
    status = await provider.health()
    assert status.ok and status.details == {"image_models": 5, "models": 7}
    opts = await provider.options()
    assert opts["sizes"] == ["1024x1024", "1536x1024", "1024x1536", "auto"] and opts["styles"] == []
    assert opts["qualities"] == ["auto", "low", "medium", "high"] and opts["moderation"] == ["auto", "low"]
    dalle = await make(http, credentials=KEY, settings={"model": "dall-e-3"}).options()
    assert (dalle["styles"], dalle["backgrounds"], dalle["max_n"]) == (["vivid", "natural"], [], 1)

    router.get(MODELS_URL).respond(401, json=error_answer("Incorrect API key provided", code="invalid_api_key"))
    status = await provider.health()
    assert not status.ok and "Incorrect API key" in status.message
    with pytest.raises(AuthenticationFailed):
        await provider.list_models()


async def test_backend_url_and_headers_override_the_default(http, router) -> None:
    proxy = "http://127.0.0.1:4000/openai/v1"
    route = router.post(proxy + "/images/generations").respond(200, json=images_answer(tiny_png()))
    provider = make(http, credentials=KEY, backends=[{"url": proxy + "/", "headers": {"X-Team": "art"}}])
    ctx, _ = make_ctx(provider)
    result = await provider.generate(GenerationRequest(prompt="x"), ctx)
    sent = route.calls.last.request
    assert sent.headers["x-team"] == "art" and sent.headers["authorization"] == "Bearer sk-test-123"
    assert result.backend == proxy


async def test_the_call_is_bounded_by_the_jobs_time_left(http, router) -> None:
    route = router.post(GEN).respond(200, json=images_answer(tiny_png()))
    provider = make(http, credentials=KEY, settings={"request_timeout": 500})
    ctx, _ = make_ctx(provider, timeout=30.0)
    await provider.generate(GenerationRequest(prompt="x"), ctx)
    timeout = route.calls.last.request.extensions["timeout"]
    assert 0 < timeout["read"] <= 30.0 and timeout["connect"] <= 10.0


async def test_cancel_drops_the_request_in_flight(http, router) -> None:
    entered = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    router.post(GEN).mock(side_effect=hang)
    provider = make(http, credentials=KEY)
    ctx, _ = make_ctx(provider)
    job = asyncio.create_task(provider.generate(GenerationRequest(prompt="x"), ctx))
    await asyncio.wait_for(entered.wait(), timeout=10)
    ctx.cancel_event.set()
    with pytest.raises(JobCanceled):
        await asyncio.wait_for(job, timeout=10)
    await provider.cancel(ctx)  # no remote job to stop: a no-op that does not raise


def test_the_registry_builds_this_adapter(http) -> None:
    provider = make(http, credentials=KEY)
    assert isinstance(provider, OpenAIProvider) and provider.type == "openai"
    schema = provider.Settings.model_json_schema()
    assert schema["additionalProperties"] is False
    assert all(prop.get("description") for prop in schema["properties"].values())
    with pytest.raises(ConfigError) as info:
        make(http, settings={"quality": "ultra"})
    assert info.value.field == "providers.oa.settings.quality"


def test_rate_limit_waits_from_headers() -> None:
    assert [duration(t) for t in ("1s", "6m0s", "20ms", "1h2m3.5s", "2.5", "soon", "5x")] == [
        1.0, 360.0, 0.02, 3723.5, 2.5, None, None]
    assert retry_after(httpx.Headers({"retry-after-ms": "250", "retry-after": "9"})) == 0.25
    assert retry_after(httpx.Headers({"x-ratelimit-reset-requests": "2s", "x-ratelimit-reset-tokens": "1m"})) == 60
    assert retry_after(httpx.Headers({"x-ratelimit-reset-images": "12s", "x-ratelimit-remaining-images": "0",
                                      "x-ratelimit-reset-tokens": "1m"})) == 12
    assert retry_after(httpx.Headers({})) is None
