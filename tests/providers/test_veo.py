"""The Veo adapter (``predictLongRunning`` + operation polling + download) against respx routes."""

from __future__ import annotations

import httpx
import pytest
import respx

from image_studio.errors import ContentRejected, GenerationFailed, JobCanceled, RateLimited, Unsupported
from image_studio.providers.base import ImageProvider
from image_studio.types import GenerationRequest, MediaKind
from tests.providers.contract import ProviderContract, make_ctx
from tests.providers.google_fakes import (BASE, KEY, b64, error_body, make, models_route,
                                          sent_json)
from tests.storage.helpers import noisy_png

__all__ = ["http", "router"]  # fixtures from google_fakes

MODEL = "veo-3.0-generate-001"
SUBMIT = f"{BASE}/models/{MODEL}:predictLongRunning"
OP = f"models/{MODEL}/operations/op-123"
VIDEO_URI = f"{BASE}/files/abc123:download?alt=media"
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(range(64))
FAST = {"poll_interval": 0.01}


def done(response: dict | None = None, **kw) -> dict:
    return {"name": OP, "done": True, **({"response": response} if response is not None else {}), **kw}


def samples(*uris: str) -> dict:
    return {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
            "generateVideoResponse": {"generatedSamples": [{"video": {"uri": u}} for u in uris]}}


def video_request(**kw) -> GenerationRequest:
    return GenerationRequest(prompt="a drone shot over a glacier", media="video", **kw)


def route_run(router: respx.MockRouter, *polls: dict) -> tuple[respx.Route, respx.Route, respx.Route]:
    """Submit -> the operation; GET operation -> ``polls`` in turn; GET video -> MP4 bytes."""
    submit = router.post(SUBMIT).respond(200, json={"name": OP})
    poll = router.get(f"{BASE}/{OP}").mock(side_effect=[httpx.Response(200, json=p) for p in polls])
    video = router.get(VIDEO_URI).respond(200, content=MP4, headers={"content-type": "video/mp4"})
    return submit, poll, video


class TestVeoContract(ProviderContract):
    def request(self) -> GenerationRequest:
        return video_request(width=1280, height=720)

    @pytest.fixture
    def provider(self, router: respx.MockRouter, http: httpx.AsyncClient) -> ImageProvider:
        router.post(SUBMIT).respond(200, json={"name": OP})
        router.get(f"{BASE}/{OP}").respond(200, json=done(samples(VIDEO_URI)))
        router.get(VIDEO_URI).respond(200, content=MP4, headers={"content-type": "video/mp4"})
        router.get(f"{BASE}/models/{MODEL}").respond(200, json={"name": f"models/{MODEL}", "displayName": "Veo 3"})
        router.get(f"{BASE}/models").mock(side_effect=models_route)
        return make("veo", http, settings=FAST)

    @pytest.fixture
    def down_provider(self, router: respx.MockRouter, http: httpx.AsyncClient) -> ImageProvider:
        router.route(host="generativelanguage.googleapis.com").mock(side_effect=httpx.ConnectError("refused"))
        return make("veo", http, settings=FAST)


async def test_text_to_video_submits_polls_and_downloads(router, http) -> None:
    submit, poll, video = route_run(router, {"name": OP, "done": False},
                                    {"name": OP, "done": False, "metadata": {"progressPercent": 40}},
                                    done(samples(VIDEO_URI)))
    provider = make("veo", http, settings={**FAST, "duration_seconds": 6, "person_generation": "allow_all"})
    polls_at_remember: list[int] = []
    ctx, rec = make_ctx(provider)
    ctx.on_remember = lambda name: _note(polls_at_remember, poll.call_count, rec, name)
    request = video_request(width=1920, height=1080, negative_prompt="cartoon")
    result = await provider.generate(request, ctx)

    (call,) = submit.calls
    assert call.request.method == "POST" and call.request.url.path == f"/v1beta/models/{MODEL}:predictLongRunning"
    assert call.request.headers["x-goog-api-key"] == KEY
    assert sent_json(call) == {
        "instances": [{"prompt": "a drone shot over a glacier"}],
        "parameters": {"aspectRatio": "16:9", "resolution": "1080p", "durationSeconds": 6,
                       "negativePrompt": "cartoon", "personGeneration": "allow_all"},
    }
    assert rec.remembered == [OP] and polls_at_remember == [0]  # remembered before the first poll
    assert poll.call_count == 3 and all(c.request.headers["x-goog-api-key"] == KEY for c in poll.calls)
    assert video.calls[0].request.headers["x-goog-api-key"] == KEY
    (f,) = result.files
    assert (f.data, f.mime_type, f.media, f.width, f.height) == (MP4, "video/mp4", MediaKind.video, 1920, 1080)
    assert f.parameters == {"model": MODEL, "aspect_ratio": "16:9", "resolution": "1080p", "duration_seconds": 6,
                            "uri": VIDEO_URI}
    assert result.provider_job_id == OP
    running = [p for p in rec.progress if p["message"] and p["message"].startswith("running")]
    assert len(running) == 2 and running[0]["max"] == 90.0 and (running[1]["value"], running[1]["max"]) == (40, 100)
    assert rec.progress[-1]["value"] == rec.progress[-1]["max"]


async def _note(seen: list[int], count: int, rec, name: str) -> None:
    seen.append(count)
    await rec.on_remember(name)


