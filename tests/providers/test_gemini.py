"""The Gemini image adapter (``generateContent``) against respx routes in the documented shapes."""

from __future__ import annotations

import io

import httpx
import pytest
import respx
from PIL import Image

from image_studio.errors import (AuthenticationFailed, ConfigError, ContentRejected, GenerationFailed, InvalidRequest,
                                 ProviderUnavailable, RateLimited, Unsupported)
from image_studio.providers.base import ImageProvider
from image_studio.providers.gemini import GeminiProvider
from image_studio.providers.gemini.google import nearest_ratio, retry_delay
from image_studio.types import GenerationRequest, MediaKind
from tests.providers.contract import ProviderContract, make_ctx
from tests.providers.google_fakes import (BASE, KEY, b64, error_body, make, models_route,
                                          sent_json)
from tests.storage.helpers import noisy_png

__all__ = ["http", "router"]  # fixtures from google_fakes

MODEL = "gemini-2.5-flash-image"
GENERATE = f"{BASE}/models/{MODEL}:generateContent"
PNG = noisy_png(24, 16)


def answer(*parts: dict, finish: str = "STOP", **extra) -> dict:
    return {"candidates": [{"content": {"role": "model", "parts": list(parts)}, "finishReason": finish}],
            "modelVersion": MODEL, "responseId": "resp-1",
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 1290}, **extra}


def image_part(data: bytes = PNG, mime: str = "image/png", **kw) -> dict:
    return {"inlineData": {"mimeType": mime, "data": b64(data)}, **kw}


def route_all(router: respx.MockRouter, **kw) -> None:
    router.post(GENERATE).mock(**kw) if kw else router.post(GENERATE).respond(
        200, json=answer({"text": "Here you go."}, image_part()))
    router.get(f"{BASE}/models/{MODEL}").mock(**kw) if kw else router.get(f"{BASE}/models/{MODEL}").respond(
        200, json={"name": f"models/{MODEL}", "displayName": "Nano Banana", "version": "2.0"})
    router.get(f"{BASE}/models").mock(**kw) if kw else router.get(f"{BASE}/models").mock(side_effect=models_route)


class TestGeminiContract(ProviderContract):
    @pytest.fixture
    def provider(self, router: respx.MockRouter, http: httpx.AsyncClient) -> ImageProvider:
        route_all(router)
        return make("gemini", http)

    @pytest.fixture
    def down_provider(self, router: respx.MockRouter, http: httpx.AsyncClient) -> ImageProvider:
        route_all(router, side_effect=httpx.ConnectError("connection refused"))
        return make("gemini", http)


async def test_txt2img_sends_the_documented_body_once_per_image(router, http) -> None:
    route = router.post(GENERATE).respond(200, json=answer({"text": "A fox."}, image_part()))
    provider = make("gemini", http, settings={"image_size": "2K"})
    request = GenerationRequest(prompt="a red fox", width=1920, height=1080, n=2, seed=7)
    ctx, rec = make_ctx(provider)
    result = await provider.generate(request, ctx)

    assert route.call_count == 2
    for call, seed in zip(route.calls, (7, 8), strict=True):
        assert call.request.method == "POST" and call.request.url.path == f"/v1beta/models/{MODEL}:generateContent"
        assert call.request.headers["x-goog-api-key"] == KEY
        assert sent_json(call) == {
            "contents": [{"role": "user", "parts": [{"text": "a red fox"}]}],
            "generationConfig": {"responseModalities": ["TEXT", "IMAGE"],
                                 "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"}, "seed": seed},
        }
    assert [f.seed for f in result.files] == [7, 8]
    first = result.files[0]
    assert (first.data, first.mime_type, first.media, first.width, first.height) == (PNG, "image/png",
                                                                                    MediaKind.image, 24, 16)
    assert first.parameters["text"] == "A fox." and first.parameters["aspect_ratio"] == "16:9"
    assert first.parameters["model_version"] == MODEL and first.parameters["finish_reasons"] == ["STOP"]
    assert result.model == MODEL and result.info["usage"][0]["candidatesTokenCount"] == 1290
    assert [(p["value"], p["max"]) for p in rec.progress] == [(0, 2), (1, 2), (2, 2)]


