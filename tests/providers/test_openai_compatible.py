"""The ``openai_compatible`` adapter (a LiteLLM proxy, LocalAI ...) against respx routes that
answer in the OpenAI Images API's documented shapes."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from image_studio.errors import (AuthenticationFailed, ConfigError, ContentRejected, InvalidRequest,
                                 ProviderUnavailable, RateLimited, Unsupported)
from image_studio.providers.base import ImageProvider
from image_studio.providers.openai_compatible import OpenAICompatibleProvider
from image_studio.types import GenerationRequest
from tests.providers.contract import ProviderContract, make_ctx
from tests.providers.openai_helpers import (error_answer, form_fields, half_white_mask, image_bytes,
                                            images_answer, make, models_answer, multipart, tiny_png)

__all__ = ["http", "router"]  # fixtures
BASE = "http://127.0.0.1:8080/v1"
GEN, EDIT, MODELS_URL = BASE + "/images/generations", BASE + "/images/edits", BASE + "/models"
TYPE = "openai_compatible"


def compat(http: httpx.AsyncClient, *, settings: dict | None = None, credentials: dict | None = None,
           url: str = BASE) -> ImageProvider:
    return make(http, TYPE, settings=settings, credentials=credentials, backends=[{"url": url}], provider_id="local")


class TestOpenAICompatibleContract(ProviderContract):
    @pytest.fixture
    def provider(self, http: httpx.AsyncClient, router: respx.MockRouter) -> ImageProvider:
        router.post(GEN).respond(200, json=images_answer(tiny_png()))
        router.get(MODELS_URL).respond(200, json=models_answer(["sd-1.5", "flux-schnell"]))
        return compat(http, settings={"model": "sd-1.5"})

    @pytest.fixture
    def down_provider(self, http: httpx.AsyncClient, router: respx.MockRouter) -> ImageProvider:
        router.route(host="127.0.0.1", port=8080).mock(side_effect=httpx.ConnectError("connection refused"))
        return compat(http)


async def test_txt2img_without_a_key_any_size_and_a_localai_negative_prompt(http, router) -> None:
    route = router.post(GEN).respond(200, json=images_answer(tiny_png(), tiny_png()))
    provider = compat(http, settings={"model": "sd-1.5", "negative_prompt_separator": "|", "quality": "hd",
                                      "style": "vivid"})
    assert provider.capabilities.negative_prompt
    result = await provider.generate(GenerationRequest(prompt="an otter", negative_prompt="blurry", width=640,
                                                       height=480, n=2, extra={"step": 20}), make_ctx(provider)[0])
    sent = route.calls.last.request
    assert sent.method == "POST" and str(sent.url) == GEN
    assert "authorization" not in sent.headers
    # no OpenAI size list, every set field sent as is, extra passed through
    assert json.loads(sent.content) == {"prompt": "an otter|blurry", "n": 2, "model": "sd-1.5", "size": "640x480",
                                        "quality": "hd", "style": "vivid", "response_format": "b64_json",
                                        "step": 20}
    assert len(result.files) == 2 and result.files[0].width == 16 and result.backend == BASE


async def test_a_key_is_sent_when_configured_and_no_model_when_none(http, router) -> None:
    route = router.post(GEN).respond(200, json=images_answer(tiny_png()))
    provider = compat(http, credentials={"api_key": "sk-litellm-1"}, settings={"response_format": None})
    await provider.generate(GenerationRequest(prompt="x", negative_prompt="dropped", width=512, height=512),
                            make_ctx(provider)[0])
    sent = route.calls.last.request
    assert sent.headers["authorization"] == "Bearer sk-litellm-1"
    assert json.loads(sent.content) == {"prompt": "x", "n": 1, "size": "512x512"}


async def test_url_results_on_the_servers_host_are_fetched_with_its_key(http, router) -> None:
    png = tiny_png()
    own, other = "http://127.0.0.1:8080/generated-images/b64.png", "http://127.0.0.1:9000/out/2.png"
    router.post(GEN).respond(200, json={"created": 1, "data": [{"url": own}, {"url": other}]})
    own_route = router.get(own).respond(200, content=png, headers={"content-type": "image/png"})
    other_route = router.get(other).respond(200, content=png, headers={"content-type": "image/png"})
    provider = compat(http, credentials={"api_key": "k-1"})
    result = await provider.generate(GenerationRequest(prompt="x", n=2, width=256, height=256), make_ctx(provider)[0])
    assert [f.data for f in result.files] == [png, png]
    assert own_route.calls.last.request.headers["authorization"] == "Bearer k-1"
    assert "authorization" not in other_route.calls.last.request.headers


async def test_sizes_are_checked_against_max_size_only(http, router) -> None:
    route = router.post(GEN).respond(200, json=images_answer(tiny_png()))
    provider = compat(http, settings={"max_size": 1024})
    assert provider.capabilities.max_width == 1024
    with pytest.raises(InvalidRequest) as info:
        await provider.generate(GenerationRequest(prompt="x", width=768, height=1536), make_ctx(provider)[0])
    assert info.value.field == "height" and "1024" in info.value.message
    with pytest.raises(InvalidRequest) as info:
        await provider.generate(GenerationRequest(prompt="x", extra={"size": "big"}), make_ctx(provider)[0])
    assert info.value.field == "extra.size"
    assert not route.called
    await provider.generate(GenerationRequest(prompt="x", extra={"size": "auto"}), make_ctx(provider)[0])
    assert json.loads(route.calls.last.request.content)["size"] == "auto"


async def test_edits_only_when_the_server_serves_them(http, router) -> None:
    route = router.post(EDIT).respond(200, json=images_answer(tiny_png()))
    request = GenerationRequest(prompt="a hat", width=512, height=512, init_image=image_bytes(32, 32),
                                mask=half_white_mask(32, 32))
    plain = compat(http)
    assert not plain.capabilities.img2img and not plain.capabilities.inpaint
    with pytest.raises(Unsupported):
        await plain.generate(request, make_ctx(plain)[0])
    assert not route.called

    editing = compat(http, settings={"edits": True, "model": "flux-kontext"})
    await editing.generate(request, make_ctx(editing)[0])
    sent = route.calls.last.request
    assert set(multipart(sent)) == {"image", "mask", "prompt", "n", "model", "size", "response_format"}
    assert form_fields(sent) == {"prompt": "a hat", "n": "1", "model": "flux-kontext", "size": "512x512",
                                 "response_format": "b64_json"}


async def test_models_from_the_server_else_from_settings(http, router) -> None:
    router.get(MODELS_URL).respond(200, json=models_answer(["sd-1.5", "llama-3"]))
    provider = compat(http, settings={"models": ["configured"]})
    assert [m.id for m in await provider.list_models()] == ["llama-3", "sd-1.5"]  # not filtered by name

    router.get(MODELS_URL).respond(404, text="404 page not found")
    assert [(m.id, m.details) for m in await provider.list_models()] == [("configured", {"source": "settings"})]
    status = await provider.health()  # answered: reachable, just without a model list
    assert status.ok and status.details == {"models_route": False, "configured_models": 1}

    router.get(MODELS_URL).mock(side_effect=httpx.ConnectError("refused"))
    assert [m.id for m in await provider.list_models()] == ["configured"]
    with pytest.raises(ProviderUnavailable):
        await compat(http).list_models()
    assert not (await provider.health()).ok


@pytest.mark.parametrize(("status", "body", "headers", "error"), [
    (401, error_answer("Authentication Error, Invalid proxy server token passed", type_="auth_error"), {},
     AuthenticationFailed),
    (429, error_answer("Rate limit exceeded", type_="rate_limit_error"), {"retry-after": "3"}, RateLimited),
    (400, error_answer("Your request was rejected by the safety system.", type_="image_generation_user_error",
                       code="moderation_blocked"), {}, ContentRejected),
    (500, {"detail": "CUDA out of memory"}, {}, ProviderUnavailable),
])
async def test_errors_map_as_for_openai(http, router, status, body, headers, error) -> None:
    router.post(GEN).respond(status, json=body, headers=headers)
    provider = compat(http)
    with pytest.raises(error) as info:
        await provider.generate(GenerationRequest(prompt="x", width=512, height=512), make_ctx(provider)[0])
    if error is RateLimited:
        assert info.value.retry_after == 3


def test_a_backend_url_is_required(http) -> None:
    with pytest.raises(ConfigError) as info:
        make(http, TYPE, provider_id="local")
    assert info.value.field == "providers.local.backends"
    provider = compat(http)
    assert isinstance(provider, OpenAICompatibleProvider) and provider.type == TYPE
    schema = provider.Settings.model_json_schema()
    assert all(prop.get("description") for prop in schema["properties"].values())
