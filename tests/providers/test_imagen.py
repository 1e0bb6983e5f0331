"""The Imagen adapter (``models/{model}:predict``) against respx routes in the documented shapes."""

from __future__ import annotations

import httpx
import pytest
import respx

from image_studio.errors import AuthenticationFailed, ContentRejected, InvalidRequest, RateLimited, Unsupported
from image_studio.providers.base import ImageProvider
from image_studio.types import GenerationRequest, MediaKind
from tests.providers.contract import ProviderContract, make_ctx
from tests.providers.google_fakes import (BASE, KEY, b64, error_body, make, models_route,
                                          sent_json)
from tests.storage.helpers import noisy_png

__all__ = ["http", "router"]  # fixtures from google_fakes

MODEL = "imagen-4.0-generate-001"
PREDICT = f"{BASE}/models/{MODEL}:predict"
PNG_A, PNG_B = noisy_png(32, 24, seed=1), noisy_png(32, 24, seed=2)


def predictions(*items: dict) -> dict:
    return {"predictions": list(items)}


def image(data: bytes, mime: str = "image/png") -> dict:
    return {"bytesBase64Encoded": b64(data), "mimeType": mime}


class TestImagenContract(ProviderContract):
    @pytest.fixture
    def provider(self, router: respx.MockRouter, http: httpx.AsyncClient) -> ImageProvider:
        router.post(PREDICT).respond(200, json=predictions(image(PNG_A)))
        router.get(f"{BASE}/models/{MODEL}").respond(200, json={"name": f"models/{MODEL}", "displayName": "Imagen 4"})
        router.get(f"{BASE}/models").mock(side_effect=models_route)
        return make("imagen", http)

    @pytest.fixture
    def down_provider(self, router: respx.MockRouter, http: httpx.AsyncClient) -> ImageProvider:
        router.route(host="generativelanguage.googleapis.com").mock(side_effect=httpx.ConnectError("refused"))
        return make("imagen", http)


async def test_txt2img_sends_the_documented_body(router, http) -> None:
    route = router.post(PREDICT).respond(200, json=predictions(image(PNG_A), image(PNG_B)))
    provider = make("imagen", http, settings={"person_generation": "dont_allow"})
    ctx, rec = make_ctx(provider)
    result = await provider.generate(GenerationRequest(prompt="a lighthouse", width=768, height=1024, n=2), ctx)

    (call,) = route.calls
    assert call.request.method == "POST" and call.request.url.path == f"/v1beta/models/{MODEL}:predict"
    assert call.request.headers["x-goog-api-key"] == KEY
    assert sent_json(call) == {
        "instances": [{"prompt": "a lighthouse"}],
        "parameters": {"sampleCount": 2, "aspectRatio": "3:4", "personGeneration": "dont_allow",
                       "includeRaiReason": True},
    }
    assert [f.data for f in result.files] == [PNG_A, PNG_B]
    f = result.files[0]
    assert (f.mime_type, f.media, f.width, f.height) == ("image/png", MediaKind.image, 32, 24)
    assert f.parameters == {"aspect_ratio": "3:4", "person_generation": "dont_allow", "model": MODEL}
    assert rec.progress[-1]["value"] == rec.progress[-1]["max"] == 1


async def test_large_requests_ask_for_2k_where_the_model_has_it(router, http) -> None:
    standard = router.post(PREDICT).respond(200, json=predictions(image(PNG_A)))
    fast = router.post(f"{BASE}/models/imagen-4.0-fast-generate-001:predict").respond(
        200, json=predictions(image(PNG_A)))
    provider = make("imagen", http, settings={"include_rai_reason": False, "output_mime_type": "image/jpeg"})
    big = GenerationRequest(prompt="x", width=2048, height=2048)
    await provider.generate(big, make_ctx(provider)[0])
    await provider.generate(big.model_copy(update={"model": "imagen-4.0-fast-generate-001"}), make_ctx(provider)[0])
    await provider.generate(GenerationRequest(prompt="x", extra={"image_size": "1K", "aspect_ratio": "16:9",
                                                                 "parameters": {"language": "en"}}),
                            make_ctx(provider)[0])
    first, pinned = (sent_json(c)["parameters"] for c in standard.calls)
    assert first == {"sampleCount": 1, "aspectRatio": "1:1", "sampleImageSize": "2K",
                     "outputOptions": {"mimeType": "image/jpeg"}}
    assert "sampleImageSize" not in sent_json(fast.calls[0])["parameters"]
    assert pinned["sampleImageSize"] == "1K" and pinned["aspectRatio"] == "16:9" and pinned["language"] == "en"


