"""The Hugging Face provider against respx routes that answer as the Inference Providers router
and the Hub API document (huggingface.co/docs/inference-providers/tasks/text-to-image)."""

from __future__ import annotations

import json

import httpx
import pytest

from image_studio.errors import (AuthenticationFailed, ConfigError, ContentRejected, GenerationFailed, InvalidRequest,
                                 ProviderError, ProviderUnavailable, RateLimited, Unsupported)
from image_studio.providers.base import ImageProvider
from image_studio.types import GenerationRequest
from tests.providers.contract import ProviderContract, make_ctx
from tests.providers.openai_helpers import image_bytes
from tests.providers.openai_helpers import make as make_provider
from tests.storage.helpers import noisy_png

ROUTER = "https://router.huggingface.co/hf-inference/models/"
FLUX = ROUTER + "black-forest-labs/FLUX.1-schnell"
WHOAMI = "https://huggingface.co/api/whoami-v2"
MODELS = "https://huggingface.co/api/models"


JPEG = image_bytes(64, 48, "JPEG")
WHOAMI_BODY = {"type": "user", "name": "alice",
               "auth": {"accessToken": {"displayName": "studio", "role": "fineGrained"}}}
MODELS_BODY = [{"id": "black-forest-labs/FLUX.1-schnell", "likes": 4000},
               {"id": "stabilityai/stable-diffusion-xl-base-1.0", "likes": 6000, "downloads": 10},
               {"_id": "x", "modelId": "ByteDance/SDXL-Lightning", "pipeline_tag": "text-to-image"}]


def image_answer(data: bytes = JPEG) -> httpx.Response:
    return httpx.Response(200, content=data, headers={"content-type": "image/jpeg"})


def make(http: httpx.AsyncClient, *, credentials: dict | None = None, backends: list | None = None,
         **settings) -> ImageProvider:
    return make_provider(http, "huggingface", provider_id="hf", backends=backends, settings=settings,
                         credentials={"api_key": "hf_test"} if credentials is None else credentials)


class TestHuggingFaceContract(ProviderContract):
    @pytest.fixture
    def provider(self, router, http: httpx.AsyncClient) -> ImageProvider:
        router.post(FLUX).mock(return_value=image_answer())
        router.get(WHOAMI).respond(200, json=WHOAMI_BODY)
        router.get(MODELS).respond(200, json=MODELS_BODY)
        return make(http)

    @pytest.fixture
    def down_provider(self, router, http: httpx.AsyncClient) -> ImageProvider:
        router.route().mock(side_effect=httpx.ConnectError("connection refused"))
        return make(http)


async def test_txt2img_sends_the_documented_json_and_returns_the_image(router, http) -> None:
    route = router.post(FLUX).mock(return_value=image_answer())
    provider = make(http)
    request = GenerationRequest(prompt="a lighthouse", negative_prompt="fog", width=768, height=512, steps=4,
                                cfg_scale=0.0, scheduler="euler", seed=1234)
    ctx, rec = make_ctx(provider)
    result = await provider.generate(request, ctx)

    sent = route.calls.last.request
    assert sent.method == "POST" and sent.url == FLUX
    assert sent.headers["authorization"] == "Bearer hf_test" and sent.headers["content-type"] == "application/json"
    assert sent.headers["x-use-cache"] == "false" and "x-wait-for-model" not in sent.headers
    assert json.loads(sent.content) == {"inputs": "a lighthouse", "parameters": {
        "width": 768, "height": 512, "seed": 1234, "negative_prompt": "fog", "num_inference_steps": 4,
        "guidance_scale": 0.0, "scheduler": "euler"}}
    (file,) = result.files
    assert file.data == JPEG and file.mime_type == "image/jpeg" and (file.width, file.height) == (64, 48)
    assert file.seed == 1234 and file.parameters["model"] == "black-forest-labs/FLUX.1-schnell"
    assert result.model == "black-forest-labs/FLUX.1-schnell" and rec.progress[-1]["value"] == 1


async def test_request_model_extra_and_wait_settings(router, http) -> None:
    route = router.post(ROUTER + "stabilityai/stable-diffusion-xl-base-1.0").mock(
        return_value=image_answer(noisy_png(32, 32)))
    provider = make(http, wait_for_model=True, use_cache=True)
    request = GenerationRequest(prompt="p", model="stabilityai/stable-diffusion-xl-base-1.0", width=512, height=512,
                                seed=3, extra={"max_sequence_length": 256})
    result = await provider.generate(request, make_ctx(provider)[0])
    sent = route.calls.last.request
    assert sent.headers["x-wait-for-model"] == "true" and sent.headers["x-use-cache"] == "true"
    assert json.loads(sent.content)["parameters"] == {"width": 512, "height": 512, "seed": 3,
                                                      "max_sequence_length": 256}
    assert result.files[0].mime_type == "image/png" and result.model == "stabilityai/stable-diffusion-xl-base-1.0"


async def test_without_a_seed_one_is_drawn_and_reported_and_n_counts_up(router, http) -> None:
    route = router.post(FLUX).mock(side_effect=[image_answer(), image_answer()])
    provider = make(http)
    ctx, rec = make_ctx(provider)
    result = await provider.generate(GenerationRequest(prompt="p", n=2), ctx)
    seeds = [json.loads(c.request.content)["parameters"]["seed"] for c in route.calls]
    assert 0 <= seeds[0] < 2**32 and seeds[1] == seeds[0] + 1
    assert [f.seed for f in result.files] == seeds
    assert [(p["value"], p["max"]) for p in rec.progress] == [(1, 2), (2, 2)]


