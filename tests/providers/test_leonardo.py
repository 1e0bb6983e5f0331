"""The Leonardo adapter against respx routes answering in Leonardo's documented shapes (the
official SDK's OpenAPI models, docs.leonardo.ai error and NSFW guides, the presigned upload guide)."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx
from PIL import Image

from image_studio.config import ProviderConfig
from image_studio.errors import (AuthenticationFailed, ConfigError, ContentRejected, GenerationFailed, InvalidRequest,
                                 JobCanceled, ProviderError, ProviderUnavailable, RateLimited, Unsupported)
from image_studio.providers.base import ImageProvider
from image_studio.providers.leonardo import LEONARDO_URL, LeonardoProvider
from image_studio.providers.registry import create_provider
from image_studio.types import GenerationRequest
from tests.providers.contract import ProviderContract, make_ctx
from tests.storage.helpers import noisy_png

CDN = "https://cdn.leonardo.ai/users/u-1/generations"
S3 = "https://image-flex-bucket.s3.amazonaws.com/"
GEN = "88b381ea-7baf-457d-a5b4-8068cb6bac21"


def jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 90, 150)).save(out, format="JPEG")
    return out.getvalue()


IMAGE = jpeg(64, 48)


class FakeLeonardo:
    """Routes for the Leonardo REST API. ``states`` scripts the statuses GET /generations/{id}
    answers before COMPLETE; ``nsfw`` flags the generated images."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.states: list[str] = ["PENDING"]
        self.nsfw: list[bool] = [False]
        self.router = router
        router.post(f"{LEONARDO_URL}/generations").respond(
            200, json={"sdGenerationJob": {"generationId": GEN, "apiCreditCost": 12}})
        router.get(url__regex=rf"{LEONARDO_URL}/generations/[^/]+$").mock(side_effect=self.generation)
        router.delete(url__regex=rf"{LEONARDO_URL}/generations/[^/]+$").mock(
            side_effect=lambda req: httpx.Response(200, json={"delete_generations_by_pk": {
                "id": req.url.path.rsplit("/", 1)[1]}}))
        router.post(f"{LEONARDO_URL}/init-image").respond(200, json={"uploadInitImage": {
            "id": "init-9", "url": S3, "key": "users/u-1/initImages/init-9.png",
            "fields": json.dumps({"key": "users/u-1/initImages/init-9.png", "Policy": "eyJ...",
                                  "X-Amz-Signature": "ab12"})}})
        router.post(S3).respond(204)
        router.get(f"{LEONARDO_URL}/me").respond(200, json={"user_details": [{
            "user": {"id": "u-1", "username": "fox"}, "apiPaidTokens": 3500, "apiSubscriptionTokens": 0,
            "apiConcurrencySlots": 5}]})
        router.get(f"{LEONARDO_URL}/platformModels").respond(200, json={"custom_models": [
            {"id": "de7d3faf-762f-48e0-b3b7-9d0ac3a3fcf3", "name": "Leonardo Phoenix 1.0", "description": "flagship",
             "featured": True, "nsfw": False},
            {"id": "b24e16ff-06e3-43eb-8d33-4416c2d75876", "name": "Leonardo Lightning XL", "featured": True}]})
        router.get(url__startswith=CDN).respond(200, content=IMAGE, headers={"content-type": "image/jpeg"})

    def generation(self, request: httpx.Request) -> httpx.Response:
        gen_id = request.url.path.rsplit("/", 1)[1]
        status = self.states.pop(0) if self.states else "COMPLETE"
        images = [{"url": f"{CDN}/{gen_id}/Leonardo_{i}.jpg", "nsfw": flag, "id": f"img-{i}", "likeCount": 0,
                   "generated_image_variation_generics": []} for i, flag in enumerate(self.nsfw)]
        return httpx.Response(200, json={"generations_by_pk": {
            "id": gen_id, "status": status, "seed": 424242, "modelId": "b24e16ff-06e3-43eb-8d33-4416c2d75876",
            "imageWidth": 64, "imageHeight": 48, "scheduler": "EULER_DISCRETE", "public": False,
            "generated_images": images if status == "COMPLETE" else []}})

    def calls(self, method: str, path: str) -> list[httpx.Request]:
        return [c.request for c in self.router.calls if c.request.method == method and c.request.url.path == path]


