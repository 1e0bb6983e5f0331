"""The Runware adapter against respx routes that answer in Runware's documented REST shapes
(runware.ai/docs: authentication, image inference, task polling, errors, account management,
model search)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx

from image_studio.config import ProviderConfig
from image_studio.errors import (AuthenticationFailed, ConfigError, ContentRejected, GenerationFailed, InvalidRequest,
                                 JobCanceled, ProviderError, ProviderUnavailable, RateLimited)
from image_studio.providers.base import ImageProvider
from image_studio.providers.registry import create_provider
from image_studio.providers.runware import RUNWARE_URL, RunwareProvider
from image_studio.types import GenerationRequest
from tests.providers.contract import ProviderContract, make_ctx
from tests.storage.helpers import noisy_png

CDN = "https://im.runware.ai/image/ws/2/ii"
IMAGE = noisy_png(128, 128, seed=3)


class FakeRunware:
    """Answers POST /v1 task arrays like Runware does. ``polls`` scripts the getResponse answers
    (each a list of item dicts, ``{uuid}`` filled in); when they run out the images are done."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[dict[str, Any]], httpx.Headers]] = []
        self.polls: list[list[dict[str, Any]]] = []
        self.n = 1
        self.nsfw: list[bool] = []

    def tasks(self, task_type: str) -> list[dict[str, Any]]:
        return [t for tasks, _ in self.calls for t in tasks if t["taskType"] == task_type]

    def images(self, uuid: str, *, base64_data: bool = False) -> list[dict[str, Any]]:
        out = []
        for i in range(self.n):
            item = {"taskType": "imageInference", "taskUUID": uuid, "imageUUID": f"img-{i}", "seed": 100 + i,
                    "cost": 0.0013, "status": "success"}
            if base64_data:
                item["imageBase64Data"] = base64.b64encode(IMAGE).decode()
            else:
                item["imageURL"] = f"{CDN}/{uuid}-{i}.png"
            if self.nsfw:
                item["NSFWContent"] = self.nsfw[i]
            out.append(item)
        return out

    def __call__(self, request: httpx.Request) -> httpx.Response:
        tasks = json.loads(request.content)
        self.calls.append((tasks, request.headers))
        task = tasks[0]
        uuid = task.get("taskUUID")
        kind = task["taskType"]
        if kind == "imageInference":
            if task.get("deliveryMethod") == "sync":
                inline = task["outputType"] == "base64Data"
                return httpx.Response(200, json={"data": self.images(uuid, base64_data=inline)})
            return httpx.Response(200, json={"data": [{"taskType": "imageInference", "taskUUID": uuid}]})
        if kind == "getResponse":
            if self.polls:
                return httpx.Response(200, json={"data": [dict(i, taskUUID=uuid) for i in self.polls.pop(0)]})
            return httpx.Response(200, json={"data": self.images(uuid)})
        if kind == "accountManagement":
            return httpx.Response(200, json={"data": [{"taskType": kind, "taskUUID": uuid, "operation": "getDetails",
                                                       "organizationName": "Acme", "balance": 12.5}]})
        if kind == "modelSearch":
            results = [{"air": "civitai:4201@130072", "name": "Realistic Vision", "version": "V6.0",
                        "category": "checkpoint", "architecture": "sd1x", "tags": ["photo"]},
                       {"air": "runware:101@1", "name": "FLUX.1 [dev]", "category": "checkpoint"}]
            return httpx.Response(200, json={"data": [{"taskType": kind, "taskUUID": uuid, "results": results,
                                                       "totalResults": 2}]})
        return httpx.Response(400, json={"errors": [{"code": "unsupportedTaskType", "message": kind}]})


@pytest.fixture
def fake(router: respx.MockRouter) -> FakeRunware:
    fake = FakeRunware()
    router.post(RUNWARE_URL).mock(side_effect=fake)
    router.get(url__startswith=CDN).respond(200, content=IMAGE, headers={"content-type": "image/png"})
    return fake


