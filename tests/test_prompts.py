"""Prompt limits, the CLIP token estimate, keywords, and shortening through a fake
OpenAI-compatible LLM on loopback (answers, is down, is slow past its timeout, errs)."""

from __future__ import annotations

import httpx
import pytest

from image_studio.prompts import PromptOptimizer, analyse, clip_token_estimate, keywords
from image_studio.prompts.analysis import PromptTooLong, check_hard_limit
from tests.conftest import free_port
from tests.fakes.fake_llm import FakeLLM, serve_llm

LONG = ("a lighthouse on a cliff at dusk, waves crashing below, " * 80).strip()  # ~4,400 characters


def test_clip_token_estimate_follows_clips_pre_split():
    assert clip_token_estimate("") == 0
    assert clip_token_estimate("a red fox") == 3
    assert clip_token_estimate("a red fox, 8k!") == 3 + 1 + 1 + 1 + 1  # comma, 8, k, !
    assert clip_token_estimate("photorealistic") == 1 + 2  # 14 letters: one more per 5 past 7
    assert clip_token_estimate("it's") == 2
    long = ", ".join(["a castle on a hill"] * 20)
    assert clip_token_estimate(long) > 75


def test_keywords_find_subject_style_and_quality():
    kw = keywords("a red fox in a snowy forest, oil painting, by Claude Monet, highly detailed, 8k, "
                  "cinematic lighting, anime style, (masterpiece:1.2)")
    assert kw["subject"] == ["a red fox in a snowy forest"]
    assert kw["style"] == ["oil painting", "by claude monet", "anime style"]
    assert kw["quality"] == ["highly detailed", "8k", "cinematic lighting", "masterpiece"]


def test_analysis_says_what_a_generation_would_do():
    short = analyse("a red fox", clip=True)
    assert (short.action, short.length, short.token_limit, short.warnings) == ("none", 9, 75, [])
    tokens = analyse(", ".join(["a castle on a hill"] * 20), clip=True)
    assert tokens.action == "none" and any("CLIP tokens" in w for w in tokens.warnings)
    assert analyse(LONG).action == "optimize"
    assert analyse(LONG, optimize=False).action == "none"
    assert analyse("x" * 10_001).action == "refuse"
    dalle = analyse("y" * 4_500, provider_limit=4_000, optimize=False)
    assert any("at most 4,000" in w for w in dalle.warnings)
    assert not any("at most" in w for w in analyse("y" * 4_500, provider_limit=4_000).warnings)  # will fit


def test_hard_limit_is_a_400_that_names_the_limit():
    check_hard_limit("x" * 10_000)
    with pytest.raises(PromptTooLong) as info:
        check_hard_limit("x" * 10_001)
    assert info.value.http_status == 400 and info.value.field == "prompt" and "10,000" in info.value.message


@pytest.fixture
def llm():
    fake = FakeLLM()
    server = serve_llm(fake)
    yield fake, server.url + "/v1"
    server.stop()


async def test_a_long_prompt_is_shortened_by_the_llm(llm):
    fake, url = llm
    fake.answer = 'Here is the shortened prompt: "a lighthouse on a cliff at dusk, crashing waves, oil painting"'
    async with httpx.AsyncClient() as http:
        result = await PromptOptimizer(http, base_url=url, model="llama3.2", api_key="k1").optimize(LONG, target=3000)
    assert result.changed and result.prompt == "a lighthouse on a cliff at dusk, crashing waves, oil painting"
    assert result.original == LONG and result.warning is None and result.seconds >= 0
    [req] = fake.requests
    assert req["authorization"] == "Bearer k1" and req["body"]["model"] == "llama3.2"
    assert req["body"]["stream"] is False and req["body"]["messages"][1]["content"] == LONG
    assert "2900 characters" in req["body"]["messages"][0]["content"]


async def test_a_short_prompt_never_reaches_the_llm(llm):
    fake, url = llm
    async with httpx.AsyncClient() as http:
        result = await PromptOptimizer(http, base_url=url, model="m").optimize("a fox", target=3000)
    assert not result.changed and fake.requests == []


async def test_llm_down_keeps_the_prompt_with_a_warning():
    async with httpx.AsyncClient() as http:
        result = await PromptOptimizer(http, base_url=f"http://127.0.0.1:{free_port()}/v1", model="m",
                                       timeout=5).optimize(LONG)
    assert not result.changed and result.prompt == LONG and "cannot be reached" in result.warning


async def test_llm_slow_past_its_timeout_keeps_the_prompt(llm):
    fake, url = llm
    fake.delay = 3.0
    async with httpx.AsyncClient() as http:
        result = await PromptOptimizer(http, base_url=url, model="m", timeout=0.5).optimize(LONG)
    assert not result.changed and "did not answer within 0.5 s" in result.warning


async def test_llm_error_or_too_long_answer_keeps_the_prompt(llm):
    fake, url = llm
    fake.status = 404
    async with httpx.AsyncClient() as http:
        optimizer = PromptOptimizer(http, base_url=url, model="m")
        err = await optimizer.optimize(LONG)
        assert not err.changed and "HTTP 404" in err.warning
        fake.status, fake.answer = 200, "z" * 3500
        long = await optimizer.optimize(LONG, target=3000)
        assert not long.changed and "still 3,500 characters" in long.warning