@pytest.fixture
def fake(router: respx.MockRouter) -> FakeLeonardo:
    return FakeLeonardo(router)


def make_provider(http: httpx.AsyncClient, *, settings: dict | None = None, key: str | None = "leo-key",
                  url: str | None = None) -> LeonardoProvider:
    config = ProviderConfig(type="leonardo", credentials={"api_key": key} if key else {},
                            settings={"poll_interval": 0.01, **(settings or {})},
                            backends=[{"url": url}] if url else [])
    provider = create_provider("leo", config, http)
    assert isinstance(provider, LeonardoProvider)
    return provider


def request(**kw: Any) -> GenerationRequest:
    return GenerationRequest(**{"prompt": "An oil painting of a cat", "width": 64, "height": 48, **kw})


API = "/api/rest/v1"


class TestLeonardoContract(ProviderContract):
    @pytest.fixture
    def provider(self, fake: FakeLeonardo, http: httpx.AsyncClient) -> ImageProvider:
        return make_provider(http)

    @pytest.fixture
    def down_provider(self, router: respx.MockRouter, http: httpx.AsyncClient) -> ImageProvider:
        router.route(host="down.example").mock(side_effect=httpx.ConnectError("refused"))
        return make_provider(http, url="https://down.example/api/rest/v1")


async def test_txt2img_posts_the_documented_body_then_polls_and_downloads(fake: FakeLeonardo,
                                                                          http: httpx.AsyncClient) -> None:
    provider = make_provider(http)
    fake.states = ["PENDING", "PENDING"]
    fake.nsfw = [False, False]
    ctx, rec = make_ctx(provider)
    result = await provider.generate(request(negative_prompt="blurry", n=2, steps=20, cfg_scale=7.4, seed=9,
                                             scheduler="EULER_DISCRETE",
                                             model="de7d3faf-762f-48e0-b3b7-9d0ac3a3fcf3"), ctx)

    (post,) = fake.calls("POST", f"{API}/generations")
    assert post.headers["authorization"] == "Bearer leo-key"
    assert json.loads(post.content) == {
        "prompt": "An oil painting of a cat", "negative_prompt": "blurry",
        "modelId": "de7d3faf-762f-48e0-b3b7-9d0ac3a3fcf3", "width": 64, "height": 48, "num_images": 2,
        "public": False, "seed": 9, "guidance_scale": 7, "num_inference_steps": 20, "scheduler": "EULER_DISCRETE",
    }
    polls = fake.calls("GET", f"{API}/generations/{GEN}")
    assert len(polls) == 3 and all(p.headers["authorization"] == "Bearer leo-key" for p in polls)
    assert rec.remembered == [GEN] and result.provider_job_id == GEN
    assert result.info == {"generation_id": GEN, "api_credit_cost": 12}
    assert [(p["value"], p["max"]) for p in rec.progress] == [(1, 0), (2, 0), (1, 1)]
    assert [f.data for f in result.files] == [IMAGE, IMAGE]
    first = result.files[0]
    assert (first.mime_type, first.width, first.height, first.seed) == ("image/jpeg", 64, 48, 424242)
    assert first.parameters["image_id"] == "img-0" and first.parameters["nsfw"] is False
    downloads = [c.request for c in fake.router.calls if c.request.url.host == "cdn.leonardo.ai"]
    assert "authorization" not in downloads[0].headers


async def test_img2img_uploads_through_the_presigned_form(fake: FakeLeonardo, http: httpx.AsyncClient) -> None:
    provider = make_provider(http, settings={"alchemy": True, "preset_style": "DYNAMIC"})
    init = noisy_png(64, 48, seed=2)
    ctx, _ = make_ctx(provider)
    await provider.generate(request(init_image=init, denoising_strength=0.3, extra={"contrast": 3.5}), ctx)

    (ask,) = fake.calls("POST", f"{API}/init-image")
    assert json.loads(ask.content) == {"extension": "png"}
    (upload,) = [c.request for c in fake.router.calls if c.request.url.host == "image-flex-bucket.s3.amazonaws.com"]
    assert "authorization" not in upload.headers
    assert upload.headers["content-type"].startswith("multipart/form-data")
    body = upload.content
    for name, value in (("key", b"users/u-1/initImages/init-9.png"), ("Policy", b"eyJ..."),
                        ("X-Amz-Signature", b"ab12")):
        assert f'name="{name}"'.encode() in body and value in body
    assert b'name="file"; filename="init.png"' in body and init in body
    (post,) = fake.calls("POST", f"{API}/generations")
    sent = json.loads(post.content)
    assert (sent["init_image_id"], sent["init_strength"]) == ("init-9", 0.7)
    assert (sent["alchemy"], sent["presetStyle"], sent["contrast"]) == (True, "DYNAMIC", 3.5)


