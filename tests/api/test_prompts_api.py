"""Prompt validation and optimization through the HTTP API, and long prompts in generations:
over 10,000 characters a 400; between 3,000 and 10,000 shortened by the LLM before the job runs
(original and optimized recorded, with the time taken); the LLM down never fails the job."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api, studio_config
from tests.conftest import free_port
from tests.fakes.fake_llm import FakeLLM, serve_llm

LONG = ("a lighthouse on a cliff at dusk, waves crashing below, oil painting, highly detailed, " * 45).strip()
SHORT = "a lighthouse on a cliff at dusk, crashing waves, oil painting, highly detailed"


@pytest.fixture
def llm():
    fake = FakeLLM(answer=SHORT)
    server = serve_llm(fake)
    yield fake, server.url + "/v1"
    server.stop()


def prompts_config(url: str, **over) -> dict:
    return {"llm_url": url, "model": "tiny-llm", "timeout": 2.0, **over}


def test_validate_reports_length_tokens_keywords_and_action(make_server, llm):
    _, url = llm
    api = Api(make_server(studio_config(prompts=prompts_config(url))).url, None)
    ok = api.post("/prompts/validate", json={"prompt": "a red fox, oil painting, 8k", "negative_prompt": "blurry"})
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["provider"] == "fast" and body["length"] == 27 and body["action"] == "none"
    assert body["tokens"] == clip_tokens("a red fox, oil painting, 8k") and body["token_limit"] is None
    assert body["keywords"] == {"subject": ["a red fox"], "style": ["oil painting"], "quality": ["8k"]}
    assert body["negative"]["length"] == 6
    assert api.post("/prompts/validate", json={"prompt": LONG}).json()["action"] == "optimize"
    huge = api.post("/prompts/validate", json={"prompt": "x" * 10_001}).json()
    assert huge["action"] == "refuse" and huge["hard_limit"] == 10_000
    assert api.post("/prompts/validate", json={"prompt": "x", "provider": "nope"}).status_code == 404


def clip_tokens(text: str) -> int:
    from image_studio.prompts import clip_token_estimate

    return clip_token_estimate(text)


def test_optimize_route_uses_the_configured_llm(make_server, llm):
    fake, url = llm
    api = Api(make_server(studio_config(prompts=prompts_config(url))).url, None)
    r = api.post("/prompts/optimize", json={"prompt": LONG})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["changed"] and body["optimized"] == SHORT and body["model"] == "tiny-llm"
    assert body["original_length"] == len(LONG) and body["length"] == len(SHORT)
    assert fake.requests[0]["body"]["model"] == "tiny-llm"
    too_long = api.post("/prompts/optimize", json={"prompt": "x" * 10_001})
    assert too_long.status_code == 400 and "10,000" in too_long.json()["error"]["message"]
    assert too_long.json()["error"]["field"] == "prompt"


def test_a_generation_over_the_hard_limit_is_a_400_and_no_job(make_server, llm):
    _, url = llm
    api = Api(make_server(studio_config(prompts=prompts_config(url))).url, None)
    r = api.post("/generations", json={"prompt": "x" * 10_001})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == {"type": "PromptTooLong", "field": "prompt",
                                 "message": "the prompt is 10,001 characters; the limit is 10,000"}
    neg = api.post("/generations", json={"prompt": "ok", "negative_prompt": "n" * 10_001})
    assert neg.status_code == 400 and neg.json()["error"]["field"] == "negative_prompt"
    assert api.get("/jobs").json()["items"] == []


def test_a_long_prompt_is_shortened_before_it_runs_and_the_job_records_both(make_server, llm):
    fake, url = llm
    api = Api(make_server(studio_config(prompts=prompts_config(url))).url, None)
    job = api.post("/generations", json={"prompt": LONG, "width": 64, "height": 64},
                   headers={"Prefer": "wait=30"}).json()
    assert job["status"] == "succeeded", job
    info = job["prompt_info"]
    assert info["original"] == LONG and info["optimized"] == SHORT and info["changed"] is True
    assert info["seconds"] >= 0 and info["model"] == "tiny-llm" and info["warning"] is None
    assert job["request"]["prompt"] == LONG  # the request is what was asked
    asset = job["assets"][0]
    assert asset["prompt"] == SHORT and asset["parameters"]["original_prompt"] == LONG  # what ran
    assert api.get(f"/jobs/{job['id']}").json()["prompt_info"] == info
    assert len(fake.requests) == 1


def test_the_llm_down_runs_the_prompt_unchanged_with_a_warning(make_server):
    url = f"http://127.0.0.1:{free_port()}/v1"
    api = Api(make_server(studio_config(prompts=prompts_config(url))).url, None)
    job = api.post("/generations", json={"prompt": LONG, "width": 64, "height": 64},
                   headers={"Prefer": "wait=30"}).json()
    assert job["status"] == "succeeded", job
    assert job["prompt_info"]["changed"] is False and "cannot be reached" in job["prompt_info"]["warning"]
    assert job["assets"][0]["prompt"] == LONG


def test_the_llm_slow_past_its_timeout_never_fails_the_job(make_server, llm):
    fake, url = llm
    fake.delay = 3.0
    api = Api(make_server(studio_config(prompts=prompts_config(url, timeout=0.5))).url, None)
    job = api.post("/generations", json={"prompt": LONG, "width": 64, "height": 64},
                   headers={"Prefer": "wait=30"}).json()
    assert job["status"] == "succeeded" and "did not answer within 0.5 s" in job["prompt_info"]["warning"]


def test_optimization_off_runs_long_prompts_as_they_are(make_server, llm):
    fake, url = llm
    api = Api(make_server(studio_config(prompts=prompts_config(url, optimize=False))).url, None)
    job = api.post("/generations", json={"prompt": LONG, "width": 64, "height": 64},
                   headers={"Prefer": "wait=30"}).json()
    assert job["status"] == "succeeded" and "optimization is off" in job["prompt_info"]["warning"]
    assert fake.requests == []
    assert "optimization is off" in api.post("/prompts/optimize", json={"prompt": LONG}).json()["warning"]


def test_the_llm_key_is_a_secret_masked_in_the_config(make_server, llm):
    fake, url = llm
    server = make_server(studio_config(prompts=prompts_config(url, api_key="sk-llm-secret-1234")))
    api = Api(server.url, None)
    shown = api.get("/config").json()["config"]["prompts"]
    assert shown["api_key"] != "sk-llm-secret-1234" and shown["api_key"].endswith("1234")
    assert "sk-llm-secret" not in api.get("/config/export").text
    assert api.put("/config", json=api.get("/config").json()["config"]).status_code == 200  # masked: kept
    api.post("/prompts/optimize", json={"prompt": LONG})
    assert fake.requests[-1]["authorization"] == "Bearer sk-llm-secret-1234"


def test_provider_limits_in_validation_and_routing(make_server, llm):
    _, url = llm
    config = studio_config(prompts=prompts_config(url, optimize=False), fallback_chain=["dalle", "fast"], providers={
        "fast": {"type": "placeholder"},
        "dalle": {"type": "openai", "credentials": {"api_key": "sk-test"}, "settings": {"model": "dall-e-3"}},
        "comfy": {"type": "comfyui", "backends": [{"url": "http://127.0.0.1:9"}]},
    }, default_provider="dalle")
    api = Api(make_server(config).url, None)
    dalle = api.post("/prompts/validate", json={"prompt": "y" * 4_500}).json()
    assert dalle["provider"] == "dalle" and dalle["provider_limit"] == 4000 and dalle["token_limit"] is None
    assert any("at most 4,000" in w for w in dalle["warnings"])
    comfy = api.post("/prompts/validate", json={"prompt": ", ".join(["a castle on a hill"] * 20),
                                                 "provider": "comfy"}).json()
    assert comfy["token_limit"] == 75 and comfy["tokens"] > 75 and any("CLIP" in w for w in comfy["warnings"])
    # DALL-E 3 cannot take 4,500 characters: the chain skips it for the placeholder, with the reason
    job = api.post("/generations", json={"prompt": "y" * 4_500, "width": 1024, "height": 1024},
                   headers={"Prefer": "wait=30"}).json()
    assert job["status"] == "succeeded" and job["provider"] == "fast", job
    skipped = [a for a in job["attempts"] if a["provider"] == "dalle"]
    assert skipped[0]["outcome"] == "skipped" and "at most 4,000 characters" in str(skipped[0]["error"])