def make_provider(http: httpx.AsyncClient, *, settings: dict | None = None, key: str | None = "rw-key",
                  url: str | None = None) -> RunwareProvider:
    config = ProviderConfig(type="runware", credentials={"api_key": key} if key else {},
                            settings={"poll_interval": 0.01, **(settings or {})},
                            backends=[{"url": url}] if url else [])
    provider = create_provider("rw", config, http)
    assert isinstance(provider, RunwareProvider)
    return provider


def request(**kw: Any) -> GenerationRequest:
    return GenerationRequest(**{"prompt": "a red fox", "width": 128, "height": 128, **kw})


class TestRunwareContract(ProviderContract):
    def request(self) -> GenerationRequest:
        return request(steps=2, seed=42)

    @pytest.fixture
    def provider(self, fake: FakeRunware, http: httpx.AsyncClient) -> ImageProvider:
        return make_provider(http)

    @pytest.fixture
    def down_provider(self, router: respx.MockRouter, http: httpx.AsyncClient) -> ImageProvider:
        router.post("https://down.example/v1").mock(side_effect=httpx.ConnectError("refused"))
        return make_provider(http, url="https://down.example/v1")


async def test_txt2img_sends_one_task_with_bearer_then_polls_by_task_uuid(fake: FakeRunware,
                                                                          http: httpx.AsyncClient) -> None:
    provider = make_provider(http)
    fake.n = 2
    fake.polls = [[{"taskType": "imageInference", "status": "processing"}]]
    ctx, rec = make_ctx(provider)
    result = await provider.generate(request(negative_prompt="blurry", n=2, steps=20, cfg_scale=3.5,
                                             scheduler="Euler", seed=7, model="civitai:4201@130072"), ctx)

    (uuid,) = rec.remembered
    (first, headers), *polls = fake.calls
    assert headers["authorization"] == "Bearer rw-key"
    assert first == [{
        "taskType": "imageInference", "taskUUID": uuid, "deliveryMethod": "async", "positivePrompt": "a red fox",
        "negativePrompt": "blurry", "width": 128, "height": 128, "model": "civitai:4201@130072",
        "numberResults": 2, "steps": 20, "CFGScale": 3.5, "scheduler": "Euler", "seed": 7, "outputType": "URL",
        "outputFormat": "PNG", "includeCost": True,
    }]
    assert [p for p, _ in polls] == [[{"taskType": "getResponse", "taskUUID": uuid}]] * 2
    assert result.provider_job_id == uuid and result.model == "civitai:4201@130072"
    assert result.info == {"task_uuid": uuid, "cost": 0.0026}
    assert [f.data for f in result.files] == [IMAGE, IMAGE]
    assert [(f.mime_type, f.width, f.height, f.seed) for f in result.files] == [("image/png", 128, 128, 100),
                                                                              ("image/png", 128, 128, 101)]
    assert result.files[0].parameters == {"imageUUID": "img-0", "taskUUID": uuid, "seed": 100, "cost": 0.0013}


async def test_task_uuid_is_remembered_before_the_submit(fake: FakeRunware, router: respx.MockRouter,
                                                         http: httpx.AsyncClient) -> None:
    provider = make_provider(http)
    ctx, rec = make_ctx(provider)
    seen_at_submit: list[list[str]] = []
    inner = fake.__call__

    def spy(req: httpx.Request) -> httpx.Response:
        seen_at_submit.append(list(rec.remembered))
        return inner(req)

    router.post(RUNWARE_URL).mock(side_effect=spy)
    await provider.generate(request(), ctx)
    assert seen_at_submit[0] == rec.remembered and len(rec.remembered) == 1