async def test_edit_sends_the_image_inline_and_keeps_its_shape(router, http) -> None:
    route = router.post(GENERATE).respond(200, json=answer(image_part(mime="image/png")))
    provider = make("gemini", http, settings={"response_modalities": ["IMAGE"]})
    init = noisy_png(40, 30)
    await provider.generate(GenerationRequest(prompt="make it night", init_image=init), make_ctx(provider)[0])
    await provider.generate(GenerationRequest(prompt="wider", init_image=init, width=1000, height=800,
                                              extra={"system_instruction": "be bold"}), make_ctx(provider)[0])

    first, second = (sent_json(c) for c in route.calls)
    assert first == {
        "contents": [{"role": "user", "parts": [{"text": "make it night"},
                                                {"inlineData": {"mimeType": "image/png", "data": b64(init)}}]}],
        "generationConfig": {"responseModalities": ["IMAGE"]},
    }
    assert second["generationConfig"]["imageConfig"] == {"aspectRatio": "5:4"}
    assert second["systemInstruction"] == {"parts": [{"text": "be bold"}]}


async def test_extra_fields_pass_through(router, http) -> None:
    route = router.post(GENERATE).respond(200, json=answer(image_part()))
    provider = make("gemini", http)
    safety = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]
    request = GenerationRequest(prompt="x", seed=2**40 + 5, extra={
        "aspect_ratio": "21:9", "image_size": "4K", "generation_config": {"temperature": 0.5},
        "safety_settings": safety})
    result = await provider.generate(request, make_ctx(provider)[0])
    body = sent_json(route.calls[0])
    assert body["generationConfig"] == {"responseModalities": ["TEXT", "IMAGE"], "seed": 5, "temperature": 0.5,
                                        "imageConfig": {"aspectRatio": "21:9", "imageSize": "4K"}}
    assert body["safetySettings"] == safety and result.files[0].seed == 5  # int32 seed reported as sent
    with pytest.raises(InvalidRequest) as info:
        await provider.generate(GenerationRequest(prompt="x", extra={"generation_config": 3}), make_ctx(provider)[0])
    assert info.value.field == "extra.generation_config"


async def test_thought_images_are_skipped(router, http) -> None:
    draft, final = noisy_png(8, 8, seed=2), noisy_png(16, 16, seed=3)
    router.post(GENERATE).respond(200, json=answer({"text": "thinking", "thought": True},
                                                   image_part(draft, thought=True), image_part(final)))
    provider = make("gemini", http)
    result = await provider.generate(GenerationRequest(prompt="x"), make_ctx(provider)[0])
    assert [f.data for f in result.files] == [final] and "text" not in result.files[0].parameters


@pytest.mark.parametrize(("body", "error", "words"), [
    ({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}, ContentRejected, "prompt blocked: PROHIBITED_CONTENT"),
    (answer(finish="IMAGE_SAFETY") | {"candidates": [{"finishReason": "IMAGE_SAFETY",
                                                      "finishMessage": "unsafe image"}]},
     ContentRejected, "IMAGE_SAFETY): unsafe image"),
    (answer({"text": "I can't draw that person."}), ContentRejected, "STOP): I can't draw that person."),
    (answer({"text": "partial"}, finish="MAX_TOKENS"), GenerationFailed, "MAX_TOKENS"),
    ({"candidates": []}, GenerationFailed, "no candidates"),
])
async def test_answers_without_an_image_say_why(router, http, body, error, words) -> None:
    router.post(GENERATE).respond(200, json=body)
    provider = make("gemini", http)
    with pytest.raises(error) as info:
        await provider.generate(GenerationRequest(prompt="x"), make_ctx(provider)[0])
    assert words in info.value.message and info.value.provider == "g"
    assert type(info.value) is error


RETRY_INFO = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}]
KEY_INVALID = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                "domain": "googleapis.com"}]


