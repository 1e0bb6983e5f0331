"""Provider analytics through the HTTP API, on SQLite and on the real PostgreSQL: jobs that
succeed, fail, fall back and are canceled on placeholder providers, then exact counts, rates,
error classes, images, cost and the time series; and the window and access rules."""

from __future__ import annotations

import random
import statistics
import time
from datetime import datetime, timedelta, timezone

import pytest

from image_studio.jobs.stats import percentile
from tests.api.conftest import ADMIN_KEY, ALICE_KEY, KEYS, Api, studio_config

COST = 0.0125
"""US dollars per image the "good" placeholder reports."""


def analytics_config():
    return studio_config(
        api_keys=KEYS, default_provider="gen_fail", fallback_chain=["good"],
        providers={
            "gen_fail": {"type": "placeholder", "settings": {"fail_with": "GenerationFailed"}},
            "good": {"type": "placeholder", "settings": {"cost": COST}},
            "reject": {"type": "placeholder", "settings": {"fail_with": "ContentRejected"}},
            "slow": {"type": "placeholder", "settings": {"delay": 30.0}},
            "idle": {"type": "placeholder"},
        })


def run_jobs(api: Api) -> list[dict]:
    """Three jobs that fall back from gen_fail to good (n = 1, 1, 2), two straight on good,
    one refused by reject (no fallback), one canceled while running on slow."""
    jobs = []
    for n in (1, 1, 2):
        jobs.append(api.post("/generations", json={"prompt": "falls back", "width": 64, "height": 64, "n": n},
                             headers={"Prefer": "wait=30"}).json())
    for _ in range(2):
        jobs.append(api.post("/generations", json={"prompt": "direct", "width": 64, "height": 64,
                                                   "provider": "good"}, headers={"Prefer": "wait=30"}).json())
    jobs.append(api.post("/generations", json={"prompt": "refused", "width": 64, "height": 64,
                                               "provider": "reject"}, headers={"Prefer": "wait=30"}).json())
    slow = api.post("/generations", json={"prompt": "canceled", "width": 64, "height": 64, "provider": "slow"}).json()
    while api.get(f"/jobs/{slow['id']}").json()["status"] == "queued":
        time.sleep(0.05)
    jobs.append(api.post(f"/jobs/{slow['id']}/cancel").json())
    assert [j["status"] for j in jobs] == ["succeeded"] * 5 + ["failed", "canceled"], jobs
    return jobs


def durations(jobs: list[dict], provider: str) -> list[float]:
    return [a["duration"] for j in jobs for a in j["attempts"]
            if a["provider"] == provider and a["outcome"] in ("succeeded", "failed")]