@pytest.mark.parametrize(("response", "error", "check"), [
    (httpx.Response(401, json={"error": "Invalid credentials in Authorization header"}), AuthenticationFailed,
     lambda e: e.status == 401),
    (httpx.Response(403, json={"error": "Access to model is restricted"}), AuthenticationFailed,
     lambda e: "Inference Providers" in e.message),
    (httpx.Response(402, json={"error": "You have exceeded your monthly included credits for Inference Providers."}),
     ProviderError, lambda e: type(e) is ProviderError and not e.retryable and "credits" in e.message),
    (httpx.Response(429, headers={"retry-after": "3"}, json={"error": "Rate limit reached"}), RateLimited,
     lambda e: e.retry_after == 3.0),
    (httpx.Response(503, json={"error": "Model black-forest-labs/FLUX.1-schnell is currently loading",
                               "estimated_time": 20.5}), RateLimited,
     lambda e: e.retry_after == 20.5 and "loading" in e.message),
    (httpx.Response(500, json={"error": "CUDA error"}), ProviderUnavailable, lambda e: e.retryable),
    (httpx.Response(400, json={"error": "NSFW content detected by the safety checker"}), ContentRejected,
     lambda e: not e.retryable),
    (httpx.Response(200, json={"error": "Potential NSFW content was detected"}), ContentRejected, lambda e: True),
    (httpx.Response(200, json={"error": "something odd"}), GenerationFailed, lambda e: "something odd" in e.message),
])
async def test_error_answers_map_to_the_error_tree(router, http, response, error, check) -> None:
    router.post(FLUX).mock(return_value=response)
    provider = make(http)
    with pytest.raises(error) as info:
        await provider.generate(GenerationRequest(prompt="p"), make_ctx(provider)[0])
    assert check(info.value), info.value.to_dict()


@pytest.mark.parametrize(("text", "extra", "field"), [
    ("Input validation error: `num_inference_steps` must be less than 50", {}, "steps"),
    ("guidance_scale must be positive", {}, "cfg_scale"),
    ("unexpected keyword argument 'strength_x'", {"strength_x": 1}, "extra.strength_x"),
    ("bad body", {}, None),
])
async def test_validation_errors_name_our_field(router, http, text, extra, field) -> None:
    router.post(FLUX).respond(400, json={"error": text})
    provider = make(http)
    with pytest.raises(InvalidRequest) as info:
        await provider.generate(GenerationRequest(prompt="p", extra=extra), make_ctx(provider)[0])
    assert info.value.field == field and text in info.value.message


async def test_unknown_model_is_the_request_or_the_settings_fault(router, http) -> None:
    router.post(ROUTER + "nobody/nothing").respond(404, json={"error": "Model nobody/nothing does not exist"})
    router.post(FLUX).respond(404, json={"error": "Not Found"})
    provider = make(http)
    with pytest.raises(InvalidRequest) as info:
        await provider.generate(GenerationRequest(prompt="p", model="nobody/nothing"), make_ctx(provider)[0])
    assert info.value.field == "model"
    with pytest.raises(ProviderError) as err:
        await provider.generate(GenerationRequest(prompt="p"), make_ctx(provider)[0])
    assert err.value.field == "providers.hf.settings.model" and not err.value.retryable


async def test_init_image_is_unsupported_before_any_call(router, http) -> None:
    provider = make(http)
    with pytest.raises(Unsupported):
        await provider.generate(GenerationRequest(prompt="p", init_image=noisy_png(8, 8)), make_ctx(provider)[0])
    assert not router.calls and not provider.capabilities.img2img


async def test_missing_token_is_a_config_error_and_health_says_so(router, http) -> None:
    provider = make(http, credentials={})
    with pytest.raises(ConfigError) as info:
        await provider.generate(GenerationRequest(prompt="p"), make_ctx(provider)[0])
    assert info.value.field == "providers.hf.credentials.api_key"
    status = await provider.health()
    assert not status.ok and "api_key" in status.message and not router.calls


async def test_health_is_whoami_with_the_token(router, http) -> None:
    route = router.get(WHOAMI).respond(200, json=WHOAMI_BODY)
    status = await make(http).health()
    assert status.ok and status.details["name"] == "alice" and status.details["token_role"] == "fineGrained"
    assert route.calls.last.request.headers["authorization"] == "Bearer hf_test"
    router.get(WHOAMI).respond(401, json={"error": "Invalid credentials in Authorization header"})
    bad = await make(http).health()
    assert not bad.ok and "401" in bad.message


async def test_list_models_puts_the_configured_model_first(router, http) -> None:
    route = router.get(MODELS).respond(200, json=MODELS_BODY)
    models = await make(http, models_limit=10).list_models()
    query = dict(route.calls.last.request.url.params)
    assert query == {"pipeline_tag": "text-to-image", "inference_provider": "hf-inference",
                     "sort": "trendingScore", "limit": "10"}
    assert [m.id for m in models] == ["black-forest-labs/FLUX.1-schnell", "stabilityai/stable-diffusion-xl-base-1.0",
                                      "ByteDance/SDXL-Lightning"]
    assert models[0].details["default"] and models[1].details["likes"] == 6000


async def test_backend_url_replaces_the_router_base(router, http) -> None:
    route = router.post("http://127.0.0.1:9999/hf/hf-inference/models/black-forest-labs/FLUX.1-schnell").mock(
        return_value=image_answer())
    provider = make(http, backends=[{"url": "http://127.0.0.1:9999/hf"}])
    await provider.generate(GenerationRequest(prompt="p"), make_ctx(provider)[0])
    assert route.call_count == 1