async def test_img2img_and_inpaint_send_data_uris_and_strength(fake: FakeRunware, http: httpx.AsyncClient) -> None:
    provider = make_provider(http, settings={"model": "runware:100@1"})
    init, mask = noisy_png(128, 128, seed=5), noisy_png(128, 128, seed=6, mode="L")
    ctx, _ = make_ctx(provider)
    await provider.generate(request(init_image=init, denoising_strength=0.35), ctx)
    await provider.generate(request(init_image=init, mask=mask), ctx)

    img2img, inpaint = fake.tasks("imageInference")
    assert img2img["model"] == "runware:100@1" and img2img["strength"] == 0.35 and "maskImage" not in img2img
    prefix = "data:image/png;base64,"
    assert img2img["seedImage"].startswith(prefix) and base64.b64decode(img2img["seedImage"][len(prefix):]) == init
    assert base64.b64decode(inpaint["maskImage"][len(prefix):]) == mask and "strength" not in inpaint


async def test_sync_delivery_with_base64_output_makes_one_call(fake: FakeRunware, http: httpx.AsyncClient) -> None:
    provider = make_provider(http, settings={"delivery": "sync", "output_type": "base64Data", "output_format": "PNG"})
    assert not provider.capabilities.resumable and not provider.capabilities.async_only
    ctx, _ = make_ctx(provider)
    result = await provider.generate(request(seed=-1), ctx)

    ((tasks, _),) = fake.calls
    assert tasks[0]["deliveryMethod"] == "sync" and tasks[0]["outputType"] == "base64Data" and "seed" not in tasks[0]
    assert [f.data for f in result.files] == [IMAGE] and result.files[0].seed == 100


async def test_answers_of_other_tasks_are_ignored(fake: FakeRunware, router: respx.MockRouter,
                                                  http: httpx.AsyncClient) -> None:
    provider = make_provider(http, settings={"delivery": "sync"})
    ctx, _ = make_ctx(provider)

    def answer(req: httpx.Request) -> httpx.Response:
        uuid = json.loads(req.content)[0]["taskUUID"]
        other = dict(fake.images("someone-else")[0], imageURL=f"{CDN}/other.png")
        mine = fake.images(uuid)[0]
        return httpx.Response(200, json={"data": [other, mine],
                                         "errors": [{"code": "invalidWidth", "taskUUID": "someone-else"}]})

    router.post(RUNWARE_URL).mock(side_effect=answer)
    result = await provider.generate(request(), ctx)
    assert [f.parameters["imageUUID"] for f in result.files] == ["img-0"]
    assert [c.request.url.path for c in router.calls if c.request.method == "GET"] == [
        f"/image/ws/2/ii/{result.provider_job_id}-0.png"]


@pytest.mark.parametrize(("status", "error", "headers", "kind", "field"), [
    (401, {"code": "invalidApiKey", "message": "Invalid API key", "parameter": "apiKey",
           "taskType": "authentication"}, {}, AuthenticationFailed, None),
    (429, {"code": "rateLimitExceeded", "message": "slow down"}, {"Retry-After": "7"}, RateLimited, None),
    (400, {"code": "nsfwContentDetected", "message": "prompt flagged"}, {}, ContentRejected, None),
    (402, {"code": "insufficientCredits", "message": "top up"}, {}, ProviderError, None),
    (503, {"code": "serviceUnavailable", "message": "busy"}, {}, ProviderUnavailable, None),
    (400, {"code": "invalidWidth", "message": "multiple of 64", "parameter": "width"}, {}, InvalidRequest, "width"),
    (400, {"code": "invalidPositivePrompt", "message": "too short", "parameter": "positivePrompt"}, {},
     InvalidRequest, "prompt"),
    (400, {"code": "invalidLora", "message": "unknown AIR", "parameter": "lora"}, {}, InvalidRequest, "extra.lora"),
])
async def test_error_answers_map_to_the_error_tree(status: int, error: dict, headers: dict, kind: type,
                                                   field: str | None, router: respx.MockRouter,
                                                   http: httpx.AsyncClient) -> None:
    provider = make_provider(http)
    router.post(RUNWARE_URL).respond(status, json={"errors": [error]}, headers=headers)
    ctx, _ = make_ctx(provider)
    with pytest.raises(kind) as info:
        await provider.generate(request(extra={"lora": [{"model": "civitai:1@1"}]}), ctx)
    err = info.value
    assert type(err) is kind and error["message"] in err.message
    if kind is RateLimited:
        assert err.retry_after == 7 and err.retryable
    if kind is ProviderError:
        assert err.status == 402 and not err.retryable
    if kind is InvalidRequest:
        assert err.field == field