def test_stats_count_fallbacks_failures_cancels_images_and_cost(make_server, database_url):  # noqa: F811
    server = make_server(analytics_config(), database_url=database_url)
    admin, alice = Api(server.url, ADMIN_KEY), Api(server.url, ALICE_KEY)
    jobs = run_jobs(alice)
    assert [(a["provider"], a["outcome"], a["error_type"]) for a in jobs[0]["attempts"]] == [
        ("gen_fail", "failed", "GenerationFailed"), ("good", "succeeded", None)]
    now = datetime.now(timezone.utc)
    window = {"since": (now - timedelta(hours=1)).isoformat(), "until": (now + timedelta(hours=1)).isoformat()}

    r = admin.get("/providers/gen_fail/stats", params=window)
    assert r.status_code == 200, r.text
    failing = r.json()
    assert failing["provider"] == "gen_fail" and failing["bucket"] == "hour"
    totals = failing["totals"]
    assert totals["jobs"] == {"attempted": 3, "succeeded": 0, "failed": 3, "canceled": 0, "running": 0}
    assert totals["success_rate"] == 0.0
    assert totals["errors"] == [{"error_type": "GenerationFailed", "count": 3}]
    assert totals["attempts"] == {"total": 3, "succeeded": 0, "failed": 3, "skipped": 0}
    assert totals["images"] == 0 and totals["cost"] is None and totals["cost_attempts"] == 0
    assert totals["latency"]["count"] == 3 and totals["latency_succeeded"]["count"] == 0
    assert totals["latency"]["p50"] == pytest.approx(statistics.median(durations(jobs, "gen_fail")), abs=1e-6)
    assert [b["backend"] for b in failing["backends"]] == [None]  # the placeholder has no backends
    assert failing["backends"][0]["jobs"] == totals["jobs"]

    good = admin.get("/providers/good/stats", params=window).json()["totals"]
    assert good["jobs"] == {"attempted": 5, "succeeded": 5, "failed": 0, "canceled": 0, "running": 0}
    assert good["success_rate"] == 1.0 and good["errors"] == []
    assert good["images"] == 6 == sum(len(j["asset_ids"]) for j in jobs)
    assert good["cost"] == pytest.approx(6 * COST) and good["cost_attempts"] == 5
    ok = durations(jobs, "good")
    assert good["latency"]["count"] == good["latency_succeeded"]["count"] == 5
    assert good["latency"]["p50"] == pytest.approx(statistics.median(ok), abs=1e-6)
    assert min(ok) - 1e-6 <= good["latency"]["p50"] <= good["latency"]["p90"] <= good["latency"]["p99"] <= max(ok) + 1e-6
    waits = sorted((datetime.fromisoformat(j["started_at"]) - datetime.fromisoformat(j["created_at"])).total_seconds()
                   for j in jobs[:5])
    assert good["queue_wait"]["count"] == 5 and good["queue_wait"]["p99"] is None
    assert good["queue_wait"]["p50"] == pytest.approx(statistics.median(waits), abs=1e-3)
    series = good["series"]
    assert 2 <= len(series) <= 3  # the hours from since to until
    assert sum(p["attempted"] for p in series) == 5 and sum(p["succeeded"] for p in series) == 5
    busy = [p for p in series if p["attempted"]]
    assert all(p["success_rate"] == 1.0 and p["latency_p50"] is not None for p in busy)
    assert all(p["success_rate"] is None and p["latency_p50"] is None for p in series if not p["attempted"])

    refused = admin.get("/providers/reject/stats", params=window).json()["totals"]
    assert refused["jobs"]["failed"] == 1 and refused["success_rate"] == 0.0
    assert refused["errors"] == [{"error_type": "ContentRejected", "count": 1}]
    canceled = admin.get("/providers/slow/stats", params=window).json()["totals"]
    assert canceled["jobs"] == {"attempted": 1, "succeeded": 0, "failed": 0, "canceled": 1, "running": 0}
    assert canceled["success_rate"] is None and canceled["errors"] == []

    everything = admin.get("/stats", params=window).json()
    assert everything["jobs"] == {"succeeded": 5, "failed": 1, "canceled": 1}
    by_id = {p["provider"]: p for p in everything["providers"]}
    assert sorted(by_id) == ["gen_fail", "good", "idle", "reject", "slow"]
    assert by_id["good"]["totals"] == good
    assert by_id["idle"]["totals"]["jobs"]["attempted"] == 0 and by_id["idle"]["backends"] == []

    # a window with none of these jobs: the counts are zero, the providers still listed
    past = {"since": (now - timedelta(days=10)).isoformat(), "until": (now - timedelta(days=1)).isoformat()}
    old = admin.get("/stats", params=past).json()
    assert old["bucket"] == "day" and old["jobs"] == {} and len(old["providers"][0]["totals"]["series"]) in (9, 10)
    assert all(p["totals"]["jobs"]["attempted"] == 0 for p in old["providers"])
    daily = admin.get("/providers/good/stats", params={**window, "bucket": "day"}).json()
    assert daily["bucket"] == "day" and daily["totals"]["jobs"] == good["jobs"]


def test_stats_access_and_window_errors(make_server):
    server = make_server(analytics_config())
    admin, alice = Api(server.url, ADMIN_KEY), Api(server.url, ALICE_KEY)
    for path in ("/stats", "/providers/good/stats"):
        denied = alice.get(path)
        assert denied.status_code == 403 and denied.json()["error"]["type"] == "Forbidden"
    now = datetime.now(timezone.utc)
    backwards = admin.get("/stats", params={"since": now.isoformat(), "until": (now - timedelta(hours=1)).isoformat()})
    assert backwards.status_code == 422 and backwards.json()["error"]["field"] == "since"
    weekly = admin.get("/stats", params={"bucket": "week"})
    assert weekly.status_code == 422 and weekly.json()["error"]["field"] == "query.bucket"
    too_many = admin.get("/stats", params={"since": (now - timedelta(days=200)).isoformat(), "bucket": "hour"})
    assert too_many.status_code == 422 and too_many.json()["error"]["field"] == "bucket"
    bad_date = admin.get("/stats", params={"since": "yesterday"})
    assert bad_date.status_code == 422 and bad_date.json()["error"]["field"] == "query.since"
    unknown = admin.get("/providers/nope/stats")
    assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "provider"
    default = admin.get("/providers/idle/stats").json()  # the last 24 h by the hour
    start, end = datetime.fromisoformat(default["since"]), datetime.fromisoformat(default["until"])
    assert end - start == timedelta(hours=24) and default["bucket"] == "hour"
    assert len(default["totals"]["series"]) in (24, 25)
    naive = admin.get("/stats", params={"since": "2026-01-01T00:00:00", "until": "2026-01-02T00:00:00"}).json()
    assert naive["since"].startswith("2026-01-01T00:00:00") and naive["since"].endswith(("Z", "+00:00"))


def test_percentile_matches_the_inclusive_method():
    rng = random.Random(7)
    for n in (1, 2, 3, 10, 101):
        values = sorted(rng.uniform(0, 50) for _ in range(n))
        if n >= 2:
            cuts = statistics.quantiles(values, n=100, method="inclusive")
            assert percentile(values, 0.5) == pytest.approx(cuts[49], abs=1e-5)
            assert percentile(values, 0.9) == pytest.approx(cuts[89], abs=1e-5)
            assert percentile(values, 0.99) == pytest.approx(cuts[98], abs=1e-5)
        else:
            assert percentile(values, 0.9) == pytest.approx(values[0])
    assert percentile([], 0.5) is None