@pytest.mark.parametrize(("status", "body", "headers", "error", "check"), [
    (400, error_body(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", KEY_INVALID), {},
     AuthenticationFailed, lambda e: e.status == 400 and not e.retryable),
    (403, error_body(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."), {},
     AuthenticationFailed, lambda e: e.status == 403),
    (429, error_body(429, "RESOURCE_EXHAUSTED", "Quota exceeded", RETRY_INFO), {"Retry-After": "99"},
     RateLimited, lambda e: e.retry_after == 17.0 and e.retryable),
    (429, error_body(429, "RESOURCE_EXHAUSTED", "Quota exceeded"), {"Retry-After": "5"},
     RateLimited, lambda e: e.retry_after == 5.0),
    (500, error_body(500, "INTERNAL", "An internal error has occurred."), {},
     ProviderUnavailable, lambda e: e.retryable and e.status == 500),
    (400, error_body(400, "INVALID_ARGUMENT", "Unsupported aspect ratio: 7:3"), {},
     InvalidRequest, lambda e: e.field == "width"),
    (404, error_body(404, "NOT_FOUND", "models/nope is not found for API version v1beta"), {},
     InvalidRequest, lambda e: e.field == "model"),
    (400, error_body(400, "FAILED_PRECONDITION", "User location is not supported for the API use."), {},
     Exception, lambda e: type(e).__name__ == "ProviderError" and not e.retryable),
])
async def test_google_error_bodies_map_to_the_error_tree(router, http, status, body, headers, error, check) -> None:
    router.post(GENERATE).respond(status, json=body, headers=headers)
    provider = make("gemini", http)
    with pytest.raises(error) as info:
        await provider.generate(GenerationRequest(prompt="x"), make_ctx(provider)[0])
    assert check(info.value), info.value.to_dict()


async def test_missing_key_is_a_config_error_not_a_crash(router, http) -> None:
    provider = make("gemini", http, key=None)  # builds: the studio starts and says what is missing
    with pytest.raises(ConfigError) as info:
        await provider.generate(GenerationRequest(prompt="x"), make_ctx(provider)[0])
    assert info.value.field == "providers.g.credentials.api_key"
    status = await provider.health()
    assert not status.ok and "credentials.api_key" in status.message
    assert not router.calls


async def test_backend_url_overrides_the_base(router, http) -> None:
    route = router.post(f"http://127.0.0.1:9/proxy/v1beta/models/{MODEL}:generateContent").respond(
        200, json=answer(image_part()))
    provider = make("gemini", http, url="http://127.0.0.1:9/proxy/v1beta")
    await provider.generate(GenerationRequest(prompt="x"), make_ctx(provider)[0])
    assert route.call_count == 1


async def test_list_models_reads_every_page_and_keeps_image_models(router, http) -> None:
    route = router.get(f"{BASE}/models").mock(side_effect=models_route)
    provider = make("gemini", http)
    models = await provider.list_models()
    assert [m.id for m in models] == ["gemini-2.5-flash-image", "gemini-3-pro-image-preview"]
    assert models[0].name == "Nano Banana" and models[0].details["version"] == "2.0"
    assert [c.request.url.params.get("pageToken") for c in route.calls] == [None, "page-2"]
    assert all(c.request.headers["x-goog-api-key"] == KEY for c in route.calls)


async def test_health_names_the_model_and_reports_refusals(router, http) -> None:
    router.get(f"{BASE}/models/gemini-3-pro-image-preview").respond(
        404, json=error_body(404, "NOT_FOUND", "models/gemini-3-pro-image-preview is not found"))
    provider = make("gemini", http, settings={"model": "gemini-3-pro-image-preview"})
    status = await provider.health()
    assert not status.ok and "not found" in status.message
    assert status.details["model"] == "gemini-3-pro-image-preview"


async def test_requests_it_cannot_serve(http) -> None:
    provider = make("gemini", http)
    assert isinstance(provider, GeminiProvider)
    caps = provider.capabilities
    assert caps.img2img and not caps.inpaint and not caps.video and caps.seed and not caps.negative_prompt
    with pytest.raises(Unsupported) as info:
        await provider.generate(GenerationRequest(prompt="x", init_image=PNG, mask=PNG), make_ctx(provider)[0])
    assert info.value.field == "mask"
    with pytest.raises(Unsupported):
        await provider.generate(GenerationRequest(prompt="x", media="video"), make_ctx(provider)[0])
    with pytest.raises(InvalidRequest) as bad:
        await provider.generate(GenerationRequest(prompt="x", init_image=b"not an image"), make_ctx(provider)[0])
    assert bad.value.field == "init_image"
    gif = io.BytesIO()
    Image.new("RGB", (4, 4)).save(gif, format="GIF")
    with pytest.raises(InvalidRequest) as fmt:
        await provider.generate(GenerationRequest(prompt="x", init_image=gif.getvalue()), make_ctx(provider)[0])
    assert "GIF not accepted" in fmt.value.message and fmt.value.field == "init_image"
    assert (await provider.options())["aspect_ratios"][-1] == "21:9"


def test_nearest_ratio_and_retry_delay() -> None:
    ratios = ("1:1", "2:3", "3:2", "9:16", "16:9", "21:9")
    assert nearest_ratio(1024, 1024, ratios) == "1:1"
    assert nearest_ratio(1280, 720, ratios) == "16:9"
    assert nearest_ratio(720, 1300, ratios) == "9:16"
    assert nearest_ratio(3000, 1000, ratios) == "21:9"
    assert nearest_ratio(900, 600, ratios) == "3:2"
    assert retry_delay({"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                     "retryDelay": "2.5s"}]}) == 2.5
    assert retry_delay({"details": [{"@type": "x", "retryDelay": "3s"}]}) is None