async def test_a_failed_generation_in_a_poll_raises_generation_failed(fake: FakeRunware,
                                                                      http: httpx.AsyncClient) -> None:
    provider = make_provider(http)
    fake.polls = [[{"taskType": "imageInference", "status": "error",
                    "error": {"code": "inferenceError", "message": "GPU fell over"}}]]
    ctx, _ = make_ctx(provider)
    with pytest.raises(GenerationFailed, match="GPU fell over"):
        await provider.generate(request(), ctx)


async def test_size_off_the_grid_is_refused_before_any_call(fake: FakeRunware, http: httpx.AsyncClient) -> None:
    provider = make_provider(http)
    ctx, _ = make_ctx(provider)
    with pytest.raises(InvalidRequest) as info:
        await provider.generate(request(width=100), ctx)
    assert info.value.field == "width" and not fake.calls
    with pytest.raises(InvalidRequest) as info:
        await provider.generate(request(height=4096), ctx)
    assert info.value.field == "height"


async def test_missing_key_is_a_config_error_naming_the_field(fake: FakeRunware, http: httpx.AsyncClient) -> None:
    provider = make_provider(http, key=None)
    ctx, rec = make_ctx(provider)
    with pytest.raises(ConfigError) as info:
        await provider.generate(request(), ctx)
    assert info.value.field == "providers.rw.credentials.api_key" and not rec.remembered and not fake.calls
    status = await provider.health()
    assert not status.ok and "credentials.api_key" in status.message


async def test_progress_percent_is_reported_while_polling(fake: FakeRunware, http: httpx.AsyncClient) -> None:
    provider = make_provider(http)
    fake.polls = [[{"taskType": "imageInference", "status": "processing"}],
                  [{"taskType": "imageInference", "status": "processing", "imageUUID": "img-0", "progress": 25}],
                  [{"taskType": "imageInference", "status": "processing", "imageUUID": "img-0", "progress": 75}]]
    ctx, rec = make_ctx(provider)
    await provider.generate(request(), ctx)

    assert [(p["value"], p["max"]) for p in rec.progress] == [(1, 0), (25, 100), (75, 100), (1, 1)]
    assert len(fake.tasks("getResponse")) == 4


async def test_cancel_stops_polling_and_raises(fake: FakeRunware, http: httpx.AsyncClient) -> None:
    provider = make_provider(http)
    fake.polls = [[{"taskType": "imageInference", "status": "processing"}]] * 10_000
    ctx, rec = make_ctx(provider)
    job = asyncio.create_task(provider.generate(request(), ctx))
    while len(fake.tasks("getResponse")) < 2:
        await asyncio.sleep(0.005)
    ctx.cancel_event.set()
    await provider.cancel(ctx)
    with pytest.raises(JobCanceled):
        await asyncio.wait_for(job, 5)
    polls = len(fake.tasks("getResponse"))
    await asyncio.sleep(0.05)
    assert len(fake.tasks("getResponse")) == polls and len(fake.tasks("imageInference")) == 1


async def test_resume_polls_the_remembered_task_without_submitting(fake: FakeRunware,
                                                                   http: httpx.AsyncClient) -> None:
    provider = make_provider(http)
    assert provider.capabilities.resumable
    fake.polls = [[{"taskType": "imageInference", "status": "processing"}]]
    ctx, rec = make_ctx(provider, resume_id="3b1f3c1e-0d0e-4d5b-9c71-6e0f7d2c2a11")
    result = await provider.generate(request(), ctx)

    assert fake.tasks("imageInference") == [] and not rec.remembered
    assert {t["taskUUID"] for t in fake.tasks("getResponse")} == {"3b1f3c1e-0d0e-4d5b-9c71-6e0f7d2c2a11"}
    assert result.provider_job_id == "3b1f3c1e-0d0e-4d5b-9c71-6e0f7d2c2a11" and len(result.files) == 1


