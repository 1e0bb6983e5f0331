"""A fallback chain that mixes kinds, end to end through the HTTP API: ComfyUI (the fake that
replays recorded transcripts) fails at run time, OpenAI answers 429 with a long Retry-After,
Stability succeeds. Cloud calls are answered by respx in their documented shapes; loopback
traffic (the studio, the fake ComfyUI) passes through.

Also a video job end to end: Veo's long-running operation to a stored MP4 asset with a
poster thumbnail."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
import respx
from PIL import Image

from tests.api.conftest import Api
from tests.fakes.comfyui_server import FakeComfyUI
from tests.storage.helpers import noisy_png

OPENAI = "https://api.openai.com/v1"
STABILITY = "https://api.stability.ai"
GOOGLE = "https://generativelanguage.googleapis.com/v1beta"


@pytest.fixture
def cloud():
    with respx.mock(assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        yield router


def mixed_config(comfy_url: str):
    from image_studio.config import StudioConfig

    return StudioConfig.model_validate({
        "default_provider": "comfy",
        "fallback_chain": ["openai", "stability"],
        "providers": {
            "comfy": {"type": "comfyui", "backends": [{"url": comfy_url}], "settings": {"history_poll_interval": 0.5}},
            "openai": {"type": "openai", "credentials": {"api_key": "sk-test-openai"}, "settings": {"model": "dall-e-2"}},
            "stability": {"type": "stability", "credentials": {"api_key": "sk-test-stability"},
                          "settings": {"service": "core"}},
        },
    })


def test_comfyui_then_openai_then_stability(make_server, cloud):
    png = noisy_png(512, 512)
    rate_limited = cloud.post(f"{OPENAI}/images/generations").respond(
        429, headers={"Retry-After": "120"},
        json={"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}})
    stability = cloud.post(f"{STABILITY}/v2beta/stable-image/generate/core").respond(
        200, content=png, headers={"content-type": "image/png", "finish-reason": "SUCCESS", "seed": "77"})
    with FakeComfyUI() as comfy:
        comfy.force("execution_error")
        api = Api(make_server(mixed_config(comfy.url)).url, None)
        r = api.post("/generations", json={"prompt": "a harbour at dawn", "width": 512, "height": 512},
                     headers={"Prefer": "wait=60"})
    job = r.json()
    assert r.status_code == 200 and job["status"] == "succeeded", job
    assert [(a["provider"], a["outcome"], a["error_type"]) for a in job["attempts"]] == [
        ("comfy", "failed", "GenerationFailed"),
        ("openai", "failed", "RateLimited"),
        ("stability", "succeeded", None)]
    assert job["provider"] == "stability" and job["assets"][0]["seed"] == 77
    assert rate_limited.call_count == 1, "a 120 s Retry-After is not waited for: the chain moves on"
    sent = stability.calls.last.request
    assert sent.headers["authorization"] == "Bearer sk-test-stability"
    assert b'name="prompt"' in sent.content and b"a harbour at dawn" in sent.content
    content = api.get(f"/assets/{job['asset_ids'][0]}/content")
    assert content.status_code == 200 and content.content.startswith(b"\x89PNG")


def _mp4(path: Path) -> bytes:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(4):
            frame = av.VideoFrame.from_image(Image.new("RGB", (64, 48), (30, 30 + 40 * i, 200)))
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path.read_bytes()


def test_veo_video_job_stores_an_mp4_with_a_poster(make_server, cloud, tmp_path):
    from image_studio.config import StudioConfig

    video = _mp4(tmp_path / "v.mp4")
    op = "models/veo-3.0-generate-001/operations/op-123"
    cloud.post(f"{GOOGLE}/models/veo-3.0-generate-001:predictLongRunning").respond(200, json={"name": op})
    cloud.get(f"{GOOGLE}/{op}").mock(side_effect=[
        respx.MockResponse(200, json={"name": op, "done": False}),
        respx.MockResponse(200, json={"name": op, "done": True, "response": {"generateVideoResponse": {
            "generatedSamples": [{"video": {"uri": f"{GOOGLE}/files/abc:download?alt=media"}}]}}}),
    ])
    cloud.get(f"{GOOGLE}/files/abc:download").respond(200, content=video, headers={"content-type": "video/mp4"})
    config = StudioConfig.model_validate({"default_provider": "veo", "providers": {"veo": {
        "type": "veo", "credentials": {"api_key": "g-key"}, "settings": {"poll_interval": 0.05}}}})
    api = Api(make_server(config).url, None)
    job = api.post("/generations", json={"prompt": "waves", "media": "video", "width": 1280, "height": 720},
                   headers={"Prefer": "wait=30"}).json()
    assert job["status"] == "succeeded", job
    asset = job["assets"][0]
    assert asset["media"] == "video" and asset["mime_type"] == "video/mp4" and job["provider_job_id"] == op
    assert api.get(asset["content_url"].removeprefix("/api/v1/image-studio")).content == video
    thumb = api.get(f"/assets/{asset['id']}/thumbnail")
    assert thumb.status_code == 200
    with Image.open(io.BytesIO(thumb.content)) as im:
        assert im.size == (64, 48)
    assert [a["id"] for a in api.get("/assets", params={"media": "video"}).json()["items"]] == [asset["id"]]