@pytest.mark.parametrize(("status", "body", "headers", "kind", "field"), [
    (401, {"error": "Invalid response from authorization hook", "path": "$", "code": "unexpected"}, {},
     AuthenticationFailed, None),
    (400, {"error": "Authentication hook unauthorized this request", "path": "$", "code": "access-denied"}, {},
     AuthenticationFailed, None),
    (429, {"error": "rate limit exceeded"}, {"Retry-After": "12"}, RateLimited, None),
    (400, {"error": "content moderation filter: nude", "path": "$", "code": "unexpected"}, {}, ContentRejected, None),
    (400, {"error": "Not enough API tokens to complete this request", "path": "$"}, {}, ProviderError, None),
    (502, {"error": "upstream unavailable"}, {}, ProviderUnavailable, None),
    (400, {"error": "guidance_scale must be between 1 and 20", "path": "$"}, {}, InvalidRequest, "cfg_scale"),
    (400, {"error": "negative_prompt is too long", "path": "$"}, {}, InvalidRequest, "negative_prompt"),
    (400, {"error": "Expected a boolean for type Boolean but found a string", "path": "$.alchemy"}, {},
     InvalidRequest, None),
])
async def test_error_answers_map_to_the_error_tree(status: int, body: dict, headers: dict, kind: type,
                                                   field: str | None, fake: FakeLeonardo, router: respx.MockRouter,
                                                   http: httpx.AsyncClient) -> None:
    router.post(f"{LEONARDO_URL}/generations").respond(status, json=body, headers=headers)
    provider = make_provider(http)
    ctx, rec = make_ctx(provider)
    with pytest.raises(kind) as info:
        await provider.generate(request(cfg_scale=30), ctx)
    err = info.value
    assert type(err) is kind and body["error"] in err.message and not rec.remembered
    if kind is RateLimited:
        assert err.retry_after == 12
    if kind is ProviderError:
        assert not err.retryable
    if kind is InvalidRequest:
        assert err.field == field


async def test_failed_generation_raises_generation_failed(fake: FakeLeonardo, http: httpx.AsyncClient) -> None:
    fake.states = ["PENDING", "FAILED"]
    ctx, _ = make_ctx(make_provider(http))
    with pytest.raises(GenerationFailed, match="FAILED"):
        await make_provider(http).generate(request(), ctx)


async def test_limits_are_checked_before_any_call(fake: FakeLeonardo, http: httpx.AsyncClient) -> None:
    provider = make_provider(http)
    ctx, _ = make_ctx(provider)
    cases = [(request(width=96, height=50), InvalidRequest, "height"), (request(width=1540), InvalidRequest, "width"),
             (request(width=1024, height=1024, n=5), InvalidRequest, "n"),
             (request(init_image=noisy_png(8, 8), mask=noisy_png(8, 8)), Unsupported, "mask")]
    for req, kind, field in cases:
        with pytest.raises(kind) as info:
            await provider.generate(req, ctx)
        assert info.value.field == field
    assert not fake.router.calls
    assert not provider.capabilities.inpaint and provider.capabilities.img2img and provider.capabilities.resumable


async def test_cancel_deletes_the_generation_and_raises(fake: FakeLeonardo, http: httpx.AsyncClient) -> None:
    provider = make_provider(http)
    fake.states = ["PENDING"] * 10_000
    ctx, _ = make_ctx(provider)
    job = asyncio.create_task(provider.generate(request(), ctx))
    while len(fake.calls("GET", f"{API}/generations/{GEN}")) < 2:
        await asyncio.sleep(0.005)
    ctx.cancel_event.set()
    await provider.cancel(ctx)
    with pytest.raises(JobCanceled):
        await asyncio.wait_for(job, 5)
    (delete,) = fake.calls("DELETE", f"{API}/generations/{GEN}")
    assert delete.headers["authorization"] == "Bearer leo-key"