async def test_nsfw_flagged_images_are_dropped_and_all_flagged_is_rejected(fake: FakeRunware,
                                                                          http: httpx.AsyncClient) -> None:
    provider = make_provider(http, settings={"check_nsfw": True})
    fake.n, fake.nsfw = 2, [True, False]
    ctx, _ = make_ctx(provider)
    result = await provider.generate(request(n=2), ctx)
    assert fake.tasks("imageInference")[0]["checkNSFW"] is True
    assert [f.parameters["imageUUID"] for f in result.files] == ["img-1"] and result.info["nsfw_dropped"] == 1

    fake.nsfw = [True, True]
    with pytest.raises(ContentRejected):
        await provider.generate(request(n=2), ctx)


async def test_extra_fields_pass_through_but_not_the_task_identity(fake: FakeRunware,
                                                                   http: httpx.AsyncClient) -> None:
    provider = make_provider(http)
    ctx, _ = make_ctx(provider)
    await provider.generate(request(extra={"outputQuality": 90, "lora": [{"model": "civitai:1@1", "weight": 0.8}]}),
                            ctx)
    (task,) = fake.tasks("imageInference")
    assert task["outputQuality"] == 90 and task["lora"] == [{"model": "civitai:1@1", "weight": 0.8}]
    with pytest.raises(InvalidRequest) as info:
        await provider.generate(request(extra={"taskUUID": "mine"}), ctx)
    assert info.value.field == "extra"


async def test_health_uses_account_details_and_models_come_from_search(fake: FakeRunware,
                                                                       http: httpx.AsyncClient) -> None:
    provider = make_provider(http)
    status = await provider.health()
    assert status.ok and status.details == {"balance": 12.5, "organization": "Acme"}
    (account,) = fake.tasks("accountManagement")
    assert account["operation"] == "getDetails"

    models = await provider.list_models()
    assert [m.id for m in models] == ["runware:101@1", "runware:100@1", "civitai:4201@130072"]
    assert models[2].name == "Realistic Vision" and models[2].details["architecture"] == "sd1x"
    (search,) = fake.tasks("modelSearch")
    assert (search["search"], search["category"], search["visibility"], search["limit"]) == (
        "runware", "checkpoint", "all", 50)
    assert fake.tasks("imageInference") == []  # nothing paid was asked for


async def test_health_reports_a_refused_key(router: respx.MockRouter, http: httpx.AsyncClient) -> None:
    router.post(RUNWARE_URL).respond(401, json={"errors": [{"code": "invalidApiKey", "message": "Invalid API key"}]})
    status = await make_provider(http).health()
    assert not status.ok and "Invalid API key" in status.message and status.details["error"] == "AuthenticationFailed"


async def test_sync_submit_gives_way_to_cancel(router: respx.MockRouter, http: httpx.AsyncClient) -> None:
    never = asyncio.Event()
    started = asyncio.Event()

    async def hang(req: httpx.Request) -> httpx.Response:
        started.set()
        await never.wait()
        return httpx.Response(500)

    router.post(RUNWARE_URL).mock(side_effect=hang)
    provider = make_provider(http, settings={"delivery": "sync"})
    ctx, _ = make_ctx(provider)
    job = asyncio.create_task(provider.generate(request(), ctx))
    await asyncio.wait_for(started.wait(), 5)
    ctx.cancel_event.set()
    with pytest.raises(JobCanceled):
        await asyncio.wait_for(job, 5)


def test_every_setting_is_described_for_the_settings_form() -> None:
    schema = RunwareProvider.Settings.model_json_schema()
    assert schema["additionalProperties"] is False
    assert all(p.get("description") for p in schema["properties"].values())
