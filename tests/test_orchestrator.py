"""Orchestrator: retries, fallback, errors, cancel, timeout, resume, chain and config updates.
(Balancing, slots, cooldown and health: tests/test_balancer.py.)

Providers are in-process :class:`ScriptedProvider` fakes; ``sleep`` is a recorder that returns at
once, so backoff and Retry-After waits are asserted by value, not by time.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest

from image_studio.balancer import AUTH_COOLDOWN, UNAVAILABLE_COOLDOWN
from image_studio.errors import (
    AuthenticationFailed,
    ConfigError,
    Conflict,
    ContentRejected,
    FallbackExhausted,
    GenerationFailed,
    InvalidRequest,
    JobCanceled,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    Unsupported,
)
from image_studio.orchestrator import Orchestrator
from image_studio.types import Capabilities, GenerationResult
from tests.fakes.fake_providers import (
    HANG,
    Calls,
    Gate,
    MidRandom,
    Rig,
    build_providers,
    outline,
    req,
    tiny_png,
)


@pytest.fixture
async def http():
    async with httpx.AsyncClient() as client:
        yield client



# retries and fallback ---------------------------------------------------------------------


async def test_unavailable_retries_with_backoff_then_falls_back(http) -> None:
    down = [ProviderUnavailable("connection refused") for _ in range(4)]
    rig = Rig(http, {"a": {"script": down}, "b": {}}, chain=["b"])
    result, calls = await rig.run()

    assert isinstance(result, GenerationResult) and result.provider == "b"
    assert result.files[0].data == tiny_png()
    assert rig["a"].calls == 4 and rig["b"].calls == 1
    assert rig.sleep.calls == [0.5, 1.0, 2.0]
    assert outline(calls.attempts) == [
        ("a", "failed", "ProviderUnavailable", 0),
        ("a", "failed", "ProviderUnavailable", 1),
        ("a", "failed", "ProviderUnavailable", 2),
        ("a", "failed", "ProviderUnavailable", 3),
        ("b", "succeeded", None, 0),
    ]
    assert all(a.finished_at is not None and a.duration is not None for a in calls.attempts)
    assert calls.fallbacks == [("a", "b", "ProviderUnavailable: connection refused")]
    # on_attempt saw the list grow: a running entry first, then its outcome
    assert calls.attempt_lists[0][0].outcome == "running"
    assert [len(x) for x in calls.attempt_lists][:2] == [1, 1]
    a_stats = rig.stats("a")
    assert a_stats["cooldown_remaining"] == UNAVAILABLE_COOLDOWN and not a_stats["healthy"]
    assert a_stats["failures"] == 4
    assert rig.stats("b")["healthy"] and rig.stats("b")["failures"] == 0


async def test_backoff_is_capped_and_jittered_within_25_percent(http) -> None:
    down = [ProviderUnavailable("503") for _ in range(7)]
    rig = Rig(http, {"a": {"script": down}}, rng=random.Random(7), max_retries=6)
    err, calls = await rig.fails(FallbackExhausted)

    bases = [0.5, 1, 2, 4, 8, 8]
    assert len(rig.sleep.calls) == 6
    for got, base in zip(rig.sleep.calls, bases):
        assert 0.75 * base <= got <= 1.25 * base
    assert len(set(rig.sleep.calls)) == 6  # jittered, not constant
    assert len(err.attempts) == 7 and err.attempts[-1]["error_type"] == "ProviderUnavailable"
    assert "a: ProviderUnavailable: 503" in err.message


async def test_timeout_error_retried_once_then_fallback(http) -> None:
    rig = Rig(http, {"a": {"script": [ProviderTimeout("slow")] * 3}, "b": {}}, chain=["b"])
    result, calls = await rig.run()
    assert result.provider == "b"
    assert rig["a"].calls == 2
    assert rig.sleep.calls == [0.5]
    assert rig.stats("a")["cooldown_remaining"] == 0


async def test_generation_failed_falls_back_without_retry(http) -> None:
    rig = Rig(http, {"a": {"script": [GenerationFailed("execution_error: KSampler")]}, "b": {}}, chain=["b"])
    result, calls = await rig.run()
    assert result.provider == "b" and rig["a"].calls == 1 and rig.sleep.calls == []
    assert calls.attempts[0].error == "execution_error: KSampler"
    assert rig.stats("a")["healthy"]  # the backend answered; it ran and failed


async def test_unexpected_exception_is_wrapped_and_falls_back(http) -> None:
    rig = Rig(http, {"a": {"script": [KeyError("images")]}, "b": {}}, chain=["b"])
    result, calls = await rig.run()
    assert result.provider == "b"
    assert calls.attempts[0].error_type == "GenerationFailed"
    assert calls.attempts[0].error == "KeyError: 'images'"
    assert calls.fallbacks[0][2].startswith("GenerationFailed: KeyError")


async def test_everything_fails_gives_fallback_exhausted_with_attempts(http) -> None:
    rig = Rig(http, {"a": {"script": [GenerationFailed("boom")]},
                     "b": {"script": [AuthenticationFailed("bad key", status=401)]}}, chain=["b"])
    err, calls = await rig.fails(FallbackExhausted)
    assert [a["provider"] for a in err.attempts] == ["a", "b"]
    assert [a["error_type"] for a in err.attempts] == ["GenerationFailed", "AuthenticationFailed"]
    assert err.attempts[1]["error"] == "bad key"
    assert "a: GenerationFailed: boom" in err.message and "b: AuthenticationFailed: bad key" in err.message
    assert err.to_dict()["attempts"] == err.attempts


# content, invalid, unsupported ------------------------------------------------------------


async def test_content_rejection_does_not_fall_back(http) -> None:
    rig = Rig(http, {"a": {"script": [ContentRejected("safety system")]}, "b": {}}, chain=["b"])
    err, calls = await rig.fails(ContentRejected)
    assert err.provider == "a" and rig["b"].calls == 0 and rig["a"].calls == 1
    assert outline(calls.attempts) == [("a", "failed", "ContentRejected", 0)]
    assert calls.fallbacks == []


@pytest.mark.parametrize("where", ["config", "extra"])
async def test_content_rejection_falls_back_when_configured(http, where: str) -> None:
    spec: dict[str, Any] = {"script": [ContentRejected("safety system")]}
    extra = {}
    if where == "config":
        spec["fallback_on_content_rejected"] = True
    else:
        extra = {"fallback_on_content_rejected": True}
    rig = Rig(http, {"a": spec, "b": {}}, chain=["b"])
    result, calls = await rig.run(req(extra=extra))
    assert result.provider == "b" and rig["a"].calls == 1
    assert calls.fallbacks[0][:2] == ("a", "b")


async def test_invalid_request_raises_without_fallback(http) -> None:
    rig = Rig(http, {"a": {"script": [InvalidRequest("steps too high", field="steps")]}, "b": {}}, chain=["b"])
    err, calls = await rig.fails(InvalidRequest)
    assert err.field == "steps" and rig["b"].calls == 0 and rig.sleep.calls == []


async def test_unsupported_capability_is_skipped_with_reason(http) -> None:
    rig = Rig(http, {"a": {"capabilities": Capabilities(img2img=False)},
                     "b": {"capabilities": Capabilities(img2img=True)}}, chain=["b"])
    result, calls = await rig.run(req(init_image=tiny_png()))
    assert result.provider == "b" and rig["a"].calls == 0
    first = calls.attempts[0]
    assert (first.provider, first.outcome, first.error_type) == ("a", "skipped", "Unsupported")
    assert first.error == "no img2img (init_image given)"
    assert calls.fallbacks == [("a", "b", "Unsupported: no img2img (init_image given)")]


async def test_unsupported_raised_by_generate_is_a_skip(http) -> None:
    rig = Rig(http, {"a": {"script": [Unsupported("no such sampler")]}, "b": {}}, chain=["b"])
    result, calls = await rig.run()
    assert result.provider == "b" and rig.sleep.calls == []
    assert outline(calls.attempts)[0] == ("a", "skipped", "Unsupported", 0)


async def test_all_unsupported_raises_unsupported_with_reasons(http) -> None:
    caps = Capabilities(max_width=512, max_height=512)
    rig = Rig(http, {"a": {"capabilities": caps}, "b": {"capabilities": Capabilities(max_n=1)}}, chain=["b"])
    err, _ = await rig.fails(Unsupported, req(width=1024, height=1024, n=2))
    assert "a: size 1024x1024 over the maximum 512x512" in err.message
    assert "b: n=2 over the maximum 1" in err.message


# rate limits and auth ---------------------------------------------------------------------


async def test_rate_limit_short_retry_after_is_honoured(http) -> None:
    rig = Rig(http, {"a": {"script": [RateLimited("429", retry_after=2)]}, "b": {}}, chain=["b"])
    result, calls = await rig.run()
    assert result.provider == "a" and rig["a"].calls == 2 and rig["b"].calls == 0
    assert len(rig.sleep.calls) == 1
    assert 2.0 <= rig.sleep.calls[0] <= 2.25
    assert outline(calls.attempts) == [("a", "failed", "RateLimited", 0), ("a", "succeeded", None, 1)]


async def test_rate_limit_long_retry_after_falls_back(http) -> None:
    rig = Rig(http, {"a": {"script": [RateLimited("429", retry_after=120)]}, "b": {}}, chain=["b"])
    result, calls = await rig.run()
    assert result.provider == "b" and rig["a"].calls == 1 and rig.sleep.calls == []
    assert rig.stats("a")["cooldown_remaining"] == 120


async def test_rate_limit_without_retry_after_falls_back(http) -> None:
    rig = Rig(http, {"a": {"script": [RateLimited("429")]}, "b": {}}, chain=["b"])
    result, _ = await rig.run()
    assert result.provider == "b" and rig.sleep.calls == [] and rig.stats("a")["cooldown_remaining"] == 0


async def test_auth_failure_no_retry_falls_back_and_cools_down(http) -> None:
    rig = Rig(http, {"a": {"script": [AuthenticationFailed("401", status=401)]}, "b": {}}, chain=["b"])
    result, calls = await rig.run()
    assert result.provider == "b" and rig["a"].calls == 1 and rig.sleep.calls == []
    assert rig.stats("a")["cooldown_remaining"] == AUTH_COOLDOWN

    result2, calls2 = await rig.run(job_id="job-2")
    assert result2.provider == "b" and rig["a"].calls == 1
    skipped = calls2.attempts[0]
    assert (skipped.provider, skipped.outcome, skipped.error_type) == ("a", "skipped", "ProviderUnavailable")
    assert skipped.error.startswith("in cooldown until ") and "(600 s)" in skipped.error


# cancel and timeout ------------------------------------------------------------------------


async def test_cancel_mid_run_stops_backend_and_raises(http) -> None:
    gate = Gate()
    rig = Rig(http, {"a": {"script": [gate]}, "b": {}}, chain=["b"])
    calls = Calls()
    task = asyncio.create_task(rig.run(calls=calls, job_id="job-c"))
    await gate.entered.wait()
    assert await rig.orch.cancel("job-c") is True
    with pytest.raises(JobCanceled):
        await task
    assert len(rig["a"].cancels) == 1 and rig["a"].cancels[0].provider_job_id == "a-1"
    assert rig["b"].calls == 0
    assert calls.attempts[-1].outcome == "failed" and calls.attempts[-1].error_type == "JobCanceled"
    assert await rig.orch.cancel("job-c") is False
    assert rig.stats("a")["in_flight"] == 0


async def test_cancel_event_set_by_caller_also_stops_backend(http) -> None:
    rig = Rig(http, {"a": {"script": [HANG]}})
    event = asyncio.Event()
    task = asyncio.create_task(rig.run(cancel_event=event))
    await rig["a"].wait_calls(1)
    event.set()
    with pytest.raises(JobCanceled):
        await task
    assert len(rig["a"].cancels) == 1


async def test_shutdown_leaves_the_backend_job_running_for_resume(http) -> None:
    rig = Rig(http, {"a": {"script": [HANG]}})
    calls = Calls()
    task = asyncio.create_task(rig.run(calls=calls))
    await rig["a"].wait_calls(1)
    task.cancel()  # the worker task is cancelled: the service is stopping, nobody canceled the job
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rig["a"].cancels == []
    assert calls.attempts[-1].error_type == "Interrupted"


async def test_cancel_during_backoff_wakes_the_sleep(http) -> None:
    never = asyncio.Event()

    async def stuck_sleep(seconds: float) -> None:
        await never.wait()

    providers, config = build_providers(http, {"a": {"script": [ProviderUnavailable("down")]}})
    orch = Orchestrator(providers, config, http, sleep=stuck_sleep, rng=MidRandom())
    calls, event = Calls(), asyncio.Event()
    task = asyncio.create_task(orch.run(req(), job_id="j", cancel_event=event, timeout=60,
                                        on_progress=calls.on_progress, on_attempt=calls.on_attempt,
                                        on_remember=calls.on_remember))
    await providers["a"].wait_calls(1)
    while not calls.attempts or calls.attempts[-1].outcome == "running":
        await asyncio.sleep(0)
    event.set()
    with pytest.raises(JobCanceled):
        await task
    assert providers["a"].calls == 1


async def test_job_timeout_stops_attempt_and_raises_provider_timeout(http) -> None:
    rig = Rig(http, {"a": {"script": [HANG]}, "b": {}}, chain=["b"])
    err, calls = await rig.fails(ProviderTimeout, timeout=0.05)
    assert err.message == "job timed out after 0.05 s" and err.provider == "a"
    assert len(rig["a"].cancels) == 1 and rig["b"].calls == 0
    assert calls.attempts[-1].error_type == "ProviderTimeout" and calls.attempts[-1].outcome == "failed"
    assert 0 < rig["a"].contexts[0].timeout <= 0.05
    assert rig.stats("a")["in_flight"] == 0


async def test_per_attempt_timeout_from_provider_config(http) -> None:
    rig = Rig(http, {"a": {"script": [HANG, HANG], "timeout": 0.01}, "b": {}}, chain=["b"])
    result, calls = await rig.run(timeout=60)
    assert result.provider == "b"
    assert outline(calls.attempts)[:2] == [("a", "failed", "ProviderTimeout", 0), ("a", "failed", "ProviderTimeout", 1)]
    assert calls.attempts[0].error == "attempt timed out after 0.01 s"
    assert len(rig["a"].cancels) == 2
    assert rig["a"].contexts[0].timeout == 0.01


# context, progress, resume -----------------------------------------------------------------


async def test_context_progress_and_remember_pass_through(http) -> None:
    rig = Rig(http, {"a": {"backends": ["http://127.0.0.1:9"]}})
    result, calls = await rig.run(job_id="job-ctx", timeout=30)
    ctx = rig["a"].contexts[0]
    assert (ctx.job_id, ctx.provider_id, ctx.http, ctx.resume_id) == ("job-ctx", "a", http, None)
    assert ctx.backend.url == "http://127.0.0.1:9" and 0 < ctx.timeout <= 30
    assert calls.remembered == [("a", "http://127.0.0.1:9", "a-1")]
    assert result.provider_job_id == "a-1"
    assert calls.progress[0] == {"provider": "a", "backend": "http://127.0.0.1:9", "value": 0, "max": 1,
                                 "preview": None, "preview_mime": "image/jpeg", "message": "started"}
    assert calls.progress[1]["preview"] == tiny_png((0, 0, 0)) and calls.progress[1]["value"] == 1


async def test_resume_goes_to_remembered_provider_with_resume_id(http) -> None:
    resumable = Capabilities(resumable=True)
    rig = Rig(http, {"a": {}, "b": {"capabilities": resumable,
                                    "backends": ["http://127.0.0.1:1", "http://127.0.0.1:2"]}}, chain=["b"])
    result, calls = await rig.run(resume=("b", "http://127.0.0.1:2", "prompt-77"))
    assert rig["a"].calls == 0 and result.provider == "b"
    ctx = rig["b"].contexts[0]
    assert ctx.resume_id == "prompt-77" and ctx.backend.url == "http://127.0.0.1:2"
    assert result.provider_job_id == "prompt-77"


async def test_resume_that_cannot_happen_fails_rather_than_running_again(http) -> None:
    rig = Rig(http, {"a": {}, "b": {}}, chain=["b"])
    with pytest.raises(GenerationFailed) as info:
        await rig.run(resume=("b", None, "prompt-77"))
    assert "not run again" in info.value.message and not info.value.retryable
    assert rig["a"].calls == 0 and rig["b"].calls == 0


async def test_resume_on_removed_backend_fails(http) -> None:
    rig = Rig(http, {"b": {"capabilities": Capabilities(resumable=True), "backends": ["http://127.0.0.1:9"]}})
    with pytest.raises(GenerationFailed) as info:
        await rig.run(resume=("b", "http://127.0.0.1:1234", "p-1"))
    assert "no longer configured" in info.value.message and rig["b"].calls == 0


async def test_resume_failure_falls_back_to_chain(http) -> None:
    rig = Rig(http, {"a": {}, "b": {"capabilities": Capabilities(resumable=True),
                                    "script": [GenerationFailed("prompt id unknown")]}})
    result, calls = await rig.run(resume=("b", None, "gone"))
    assert result.provider == "a"
    assert [(a.provider, a.outcome) for a in calls.attempts] == [("b", "failed"), ("a", "succeeded")]


# chain and config --------------------------------------------------------------------------


async def test_chain_for(http) -> None:
    rig = Rig(http, {"a": {}, "b": {}, "c": {"enabled": False}, "d": {}}, chain=["b", "a", "c"])
    assert rig.orch.chain_for(req()) == ["a", "b"]
    assert rig.orch.chain_for(req(provider="d")) == ["d"]
    assert rig.orch.chain_for(req(provider="b", extra={"fallback": True})) == ["b", "a"]
    assert rig.orch.chain_for(req(provider="c")) == []


async def test_explicit_provider_is_not_falling_back(http) -> None:
    rig = Rig(http, {"a": {}, "b": {"script": [GenerationFailed("x")]}}, chain=["a"])
    err, _ = await rig.fails(FallbackExhausted, req(provider="b"))
    assert rig["a"].calls == 0 and [a["provider"] for a in err.attempts] == ["b"]


async def test_unknown_provider_and_empty_config(http) -> None:
    rig = Rig(http, {"a": {}})
    err, _ = await rig.fails(InvalidRequest, req(provider="nope"))
    assert err.field == "provider"
    empty = Rig(http, {"a": {"enabled": False}})
    err2, _ = await empty.fails(ConfigError)
    assert err2.field == "default_provider"


async def test_update_applies_new_config(http) -> None:
    rig = Rig(http, {"a": {}, "b": {}}, chain=["b"])
    r1, _ = await rig.run()
    assert r1.provider == "a"
    providers, config = build_providers(http, {"a": {"enabled": False}, "b": {}}, default="a", chain=["b"])
    rig.orch.update(providers, config)
    assert rig.orch.chain_for(req()) == ["b"]
    r2, _ = await rig.run(job_id="job-2")
    assert r2.provider == "b" and providers["b"].calls == 1 and rig["b"].calls == 0
    assert [s["provider"] for s in rig.orch.backend_stats()] == ["a", "b"]


async def test_duplicate_job_id_is_a_conflict(http) -> None:
    gate = Gate()
    rig = Rig(http, {"a": {"script": [gate]}})
    task = asyncio.create_task(rig.run(job_id="same"))
    await gate.entered.wait()
    await rig.fails(Conflict, job_id="same")
    gate.release()
    await task


async def test_adapter_retryable_flag_is_honoured(http) -> None:
    not_retryable = ProviderUnavailable("started without --api", retryable=False)
    rig = Rig(http, {"a": {"script": [not_retryable]}, "b": {}}, chain=["b"])
    result, calls = await rig.run()
    assert result.provider == "b" and rig["a"].calls == 1 and rig.sleep.calls == []
    oom = GenerationFailed("CUDA out of memory", retryable=True)
    rig = Rig(http, {"a": {"script": [oom]}, "b": {}}, chain=["b"])
    result, calls = await rig.run()
    assert result.provider == "a" and rig["a"].calls == 2 and len(rig.sleep.calls) == 1