async def test_negative_prompt_is_sent_only_when_enabled(router, http) -> None:
    route = router.post(PREDICT).respond(200, json=predictions(image(PNG_A)))
    request = GenerationRequest(prompt="x", negative_prompt="blur")
    off = make("imagen", http)
    on = make("imagen", http, settings={"send_negative_prompt": True})
    await off.generate(request, make_ctx(off)[0])
    await on.generate(request, make_ctx(on)[0])
    assert "negativePrompt" not in sent_json(route.calls[0])["parameters"]
    assert sent_json(route.calls[1])["parameters"]["negativePrompt"] == "blur"
    assert not off.capabilities.negative_prompt and on.capabilities.negative_prompt


async def test_filtered_images_are_content_rejections_not_successes(router, http) -> None:
    reason = "Your current safety filter threshold filtered out the generated image."
    route = router.post(PREDICT)
    provider = make("imagen", http)
    for body in (predictions({"raiFilteredReason": reason}), {}, predictions()):
        route.respond(200, json=body)
        with pytest.raises(ContentRejected) as info:
            await provider.generate(GenerationRequest(prompt="x"), make_ctx(provider)[0])
        assert "no image" in info.value.message and info.value.provider == "g"
        if body.get("predictions"):
            assert reason in info.value.message


async def test_partly_filtered_batches_return_what_came_with_the_reasons(router, http) -> None:
    router.post(PREDICT).respond(200, json=predictions(image(PNG_A), {"raiFilteredReason": "filtered: people"}))
    provider = make("imagen", http)
    result = await provider.generate(GenerationRequest(prompt="x", n=2), make_ctx(provider)[0])
    assert [f.data for f in result.files] == [PNG_A]
    assert result.info["rai_filtered_reasons"] == ["filtered: people"]


async def test_error_bodies(router, http) -> None:
    route = router.post(PREDICT)
    provider = make("imagen", http)
    cases = [
        (400, error_body(400, "INVALID_ARGUMENT", "Image generation failed with the following error: The prompt "
                         "could not be submitted. It violates Google's Responsible AI practices."), ContentRejected),
        (401, error_body(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
         AuthenticationFailed),
        (429, error_body(429, "RESOURCE_EXHAUSTED", "Quota exceeded", [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "42s"}]), RateLimited),
        (400, error_body(400, "INVALID_ARGUMENT", "sampleCount must be between 1 and 4"), InvalidRequest),
    ]
    for status, body, error in cases:
        route.respond(status, json=body)
        with pytest.raises(error) as info:
            await provider.generate(GenerationRequest(prompt="x"), make_ctx(provider)[0])
        assert type(info.value) is error
    assert info.value.field == "n"
    route.respond(429, json=cases[2][1])
    with pytest.raises(RateLimited) as limited:
        await provider.generate(GenerationRequest(prompt="x"), make_ctx(provider)[0])
    assert limited.value.retry_after == 42.0


async def test_text_only_and_image_only(http) -> None:
    provider = make("imagen", http)
    caps = provider.capabilities
    assert caps.txt2img and not caps.img2img and not caps.seed and caps.max_n == 4
    with pytest.raises(Unsupported) as info:
        await provider.generate(GenerationRequest(prompt="x", init_image=PNG_A), make_ctx(provider)[0])
    assert info.value.field == "init_image"
    with pytest.raises(Unsupported):
        await provider.generate(GenerationRequest(prompt="x", media="video"), make_ctx(provider)[0])


async def test_list_models_keeps_imagen_models(router, http) -> None:
    router.get(f"{BASE}/models").mock(side_effect=models_route)
    provider = make("imagen", http)
    assert [m.id for m in await provider.list_models()] == ["imagen-4.0-generate-001", "imagen-4.0-fast-generate-001"]
    assert (await provider.options())["aspect_ratios"] == ["1:1", "3:4", "4:3", "9:16", "16:9"]