async def test_cancel_failure_is_logged_not_raised(fake: FakeLeonardo, router: respx.MockRouter,
                                                   http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    router.delete(url__regex=rf"{LEONARDO_URL}/generations/[^/]+$").respond(500, json={"error": "boom"})
    ctx, _ = make_ctx(make_provider(http))
    ctx.provider_job_id = GEN
    await make_provider(http).cancel(ctx)
    assert "could not delete Leonardo generation" in caplog.text


async def test_resume_polls_without_submitting(fake: FakeLeonardo, http: httpx.AsyncClient) -> None:
    provider = make_provider(http)
    ctx, rec = make_ctx(provider, resume_id="resumed-gen")
    result = await provider.generate(request(), ctx)
    assert fake.calls("POST", f"{API}/generations") == [] and not rec.remembered
    assert len(fake.calls("GET", f"{API}/generations/resumed-gen")) == 2
    assert result.provider_job_id == "resumed-gen" and result.info["api_credit_cost"] is None
    assert result.files[0].parameters["generation_id"] == "resumed-gen"


async def test_nsfw_images_are_dropped_or_kept_by_setting(fake: FakeLeonardo, http: httpx.AsyncClient) -> None:
    fake.nsfw = [True, False]
    ctx, _ = make_ctx(make_provider(http))
    result = await make_provider(http).generate(request(n=2), ctx)
    assert [f.parameters["image_id"] for f in result.files] == ["img-1"] and result.info["nsfw_dropped"] == 1

    kept = await make_provider(http, settings={"drop_nsfw": False}).generate(request(n=2), ctx)
    assert [f.parameters["nsfw"] for f in kept.files] == [True, False] and "nsfw_dropped" not in kept.info

    fake.nsfw = [True, True]
    with pytest.raises(ContentRejected):
        await make_provider(http).generate(request(n=2), ctx)


async def test_health_models_and_options(fake: FakeLeonardo, http: httpx.AsyncClient) -> None:
    provider = make_provider(http)
    status = await provider.health()
    assert status.ok and status.details == {"username": "fox", "api_paid_tokens": 3500,
                                            "api_subscription_tokens": 0, "api_concurrency_slots": 5}
    models = await provider.list_models()
    assert [m.id for m in models] == ["b24e16ff-06e3-43eb-8d33-4416c2d75876", "de7d3faf-762f-48e0-b3b7-9d0ac3a3fcf3"]
    assert models[0].name == "Leonardo Lightning XL" and models[1].details["description"] == "flagship"
    options = await provider.options()
    assert "EULER_DISCRETE" in options["schedulers"] and "DYNAMIC" in options["preset_styles"]
    assert fake.calls("POST", f"{API}/generations") == []  # nothing paid was asked for


async def test_missing_key_is_a_config_error_and_an_unhealthy_probe(fake: FakeLeonardo,
                                                                    http: httpx.AsyncClient) -> None:
    provider = make_provider(http, key=None)
    ctx, _ = make_ctx(provider)
    with pytest.raises(ConfigError) as info:
        await provider.generate(request(init_image=noisy_png(64, 48)), ctx)
    assert info.value.field == "providers.leo.credentials.api_key" and not fake.router.calls
    status = await provider.health()
    assert not status.ok and "credentials.api_key" in status.message


async def test_refused_upload_names_the_init_image(fake: FakeLeonardo, router: respx.MockRouter,
                                                  http: httpx.AsyncClient) -> None:
    router.post(S3).respond(403, text="<Error><Code>AccessDenied</Code><Message>Policy expired</Message></Error>")
    ctx, _ = make_ctx(make_provider(http))
    with pytest.raises(ProviderError) as info:
        await make_provider(http).generate(request(init_image=noisy_png(64, 48)), ctx)
    assert type(info.value) is ProviderError and info.value.field == "init_image" and info.value.retryable
    assert fake.calls("POST", f"{API}/generations") == []


def test_every_setting_is_described_for_the_settings_form() -> None:
    schema = LeonardoProvider.Settings.model_json_schema()
    assert schema["additionalProperties"] is False
    assert all(p.get("description") for p in schema["properties"].values())


def test_init_strength_is_the_inverse_of_denoising_strength_clamped() -> None:
    from image_studio.providers.leonardo.wire import init_strength

    assert [init_strength(d) for d in (None, 0.0, 0.25, 0.95)] == [None, 0.9, 0.75, 0.1]
