"""Backend balancing, per-backend slots, cooldown and the health cache, through the orchestrator.

Uses the scripted providers of tests/fakes/fake_providers.py; nothing is timed: a job that must
wait for a slot is shown waiting by its provider's call count after the loop has run.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from image_studio.balancer import UNAVAILABLE_COOLDOWN, BackendPool, choose
from image_studio.config import BackendConfig
from image_studio.errors import AuthenticationFailed, FallbackExhausted, JobCanceled, NotFound, ProviderUnavailable
from tests.fakes.fake_providers import Gate, Rig, build_providers, req


@pytest.fixture
async def http():
    async with httpx.AsyncClient() as client:
        yield client


# balancing ---------------------------------------------------------------------------------


async def test_balancing_by_in_flight_and_concurrency_limit(http) -> None:
    g1, g2 = Gate(), Gate()
    rig = Rig(http, {"a": {"script": [g1, g2], "backends": ["http://127.0.0.1:1", "http://127.0.0.1:2"],
                           "concurrency": 1}})
    tasks = [asyncio.create_task(rig.run(job_id=f"job-{i}")) for i in range(3)]
    await rig["a"].wait_calls(2)
    for _ in range(20):
        await asyncio.sleep(0)
    assert rig["a"].calls == 2  # the third job waits for a slot
    assert rig["a"].backends_used == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    assert [s["in_flight"] for s in rig.orch.backend_stats()] == [1, 1]

    g2.release()
    await rig["a"].wait_calls(3)
    assert rig["a"].backends_used[2] == "http://127.0.0.1:2"
    g1.release()
    results = await asyncio.gather(*tasks)
    assert [r.backend for r, _ in results] == ["http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:2"]
    assert [s["in_flight"] for s in rig.orch.backend_stats()] == [0, 0]


async def test_backend_concurrency_overrides_provider_concurrency(http) -> None:
    gates = [Gate(), Gate()]
    backends = [BackendConfig(url="http://127.0.0.1:1", name="one", concurrency=2)]
    rig = Rig(http, {"a": {"script": gates, "backends": backends, "concurrency": 1}})
    tasks = [asyncio.create_task(rig.run(job_id=f"job-{i}")) for i in range(2)]
    await rig["a"].wait_calls(2)
    assert rig.stats("a", "one")["in_flight"] == 2 and rig.stats("a", "one")["limit"] == 2
    for g in gates:
        g.release()
    await asyncio.gather(*tasks)


async def test_model_affinity_breaks_ties(http) -> None:
    hold = Gate()
    rig = Rig(http, {"a": {"script": [hold], "backends": ["http://127.0.0.1:1", "http://127.0.0.1:2"]}})
    busy = asyncio.create_task(rig.run(req(model="m-other"), job_id="busy"))
    await hold.entered.wait()
    r2, _ = await rig.run(req(model="m-x"), job_id="j2")  # backend 1 busy: goes to 2
    assert r2.backend == "http://127.0.0.1:2"
    hold.release()
    await busy
    r3, _ = await rig.run(req(model="m-x"), job_id="j3")  # both idle: 2 last ran m-x
    r4, _ = await rig.run(req(model=None), job_id="j4")  # no model: first backend
    assert (r3.backend, r4.backend) == ("http://127.0.0.1:2", "http://127.0.0.1:1")


async def test_retry_prefers_another_backend(http) -> None:
    rig = Rig(http, {"a": {"script": [ProviderUnavailable("refused")],
                           "backends": ["http://127.0.0.1:1", "http://127.0.0.1:2"]}})
    result, calls = await rig.run()
    assert rig["a"].backends_used == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    assert [a.backend for a in calls.attempts] == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    assert result.backend == "http://127.0.0.1:2"



# cooldown and health ---------------------------------------------------------------------


async def test_growing_cooldown_and_expiry(http) -> None:
    rig = Rig(http, {"a": {"script": [ProviderUnavailable("x")] * 8}, "b": {}}, chain=["b"], max_retries=0)
    await rig.run()
    assert rig.stats("a")["cooldown_remaining"] == 30.0
    # next job skips "a" while it cools down
    _, calls = await rig.run(job_id="job-2")
    assert calls.attempts[0].outcome == "skipped" and "in cooldown until" in calls.attempts[0].error
    assert rig["a"].calls == 1
    rig.clock.now += 31
    await rig.run(job_id="job-3")
    assert rig["a"].calls == 2
    assert rig.stats("a")["cooldown_remaining"] == 60.0  # second strike doubles


async def test_everything_in_cooldown_is_tried_anyway(http) -> None:
    rig = Rig(http, {"a": {"script": [AuthenticationFailed("401")]},
                     "b": {"script": [AuthenticationFailed("401")]}}, chain=["b"])
    await rig.fails(FallbackExhausted)
    result, calls = await rig.run(job_id="job-2")
    assert result.provider == "a" and rig["a"].calls == 2
    assert [a.outcome for a in calls.attempts] == ["succeeded"]
    assert rig.stats("a")["cooldown_remaining"] == 0  # a success clears the cooldown


async def test_update_raises_limit_for_waiting_jobs(http) -> None:
    gate = Gate()
    specs = {"a": {"script": [gate], "backends": ["http://127.0.0.1:1"], "concurrency": 1}}
    rig = Rig(http, specs)
    first = asyncio.create_task(rig.run(job_id="j1"))
    await gate.entered.wait()
    second = asyncio.create_task(rig.run(job_id="j2"))
    for _ in range(10):
        await asyncio.sleep(0)
    assert rig["a"].calls == 1
    specs["a"]["concurrency"] = 2
    _, config = build_providers(http, specs)
    rig["a"].config = config.providers["a"]
    rig.orch.update(rig.providers, config)
    await rig["a"].wait_calls(2)
    assert rig.stats("a", "http://127.0.0.1:1")["in_flight"] == 2
    gate.release()
    await asyncio.gather(first, second)


async def test_health_probe_updates_cache(http) -> None:
    rig = Rig(http, {"a": {"backends": ["http://127.0.0.1:1", "http://127.0.0.1:2"],
                           "health_script": [True, False, True, True]}})
    statuses = await rig.orch.health("a")
    assert [(s.backend, s.ok) for s in statuses] == [("http://127.0.0.1:1", True), ("http://127.0.0.1:2", False)]
    bad = rig.stats("a", "http://127.0.0.1:2")
    assert not bad["healthy"] and bad["cooldown_remaining"] == UNAVAILABLE_COOLDOWN
    assert bad["last_error"] == "scripted probe failure" and bad["cooldown_until"]
    # jobs avoid the cooling backend
    r, _ = await rig.run()
    r2, _ = await rig.run(job_id="j2")
    assert {r.backend, r2.backend} == {"http://127.0.0.1:1"}
    await rig.orch.health("a")
    assert rig.stats("a", "http://127.0.0.1:2")["healthy"]
    with pytest.raises(NotFound):
        await rig.orch.health("nope")


async def test_cancel_while_waiting_for_a_slot(http) -> None:
    gate = Gate()
    rig = Rig(http, {"a": {"script": [gate], "concurrency": 1}})
    first = asyncio.create_task(rig.run(job_id="j1"))
    await gate.entered.wait()
    waiting = asyncio.create_task(rig.run(job_id="j2"))
    for _ in range(10):
        await asyncio.sleep(0)
    assert await rig.orch.cancel("j2") is True
    with pytest.raises(JobCanceled):
        await waiting
    assert rig["a"].calls == 1 and rig["a"].cancels == []  # j2 never reached the backend
    gate.release()
    await first
    assert rig.stats("a")["in_flight"] == 0


# the pool on its own -------------------------------------------------------------------------


def _pool_with(*labels: str, limit: int = 1):
    clock = [0.0]
    pool = BackendPool(lambda: clock[0])
    states = [pool.state("p", BackendConfig(url=f"http://127.0.0.1:{i + 1}", name=lab), limit)
              for i, lab in enumerate(labels)]
    return pool, states, clock


def test_choose_prefers_not_failed_then_idle_then_affinity_then_first() -> None:
    _, (a, b, c), _ = _pool_with("a", "b", "c", limit=4)
    assert choose([a, b, c], model=None) is a
    a.in_flight = 1
    assert choose([a, b, c], model=None) is b
    c.last_model = "sdxl"
    assert choose([a, b, c], model="sdxl") is c
    assert choose([a, b, c], model="sdxl", avoid=["c"]) is b
    b.in_flight = c.in_flight = 1
    assert choose([a, b, c], model=None, avoid=["a", "b", "c"]) is a


def test_cooldown_grows_caps_and_clears_on_success() -> None:
    pool, (st,), clock = _pool_with("a")
    got = []
    for _ in range(6):
        got.append(pool.cool_down(st))
        clock[0] += 1000
    assert got == [30.0, 60.0, 120.0, 240.0, 300.0, 300.0]
    pool.cool_down(st, 600)
    pool.cool_down(st, 5)  # a shorter cooldown never cuts a longer one short
    assert pool.remaining(st) == 600 and pool.cooling(st)
    clock[0] += 600
    assert not pool.cooling(st)
    pool.cool_down(st, 10)
    pool.record_success(st, "m")
    assert not pool.cooling(st) and st.streak == 0 and st.last_model == "m"
    assert pool.cool_down(st) == UNAVAILABLE_COOLDOWN


async def test_acquire_waits_for_release_and_wakes_on_cancel() -> None:
    pool, (st,), _ = _pool_with("a")
    held = await pool.acquire("p", lambda: [st], model=None, avoid=(), cancel_event=asyncio.Event())
    assert held is st and st.in_flight == 1
    waiter = asyncio.create_task(pool.acquire("p", lambda: [st], model=None, avoid=(), cancel_event=asyncio.Event()))
    await asyncio.sleep(0)
    assert not waiter.done()
    pool.release(st)
    assert await waiter is st and st.in_flight == 1
    cancel = asyncio.Event()
    blocked = asyncio.create_task(pool.acquire("p", lambda: [st], model=None, avoid=(), cancel_event=cancel))
    await asyncio.sleep(0)
    cancel.set()
    with pytest.raises(JobCanceled):
        await blocked
    assert st.in_flight == 1
