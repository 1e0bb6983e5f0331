"""Sizes that fit each provider, through the HTTP API of a real server: ``size_policy`` exact and
nearest, ``aspect_ratio`` instead of pixels, a chain whose first provider cannot take the size,
the requested and used size on the job and its asset, ``GET /providers`` carrying the rules, and
the OpenAI-compatible facade's ``size``. Cloud calls (OpenAI, Imagen) are answered by respx in
their documented shapes; ComfyUI is the fake that replays recorded transcripts."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
import respx

from image_studio.config import StudioConfig
from tests.api.conftest import API, Api
from tests.fakes.comfyui_server import FakeComfyUI
from tests.storage.helpers import noisy_png

OPENAI = "https://api.openai.com/v1"
GOOGLE = "https://generativelanguage.googleapis.com/v1beta"
IMAGEN = f"{GOOGLE}/models/imagen-4.0-generate-001:predict"
WAIT = {"Prefer": "wait=60"}


@pytest.fixture
def cloud():
    with respx.mock(assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        yield router


def config(default: str, chain: list[str] | None = None, **extra: dict) -> StudioConfig:
    providers = {
        "dalle": {"type": "openai", "credentials": {"api_key": "sk-test"}, "settings": {"model": "dall-e-3"}},
        "imagen": {"type": "imagen", "credentials": {"api_key": "g-test"}},
        "ph": {"type": "placeholder"},
        **extra,
    }
    return StudioConfig.model_validate({"default_provider": default, "fallback_chain": chain or [],
                                        "providers": providers})


def openai_answer(width: int, height: int) -> dict:
    return {"created": 1713833628, "data": [{"b64_json": base64.b64encode(noisy_png(width, height)).decode()}]}


def imagen_answer(width: int, height: int) -> dict:
    data = base64.b64encode(noisy_png(width, height)).decode()
    return {"predictions": [{"bytesBase64Encoded": data, "mimeType": "image/png"}]}


def test_exact_size_is_refused_with_the_accepted_sizes(make_server, cloud) -> None:
    route = cloud.post(f"{OPENAI}/images/generations").respond(200, json=openai_answer(1024, 1024))
    api = Api(make_server(config("dalle")).url, None)
    r = api.post("/generations", json={"prompt": "a lighthouse", "width": 1000, "height": 1000})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"] == "width"
    assert "1024x1024, 1792x1024, 1024x1792" in error["message"] and "1000x1000" in error["message"]
    assert route.call_count == 0 and api.get("/jobs").json()["items"] == []
    ratio = api.post("/generations", json={"prompt": "x", "aspect_ratio": "16:9"})
    assert ratio.status_code == 422 and ratio.json()["error"]["field"] == "aspect_ratio"
    assert "7:4 (1792x1024)" in ratio.json()["error"]["message"]
    bad = api.post("/generations", json={"prompt": "x", "aspect_ratio": "wide"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "aspect_ratio"


def test_nearest_snaps_and_the_job_records_both_sizes(make_server, cloud) -> None:
    route = cloud.post(f"{OPENAI}/images/generations").respond(200, json=openai_answer(1024, 1024))
    api = Api(make_server(config("dalle")).url, None)
    r = api.post("/generations", json={"prompt": "a lighthouse", "width": 1000, "height": 1000,
                                       "size_policy": "nearest"}, headers=WAIT)
    job = r.json()
    assert r.status_code == 200 and job["status"] == "succeeded", job
    assert json.loads(route.calls.last.request.content)["size"] == "1024x1024"
    assert job["request"]["requested_size"] == "1000x1000" and job["request"]["size_policy"] == "nearest"
    assert job["request"]["width"] == 1000  # the request as asked
    assert [(a["provider"], a["outcome"], a["size"]) for a in job["attempts"]] == [("dalle", "succeeded", "1024x1024")]
    asset = job["assets"][0]
    assert (asset["width"], asset["height"]) == (1024, 1024)
    assert asset["parameters"]["size"] == "1024x1024" and asset["parameters"]["requested_size"] == "1000x1000"
    assert (asset["parameters"]["width"], asset["parameters"]["height"]) == (1024, 1024)


def test_chain_skips_a_provider_that_cannot_take_the_size_exactly(make_server, cloud) -> None:
    route = cloud.post(f"{OPENAI}/images/generations").respond(200, json=openai_answer(1024, 1024))
    api = Api(make_server(config("dalle", ["ph"])).url, None)
    r = api.post("/generations", json={"prompt": "a lighthouse", "width": 1000, "height": 600}, headers=WAIT)
    job = r.json()
    assert r.status_code == 200 and job["status"] == "succeeded", job
    skipped, used = job["attempts"]
    assert (skipped["provider"], skipped["outcome"], skipped["error_type"]) == ("dalle", "skipped", "Unsupported")
    assert "1024x1024, 1792x1024, 1024x1792" in skipped["error"] and skipped["size"] is None
    assert (used["provider"], used["outcome"], used["size"]) == ("ph", "succeeded", "1000x600")
    assert (job["assets"][0]["width"], job["assets"][0]["height"]) == (1000, 600)
    assert route.call_count == 0


def test_nearest_snaps_per_provider_of_the_chain(make_server, cloud) -> None:
    refused = cloud.post(f"{OPENAI}/images/generations").respond(
        401, json={"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                             "code": "invalid_api_key"}})
    with FakeComfyUI() as comfy:
        cfg = config("dalle", ["comfy"], comfy={"type": "comfyui", "backends": [{"url": comfy.url}],
                                                "settings": {"history_poll_interval": 0.5}})
        api = Api(make_server(cfg).url, None)
        r = api.post("/generations", json={"prompt": "a lighthouse", "width": 1001, "height": 601,
                                           "size_policy": "nearest", "steps": 2}, headers=WAIT)
        job = r.json()
        prompts = [q["json"]["prompt"] for q in comfy.requests if q["path"] == "/prompt" and q["method"] == "POST"]
    assert r.status_code == 200 and job["status"] == "succeeded", job
    assert json.loads(refused.calls.last.request.content)["size"] == "1792x1024"
    assert [(a["provider"], a["outcome"], a["size"]) for a in job["attempts"]] == [
        ("dalle", "failed", "1792x1024"), ("comfy", "succeeded", "1000x600")]
    latent = [n["inputs"] for p in prompts for n in p.values() if "width" in n.get("inputs", {})]
    assert latent and all((i["width"], i["height"]) == (1000, 600) for i in latent)
    assert job["request"]["requested_size"] == "1001x601"


def test_aspect_ratio_instead_of_pixels(make_server, cloud) -> None:
    route = cloud.post(IMAGEN).mock(side_effect=[
        httpx.Response(200, json=imagen_answer(1408, 768)), httpx.Response(200, json=imagen_answer(2816, 1536))])
    api = Api(make_server(config("imagen")).url, None)
    r = api.post("/generations", json={"prompt": "a valley", "aspect_ratio": "16:9"}, headers=WAIT)
    job = r.json()
    assert r.status_code == 200 and job["status"] == "succeeded", job
    sent = json.loads(route.calls[0].request.content)["parameters"]
    assert sent["aspectRatio"] == "16:9" and "sampleImageSize" not in sent
    assert job["request"]["requested_size"] == "16:9" and job["attempts"][0]["size"] == "1408x768"
    full_hd = api.post("/generations", json={"prompt": "a valley", "width": 1920, "height": 1080}, headers=WAIT).json()
    assert full_hd["status"] == "succeeded", full_hd
    sent = json.loads(route.calls[1].request.content)["parameters"]
    assert sent["aspectRatio"] == "16:9" and sent["sampleImageSize"] == "2K"
    assert full_hd["attempts"][0]["size"] == "2816x1536" and full_hd["request"]["requested_size"] == "1920x1080"
    odd = api.post("/generations", json={"prompt": "a valley", "width": 1000, "height": 600})
    assert odd.status_code == 422 and "16:9 (1408x768 1K or 2816x1536 2K)" in odd.json()["error"]["message"]


def test_providers_list_carries_the_size_rules(make_server) -> None:
    with FakeComfyUI() as comfy:
        cfg = config("ph", comfy={"type": "comfyui", "backends": [{"url": comfy.url}]})
        api = Api(make_server(cfg).url, None)
        items = {p["id"]: p for p in api.get("/providers").json()}
    dalle = items["dalle"]["capabilities"]
    assert dalle["sizes"] == {"kind": "fixed", "sizes": ["1024x1024", "1792x1024", "1024x1792"], "auto": False,
                              "ratios": [], "multiple": 1, "min": None, "max": None, "max_pixels": None,
                              "max_ratio": None, "buckets": [], "note": "dall-e-3"}
    assert dalle["model_sizes"]["gpt-image-1"]["auto"] is True
    imagen = items["imagen"]["capabilities"]["sizes"]
    assert imagen["kind"] == "aspect_ratios"
    assert {"ratio": "16:9", "width": 1408, "height": 768, "tier": "1K"} in imagen["ratios"]
    comfy_rule = items["comfy"]["capabilities"]["sizes"]
    assert (comfy_rule["kind"], comfy_rule["multiple"], comfy_rule["min"], comfy_rule["max"]) == (
        "multiple_of", 8, 16, 8192)
    assert items["ph"]["capabilities"]["sizes"] is None


def test_openai_facade_size_maps_through_the_rules(make_server, cloud) -> None:
    route = cloud.post(f"{OPENAI}/images/generations").respond(200, json=openai_answer(1024, 1024))
    server = make_server(config("dalle"))
    with httpx.Client(base_url=server.url + API + "/openai/v1", timeout=60) as c:
        refused = c.post("/images/generations", json={"model": "dalle", "prompt": "x", "size": "1000x1000"})
        auto = c.post("/images/generations", json={"model": "dalle", "prompt": "x", "size": "auto"})
        snapped = c.post("/images/generations", json={"model": "dalle", "prompt": "x", "size": "1000x1000",
                                                      "size_policy": "nearest"})
    assert refused.status_code == 422 and refused.json()["error"]["param"] == "size"
    assert "1024x1024, 1792x1024, 1024x1792" in refused.json()["error"]["message"]
    assert auto.status_code == 200, auto.text
    assert snapped.status_code == 200, snapped.text
    assert [json.loads(c.request.content)["size"] for c in route.calls] == ["1024x1024", "1024x1024"]