async def test_image_to_video_sends_the_first_frame(router, http) -> None:
    submit, _, _ = route_run(router, done(samples(VIDEO_URI)))
    provider = make("veo", http, settings={**FAST, "resolution": "720p"})
    frame = noisy_png(64, 36)
    result = await provider.generate(video_request(init_image=frame, width=720, height=1280, n=1,
                                                   extra={"parameters": {"enhancePrompt": True}}),
                                     make_ctx(provider)[0])
    assert sent_json(submit.calls[0]) == {
        "instances": [{"prompt": "a drone shot over a glacier",
                       "image": {"bytesBase64Encoded": b64(frame), "mimeType": "image/png"}}],
        "parameters": {"aspectRatio": "9:16", "resolution": "720p", "enhancePrompt": True},
    }
    assert (result.files[0].width, result.files[0].height) == (720, 1280)


async def test_resume_polls_the_remembered_operation_without_submitting(router, http) -> None:
    submit, poll, video = route_run(router, {"name": OP, "done": False}, done(samples(VIDEO_URI)))
    provider = make("veo", http, settings=FAST)
    ctx, rec = make_ctx(provider, resume_id=OP)
    result = await provider.generate(video_request(), ctx)
    assert submit.call_count == 0 and poll.call_count == 2 and video.call_count == 1
    assert rec.remembered == [] and result.files[0].data == MP4 and result.provider_job_id == OP


async def test_cancel_stops_polling_and_sends_nothing(router, http) -> None:
    provider = make("veo", http, settings=FAST)
    ctx, rec = make_ctx(provider)

    def still_running(request: httpx.Request) -> httpx.Response:
        ctx.cancel_event.set()  # the user cancels while the operation runs
        return httpx.Response(200, json={"name": OP, "done": False})

    router.post(SUBMIT).respond(200, json={"name": OP})
    poll = router.get(f"{BASE}/{OP}").mock(side_effect=still_running)
    with pytest.raises(JobCanceled):
        await provider.generate(video_request(), ctx)
    assert poll.call_count == 1 and ctx.provider_job_id == OP
    calls = len(router.calls)
    await provider.cancel(ctx)  # no cancel method exists for Veo operations: nothing is sent
    assert len(router.calls) == calls
    assert all(not str(c.request.url).endswith(":cancel") for c in router.calls)


async def test_download_follows_redirects_without_leaking_the_key(router, http) -> None:
    cdn = "https://video-downloads.example.net/v/abc.mp4?sig=1"
    route_run(router, done(samples(VIDEO_URI)))
    router.get(VIDEO_URI).respond(302, headers={"location": cdn})
    external = router.get(cdn).respond(200, content=MP4, headers={"content-type": "video/mp4; codecs=avc1"})
    provider = make("veo", http, settings=FAST)
    result = await provider.generate(video_request(), make_ctx(provider)[0])
    assert result.files[0].data == MP4 and result.files[0].mime_type == "video/mp4"
    assert "x-goog-api-key" not in external.calls[0].request.headers


async def test_other_documented_result_shapes(router, http) -> None:
    inline = {"generatedVideos": [{"video": {"videoBytes": b64(MP4), "mimeType": "video/mp4"}}]}
    encoded = {"generateVideoResponse": {"generatedSamples": [{"video": {"encodedVideo": b64(MP4),
                                                                         "encoding": "video/mp4"}}]}}
    provider = make("veo", http, settings=FAST)
    for response in (inline, encoded):
        router.post(SUBMIT).respond(200, json=done(response))
        result = await provider.generate(video_request(), make_ctx(provider)[0])
        assert result.files[0].data == MP4 and result.files[0].mime_type == "video/mp4"


@pytest.mark.parametrize(("final", "error", "words"), [
    (done({"generateVideoResponse": {"raiMediaFilteredCount": 1,
                                     "raiMediaFilteredReasons": ["The video violated our policies."]}}),
     ContentRejected, "The video violated our policies."),
    (done(error={"code": 13, "message": "Internal error while generating."}), GenerationFailed, "13: Internal error"),
    (done(error={"code": 3, "message": "The prompt was blocked by our safety filters."}), ContentRejected,
     "blocked"),
    (done({"generateVideoResponse": {}}), GenerationFailed, "without a video"),
    (done({"videos": [{"gcsUri": "gs://bucket/out.mp4", "mimeType": "video/mp4"}]}), GenerationFailed,
     "Cloud Storage"),
])
async def test_finished_operations_that_failed(router, http, final, error, words) -> None:
    route_run(router, final)
    provider = make("veo", http, settings=FAST)
    with pytest.raises(error) as info:
        await provider.generate(video_request(), make_ctx(provider)[0])
    assert type(info.value) is error and words in info.value.message


async def test_rate_limit_on_submit(router, http) -> None:
    router.post(SUBMIT).respond(429, json=error_body(429, "RESOURCE_EXHAUSTED", "quota", [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "30s"}]))
    provider = make("veo", http, settings=FAST)
    with pytest.raises(RateLimited) as info:
        await provider.generate(video_request(), make_ctx(provider)[0])
    assert info.value.retry_after == 30.0


async def test_capabilities_and_image_requests(router, http) -> None:
    provider = make("veo", http)
    caps = provider.capabilities
    assert caps.media == [MediaKind.video] and caps.video and caps.txt2img and caps.img2img
    assert caps.async_only and caps.resumable and not caps.seed and caps.max_n == 1
    assert caps.check(GenerationRequest(prompt="x")) == "cannot produce image"
    with pytest.raises(Unsupported):
        await provider.generate(GenerationRequest(prompt="x"), make_ctx(provider)[0])
    router.get(f"{BASE}/models").mock(side_effect=models_route)
    assert [m.id for m in await provider.list_models()] == ["veo-3.0-generate-001"]
    assert (await provider.options())["aspect_ratios"] == ["16:9", "9:16"]
