"""The Replicate provider against respx routes that answer as Replicate's HTTP API documents."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
import respx

from image_studio.errors import (AuthenticationFailed, ConfigError, ContentRejected, GenerationFailed, InvalidRequest,
                                 JobCanceled, ProviderError, ProviderUnavailable, RateLimited, Unsupported)
from image_studio.providers.base import ImageProvider
from image_studio.providers.replicate.wire import ASPECT_RATIOS, nearest_ratio
from image_studio.types import GenerationRequest, MediaKind
from tests.providers.contract import ProviderContract, make_ctx
from tests.providers.queue_helpers import build, sent_json
from tests.storage.helpers import noisy_png

API = "https://api.replicate.com/v1"
CDN = "https://replicate.delivery/xezq/abc"
SCHNELL, DEV, FILL = "black-forest-labs/flux-schnell", "black-forest-labs/flux-dev", "black-forest-labs/flux-fill-dev"
VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
RATIO = {"allOf": [{"$ref": "#/components/schemas/aspect_ratio"}], "default": "1:1"}


def openapi(props: dict[str, Any]) -> dict[str, Any]:
    """An ``openapi_schema`` as Cog writes it: Input properties, enums behind ``allOf`` refs."""
    return {"components": {"schemas": {"Input": {"type": "object", "properties": props},
                                       "aspect_ratio": {"type": "string", "enum": ASPECT_RATIOS}}}}


def model_doc(ref: str, props: dict[str, Any]) -> dict[str, Any]:
    owner, name = ref.split("/")
    return {"owner": owner, "name": name, "latest_version": {"id": VERSION, "openapi_schema": openapi(props)}}


NUM = {"type": "integer"}
SCHNELL_PROPS = {"prompt": {"type": "string"}, "aspect_ratio": RATIO, "num_outputs": NUM, "num_inference_steps": NUM,
                 "seed": NUM, "output_format": {"type": "string"}}
DEV_PROPS = {**SCHNELL_PROPS, "image": {"type": "string"}, "prompt_strength": {"type": "number"},
             "guidance": {"type": "number"}}
FILL_PROPS = {**DEV_PROPS, "mask": {"type": "string"}}


def prediction(pid: str, status: str, output: Any = None, **kw: Any) -> dict[str, Any]:
    return {"id": pid, "model": SCHNELL, "version": "dp-4d0bcc010b3049749a251855f12800be", "status": status,
            "input": {}, "output": output, "logs": "", "error": None, "created_at": "2026-01-01T00:00:00Z",
            "urls": {"get": f"{API}/predictions/{pid}", "cancel": f"{API}/predictions/{pid}/cancel"}, **kw}


def make(http: httpx.AsyncClient, *, settings: dict | None = None, key: str | None = "r8_test",
         url: str | None = None) -> ImageProvider:
    return build("replicate", "rep", http, key=key, settings=settings, url=url)


def mount_models(router: respx.MockRouter) -> None:
    for ref, props in ((SCHNELL, SCHNELL_PROPS), (DEV, DEV_PROPS), (FILL, FILL_PROPS)):
        router.get(f"{API}/models/{ref}").respond(200, json=model_doc(ref, props))


def mount_output(router: respx.MockRouter, name: str = "out-0.png", data: bytes | None = None,
                 ctype: str = "image/png") -> respx.Route:
    return router.get(f"{CDN}/{name}").respond(200, content=data or noisy_png(64, 48), headers={"content-type": ctype})


class TestReplicateContract(ProviderContract):
    @pytest.fixture
    def provider(self, router: respx.MockRouter, http: httpx.AsyncClient) -> ImageProvider:
        mount_models(router)
        router.post(f"{API}/models/{SCHNELL}/predictions").respond(201, json=prediction("p1", "starting"))
        router.get(f"{API}/predictions/p1").respond(200, json=prediction("p1", "succeeded", [f"{CDN}/out-0.png"]))
        mount_output(router)
        router.get(f"{API}/account").respond(200, json={"type": "user", "username": "ada", "name": "Ada"})
        return make(http)

    @pytest.fixture
    def down_provider(self, router: respx.MockRouter, http: httpx.AsyncClient) -> ImageProvider:
        router.route(host="down.replicate.test").mock(side_effect=httpx.ConnectError("connection refused"))
        return make(http, url="https://down.replicate.test/v1")


async def test_txt2img_sends_the_documented_request_and_maps_through_the_schema(router, http) -> None:
    mount_models(router)
    create = router.post(f"{API}/models/{SCHNELL}/predictions").respond(201, json=prediction(
        "p1", "succeeded", [f"{CDN}/out-0.png", f"{CDN}/out-1.png"], input={"seed": 42}, metrics={"predict_time": 0.8}))
    cdn = [mount_output(router, "out-0.png"), mount_output(router, "out-1.png")]
    provider = make(http)
    request = GenerationRequest(prompt="a fox", negative_prompt="blurry", width=1024, height=576, n=2, steps=4,
                                seed=42, cfg_scale=3.5)
    ctx, rec = make_ctx(provider)
    result = await provider.generate(request, ctx)

    sent = create.calls.last.request
    assert sent.method == "POST" and sent.url.path == "/v1/models/black-forest-labs/flux-schnell/predictions"
    assert sent.headers["authorization"] == "Bearer r8_test" and sent.headers["prefer"] == "wait=10"
    assert "cancel-after" not in sent.headers
    assert sent_json(create) == {"input": {"prompt": "a fox", "num_outputs": 2, "seed": 42, "num_inference_steps": 4,
                                      "aspect_ratio": "16:9"}}
    assert all("authorization" not in r.calls.last.request.headers for r in cdn), "the token stays with the API"
    assert rec.remembered == ["p1"] and result.provider_job_id == "p1"
    assert result.info["dropped_inputs"] == ["negative_prompt", "cfg_scale"]
    assert result.info["metrics"] == {"predict_time": 0.8} and result.model == SCHNELL
    assert [(f.width, f.height, f.mime_type, f.seed) for f in result.files] == [(64, 48, "image/png", 42),
                                                                                 (64, 48, "image/png", None)]
    assert result.files[1].parameters["seed"] == 42 and result.files[1].parameters["output_index"] == 1


async def test_img2img_and_inpaint_send_data_urls_to_the_models_own_input_names(router, http) -> None:
    mount_models(router)
    dev = router.post(f"{API}/models/{DEV}/predictions").respond(201, json=prediction("p2", "succeeded",
                                                                                       f"{CDN}/out-0.png"))
    fill = router.post(f"{API}/models/{FILL}/predictions").respond(201, json=prediction("p3", "succeeded",
                                                                                         [f"{CDN}/out-0.png"]))
    mount_output(router)
    provider = make(http)
    init, mask = noisy_png(32, 32, seed=2), noisy_png(32, 32, seed=3, mode="L")
    req = GenerationRequest(prompt="a boat", width=512, height=768, init_image=init, denoising_strength=0.6,
                            cfg_scale=3.0)
    await provider.generate(req, make_ctx(provider)[0])
    sent = sent_json(dev)["input"]
    assert sent["image"] == "data:image/png;base64," + base64.b64encode(init).decode()
    assert (sent["prompt_strength"], sent["guidance"], sent["aspect_ratio"]) == (0.6, 3.0, "2:3")
    await provider.generate(req.model_copy(update={"mask": mask}), make_ctx(provider)[0])
    assert sent_json(fill)["input"]["mask"] == "data:image/png;base64," + base64.b64encode(mask).decode()


async def test_a_version_pin_posts_to_predictions_with_the_version(router, http) -> None:
    props = {"prompt": {"type": "string"}, "negative_prompt": {"type": "string"}, "width": NUM, "height": NUM,
             "scheduler": {"type": "string"}, "num_outputs": NUM, "guidance_scale": {"type": "number"}}
    schema = router.get(f"{API}/models/acme/sdxl/versions/{VERSION}").respond(
        200, json={"id": VERSION, "openapi_schema": openapi(props)})
    create = router.post(f"{API}/predictions").respond(201, json=prediction("p4", "succeeded", [f"{CDN}/out-0.png"]))
    mount_output(router)
    provider = make(http, settings={"model": f"acme/sdxl:{VERSION}", "sync_wait": 0})
    req = GenerationRequest(prompt="a cat", negative_prompt="dog", width=768, height=512, scheduler="K_EULER",
                            cfg_scale=7)
    await provider.generate(req, make_ctx(provider)[0])
    await provider.generate(req, make_ctx(provider)[0])
    assert schema.call_count == 1, "the schema is read once per model"
    assert "prefer" not in create.calls.last.request.headers
    assert sent_json(create) == {"version": VERSION, "input": {
        "prompt": "a cat", "negative_prompt": "dog", "num_outputs": 1, "guidance_scale": 7, "scheduler": "K_EULER",
        "width": 768, "height": 512}}


async def test_without_a_schema_the_common_names_go_and_extra_overrides(router, http) -> None:
    create = router.post(f"{API}/models/{SCHNELL}/predictions").respond(201, json=prediction("p5", "succeeded",
                                                                                              [f"{CDN}/out-0.png"]))
    mount_output(router)
    provider = make(http, settings={"use_schema": False, "size_input": "width_height",
                                    "default_input": {"output_format": "png", "go_fast": True}})
    req = GenerationRequest(prompt="a hat", width=640, height=480, steps=3, cfg_scale=2.5,
                            extra={"go_fast": False, "megapixels": "0.25"})
    await provider.generate(req, make_ctx(provider)[0])
    assert sent_json(create)["input"] == {"prompt": "a hat", "num_outputs": 1, "num_inference_steps": 3,
                                     "guidance_scale": 2.5, "width": 640, "height": 480, "output_format": "png",
                                     "go_fast": False, "megapixels": "0.25"}


async def test_a_model_without_an_image_input_cannot_do_img2img(router, http) -> None:
    mount_models(router)
    provider = make(http)
    req = GenerationRequest(prompt="x", model=SCHNELL, init_image=noisy_png(16, 16))
    with pytest.raises(Unsupported) as info:
        await provider.generate(req, make_ctx(provider)[0])
    assert info.value.field == "init_image"
    with pytest.raises(InvalidRequest) as bad:
        await provider.generate(GenerationRequest(prompt="x", model="not a model"), make_ctx(provider)[0])
    assert bad.value.field == "model"


async def test_polling_reports_progress_from_logs_and_remembers_first(router, http) -> None:
    mount_models(router)
    router.post(f"{API}/models/{SCHNELL}/predictions").respond(201, json=prediction("p6", "starting"))
    provider = make(http)
    ctx, rec = make_ctx(provider)
    seen_remembered: list[list[str]] = []
    answers = iter([prediction("p6", "starting"),
                    prediction("p6", "processing", logs="Using seed: 77\n 50%|#####     | 2/4 [00:01<00:01]"),
                    prediction("p6", "succeeded", [f"{CDN}/out-0.png"], logs="Using seed: 77\n100%|##| 4/4")])

    def status(request: httpx.Request) -> httpx.Response:
        seen_remembered.append(list(rec.remembered))
        return httpx.Response(200, json=next(answers))

    get = router.get(f"{API}/predictions/p6").mock(side_effect=status)
    mount_output(router)
    result = await provider.generate(GenerationRequest(prompt="a fox", width=64, height=64), ctx)
    assert get.call_count == 3 and seen_remembered[0] == ["p6"], "the id is remembered before polling"
    assert get.calls.last.request.headers["authorization"] == "Bearer r8_test"
    assert [(p["value"], p["max"], p["message"]) for p in rec.progress] == [(1, 0, "starting"), (2, 4, "processing")]
    assert result.files[0].seed == 77


async def test_a_synchronous_answer_with_its_files_needs_no_poll_and_data_urls_decode(router, http) -> None:
    mount_models(router)
    png = noisy_png(20, 10)
    out = "data:image/png;base64," + base64.b64encode(png).decode()
    router.post(f"{API}/models/{SCHNELL}/predictions").respond(201, json=prediction("p7", "processing", [out]))
    get = router.get(f"{API}/predictions/p7").respond(200, json=prediction("p7", "processing"))
    provider = make(http)
    result = await provider.generate(GenerationRequest(prompt="a fox"), make_ctx(provider)[0])
    assert get.call_count == 0 and result.files[0].data == png and (result.files[0].width, result.files[0].height) == (
        20, 10)


async def test_cancel_while_polling_cancels_the_prediction(router, http) -> None:
    mount_models(router)
    router.post(f"{API}/models/{SCHNELL}/predictions").respond(201, json=prediction("p8", "starting"))
    cancel = router.post(f"{API}/predictions/p8/cancel").respond(200, json=prediction("p8", "canceled"))
    provider = make(http)
    ctx, _ = make_ctx(provider)

    def status(request: httpx.Request) -> httpx.Response:
        ctx.cancel_event.set()
        return httpx.Response(200, json=prediction("p8", "processing"))

    router.get(f"{API}/predictions/p8").mock(side_effect=status)
    with pytest.raises(JobCanceled):
        await provider.generate(GenerationRequest(prompt="a fox"), ctx)
    assert cancel.called and cancel.calls.last.request.headers["authorization"] == "Bearer r8_test"
    cancel.reset()
    await provider.cancel(ctx)  # the orchestrator's own cancel: same endpoint, idempotent
    assert cancel.call_count == 1


async def test_resume_polls_the_remembered_prediction_without_submitting(router, http) -> None:
    mount_models(router)
    create = router.post(f"{API}/models/{SCHNELL}/predictions").respond(201, json=prediction("new", "starting"))
    router.get(f"{API}/predictions/p9").respond(200, json=prediction("p9", "succeeded", [f"{CDN}/out-0.png"]))
    mount_output(router)
    provider = make(http)
    ctx, rec = make_ctx(provider, resume_id="p9")
    result = await provider.generate(GenerationRequest(prompt="a fox"), ctx)
    assert not create.called and rec.remembered == [] and result.provider_job_id == "p9" and result.files


@pytest.mark.parametrize(("status", "headers", "payload", "error"), [
    (401, {}, {"title": "Unauthenticated", "detail": "You did not pass a valid authentication token", "status": 401},
     AuthenticationFailed),
    (429, {"Retry-After": "7"}, {"title": "Too Many Requests", "detail": "throttled", "status": 429}, RateLimited),
    (500, {}, {"title": "Internal Server Error", "status": 500}, ProviderUnavailable),
])
async def test_create_errors_map_to_the_error_tree(router, http, status, headers, payload, error) -> None:
    mount_models(router)
    router.post(f"{API}/models/{SCHNELL}/predictions").respond(status, json=payload, headers=headers)
    provider = make(http)
    with pytest.raises(error) as info:
        await provider.generate(GenerationRequest(prompt="a fox"), make_ctx(provider)[0])
    assert info.value.status == status and info.value.provider == "rep"
    if error is RateLimited:
        assert info.value.retry_after == 7


async def test_a_422_names_our_field_or_the_extra_one(router, http) -> None:
    mount_models(router)
    create = router.post(f"{API}/models/{SCHNELL}/predictions")
    provider = make(http)
    for field, ours, extra in (("input.num_outputs", "n", {}), ("input.go_fast", "extra.go_fast", {"go_fast": 3})):
        create.respond(422, json={"title": "Input validation failed", "status": 422, "detail": f"- {field}: bad",
                                  "invalid_fields": [{"type": "invalid", "field": field, "description": "bad value"}]})
        with pytest.raises(InvalidRequest) as info:
            await provider.generate(GenerationRequest(prompt="a fox", n=4, extra=extra), make_ctx(provider)[0])
        assert info.value.field == ours and "bad value" in info.value.message


async def test_an_unknown_configured_model_is_a_provider_error_naming_the_setting(router, http) -> None:
    router.get(f"{API}/models/acme/gone").respond(404, json={"title": "Not found", "status": 404})
    router.post(f"{API}/models/acme/gone/predictions").respond(404, json={"title": "Not found", "status": 404})
    provider = make(http, settings={"model": "acme/gone"})
    with pytest.raises(ProviderError) as info:
        await provider.generate(GenerationRequest(prompt="a fox"), make_ctx(provider)[0])
    assert not info.value.retryable and info.value.field == "providers.rep.settings.model"


@pytest.mark.parametrize(("final", "error"), [
    (prediction("pf", "failed", error="NSFW content detected. Try running it again, or try a different prompt."),
     ContentRejected),
    (prediction("pf", "failed", error="CUDA out of memory"), GenerationFailed),
    (prediction("pf", "canceled"), GenerationFailed),
])
async def test_failed_predictions(router, http, final, error) -> None:
    mount_models(router)
    router.post(f"{API}/models/{SCHNELL}/predictions").respond(201, json=prediction("pf", "starting"))
    router.get(f"{API}/predictions/pf").respond(200, json=final)
    provider = make(http)
    with pytest.raises(error) as info:
        await provider.generate(GenerationRequest(prompt="a fox"), make_ctx(provider)[0])
    assert type(info.value) is error and "pf" in info.value.message


async def test_status_polls_ride_out_transient_failures_but_not_endless_ones(router, http) -> None:
    mount_models(router)
    router.post(f"{API}/models/{SCHNELL}/predictions").respond(201, json=prediction("pt", "starting"))
    cancel = router.post(f"{API}/predictions/pt/cancel").respond(200, json=prediction("pt", "canceled"))
    get = router.get(f"{API}/predictions/pt")
    get.side_effect = [httpx.Response(502), httpx.ConnectError("reset"),
                       httpx.Response(200, json=prediction("pt", "succeeded", [f"{CDN}/out-0.png"]))]
    mount_output(router)
    provider = make(http, settings={"poll_error_limit": 3})
    assert (await provider.generate(GenerationRequest(prompt="a fox"), make_ctx(provider)[0])).files
    assert not cancel.called
    get.side_effect = None
    get.respond(503)
    with pytest.raises(ProviderUnavailable):
        await provider.generate(GenerationRequest(prompt="a fox"), make_ctx(provider)[0])
    assert cancel.called, "a prediction we stop waiting for is canceled"


async def test_video_model_returns_video_files_and_cancel_after_is_sent(router, http) -> None:
    props = {"prompt": {"type": "string"}, "aspect_ratio": RATIO, "seed": NUM, "duration": NUM}
    router.get(f"{API}/models/acme/video").respond(200, json=model_doc("acme/video", props))
    create = router.post(f"{API}/models/acme/video/predictions").respond(
        201, json=prediction("pv", "succeeded", f"{CDN}/out.mp4"))
    mount_output(router, "out.mp4", b"\x00\x00\x00\x18ftypmp42", "video/mp4")
    provider = make(http, settings={"video_model": "acme/video", "cancel_after": True})
    assert provider.capabilities.video and MediaKind.video in provider.capabilities.media
    req = GenerationRequest(prompt="waves", media="video", width=1280, height=720, extra={"duration": 5})
    result = await provider.generate(req, make_ctx(provider, timeout=120)[0])
    assert sent_json(create)["input"] == {"prompt": "waves", "aspect_ratio": "16:9", "duration": 5}
    assert create.calls.last.request.headers["cancel-after"] in ("119s", "120s")
    assert result.files[0].media is MediaKind.video and result.files[0].mime_type == "video/mp4"


async def test_missing_key_is_a_config_error_naming_the_credential(router, http) -> None:
    provider = make(http, key=None)
    with pytest.raises(ConfigError) as info:
        await provider.generate(GenerationRequest(prompt="a fox"), make_ctx(provider)[0])
    assert info.value.field == "providers.rep.credentials.api_key"
    status = await provider.health()
    assert not status.ok and "api_key" in status.message


async def test_health_reads_the_account_and_metadata_lists_configured_models(router, http) -> None:
    account = router.get(f"{API}/account").respond(200, json={"type": "organization", "username": "acme"})
    provider = make(http, settings={"models": ["acme/sdxl", SCHNELL], "inpaint_model": None})
    status = await provider.health()
    assert status.ok and status.details == {"username": "acme", "account_type": "organization"}
    assert account.calls.last.request.headers["authorization"] == "Bearer r8_test"
    router.get(f"{API}/account").respond(401, json={"detail": "Invalid token"})
    assert not (await provider.health()).ok
    models = await provider.list_models()
    assert [(m.id, m.details["role"]) for m in models] == [(SCHNELL, "txt2img"), (DEV, "img2img"),
                                                           ("acme/sdxl", "listed")]
    caps = provider.capabilities
    assert caps.img2img and not caps.inpaint and caps.resumable and caps.max_n == 4 and not caps.negative_prompt
    assert (await provider.options())["aspect_ratios"] == ASPECT_RATIOS


def test_nearest_ratio() -> None:
    assert nearest_ratio(1024, 1024, ASPECT_RATIOS) == "1:1"
    assert nearest_ratio(1920, 1080, ASPECT_RATIOS) == "16:9"
    assert nearest_ratio(832, 1216, ASPECT_RATIOS) == "2:3"
    assert nearest_ratio(1000, 600, []) == "5:3"
