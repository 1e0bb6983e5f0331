"""Generations through the real HTTP API: wait, SSE, assets, idempotency, errors, cancel."""

from __future__ import annotations

import io
import threading
import time

from PIL import Image

from image_studio.storage.metadata import read_png_text
from tests.api.conftest import Api, studio_config


def test_generate_with_prefer_wait_stores_png_with_parameters(api: Api):
    r = api.post("/generations", json={"prompt": "a red fox", "width": 96, "height": 64, "seed": 7, "steps": 3},
                 headers={"Prefer": "wait=30"})
    assert r.status_code == 200, r.text
    assert r.headers["Preference-Applied"] == "wait=30"
    job = r.json()
    assert job["status"] == "succeeded" and job["provider"] == "fast" and job["progress"] == 1.0
    assert [a["outcome"] for a in job["attempts"]] == ["succeeded"]
    asset = job["assets"][0]
    assert asset["width"] == 96 and asset["height"] == 64 and asset["seed"] == 7
    png = api.get(asset["content_url"].removeprefix("/api/v1/image-studio")).content
    with Image.open(io.BytesIO(png)) as im:
        assert im.size == (96, 64)
    text = read_png_text(png)
    assert "a red fox" in text["parameters"] and "Seed: 7" in text["parameters"]
    thumb = api.get(f"/assets/{asset['id']}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    listed = api.get("/assets").json()["items"]
    assert [a["id"] for a in listed] == [asset["id"]]


def test_accepted_then_events_stream_progress_to_success(api: Api):
    r = api.post("/generations", json={"prompt": "slow fox", "provider": "slow", "width": 64, "height": 64})
    assert r.status_code == 202
    job_id = r.json()["id"]
    events = api.events(job_id)
    types = [t for t, _ in events]
    assert types[-1] == "succeeded"
    assert "progress" in types
    progress = [d["progress"] for t, d in events if t == "progress"]
    assert progress == sorted(progress) and progress[-1] <= 1.0
    assert events[-1][1]["data"]["asset_ids"] == api.get(f"/jobs/{job_id}").json()["asset_ids"]


def test_idempotency_key_same_body_same_job_other_body_409(api: Api):
    body = {"prompt": "once", "width": 64, "height": 64}
    a = api.post("/generations", json=body, headers={"Idempotency-Key": "k-1"})
    b = api.post("/generations", json=body, headers={"Idempotency-Key": "k-1"})
    assert a.json()["id"] == b.json()["id"]
    c = api.post("/generations", json={**body, "prompt": "twice"}, headers={"Idempotency-Key": "k-1"})
    assert c.status_code == 409
    assert c.json()["error"]["field"] == "Idempotency-Key"


def test_bad_input_names_the_field_and_stores_nothing(api: Api):
    r = api.post("/generations", json={"prompt": "x", "width": -5})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "width"
    r = api.post("/generations", json={"prompt": "x", "provider": "nope"})
    assert r.status_code == 404 and r.json()["error"]["field"] == "provider"
    r = api.post("/generations", json={"prompt": "x", "mask": "aGVsbG8="})
    assert r.status_code == 422
    assert api.get("/jobs").json()["items"] == []


def test_cancel_running_job(api: Api):
    job_id = api.post("/generations", json={"prompt": "long", "provider": "slow", "n": 4,
                                            "width": 64, "height": 64}).json()["id"]
    deadline = time.monotonic() + 10
    while api.get(f"/jobs/{job_id}").json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    collected: list = []
    t = threading.Thread(target=lambda: collected.extend(api.events(job_id)))
    t.start()
    time.sleep(0.2)
    r = api.post(f"/jobs/{job_id}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "canceled"
    t.join(10)
    assert collected[-1][0] == "canceled"
    assert api.get("/assets").json()["items"] == []


def test_cancel_queued_job_never_runs(make_server):
    from tests.api.conftest import Api as A

    server = make_server(studio_config(), workers=1)
    api = A(server.url, None)
    first = api.post("/generations", json={"prompt": "a", "provider": "slow", "width": 64, "height": 64}).json()
    second = api.post("/generations", json={"prompt": "b", "provider": "slow", "width": 64, "height": 64}).json()
    got = api.get(f"/jobs/{second['id']}").json()
    assert got["status"] == "queued" and got["queue_position"] == 0
    assert api.post(f"/jobs/{second['id']}/cancel").json()["status"] == "canceled"
    api.post(f"/jobs/{first['id']}/cancel")
    time.sleep(0.3)
    assert api.get(f"/jobs/{second['id']}").json()["started_at"] is None


def test_fallback_through_api_records_both_attempts(make_server):
    from tests.api.conftest import Api as A

    config = studio_config(
        default_provider="broken", fallback_chain=["fast"],
        providers={"broken": {"type": "placeholder", "settings": {"fail_with": "AuthenticationFailed"}},
                   "fast": {"type": "placeholder"}},
    )
    api = A(make_server(config).url, None)
    r = api.post("/generations", json={"prompt": "fallback", "width": 64, "height": 64}, headers={"Prefer": "wait=20"})
    job = r.json()
    assert job["status"] == "succeeded" and job["provider"] == "fast"
    assert [(a["provider"], a["outcome"], a["error_type"]) for a in job["attempts"]] == [
        ("broken", "failed", "AuthenticationFailed"), ("fast", "succeeded", None)]


def test_content_rejection_fails_without_fallback(make_server):
    from tests.api.conftest import Api as A

    config = studio_config(
        default_provider="strict", fallback_chain=["fast"],
        providers={"strict": {"type": "placeholder", "settings": {"fail_with": "ContentRejected"}},
                   "fast": {"type": "placeholder"}},
    )
    api = A(make_server(config).url, None)
    job = api.post("/generations", json={"prompt": "x", "width": 64, "height": 64}, headers={"Prefer": "wait=20"}).json()
    assert job["status"] == "failed" and job["error"]["type"] == "ContentRejected"
    assert [a["provider"] for a in job["attempts"]] == ["strict"]


def test_batch_grid_makes_one_job_per_combination(api: Api):
    r = api.post("/generations/batch", json={"base": {"prompt": "grid", "width": 64, "height": 64},
                                             "grid": {"seed": [1, 2], "cfg_scale": [3, 7]}})
    assert r.status_code == 202
    body = r.json()
    assert len(body["jobs"]) == 4
    assert {(j["request"]["seed"], j["request"]["cfg_scale"]) for j in body["jobs"]} == {(1, 3), (1, 7), (2, 3), (2, 7)}
    listed = api.get("/jobs", params={"batch_id": body["batch_id"]}).json()["items"]
    assert len(listed) == 4
    bad = api.post("/generations/batch", json={"base": {"prompt": "x"}, "grid": {"colour": [1]}})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "grid.colour"


def test_batch_is_all_or_nothing(api: Api):
    r = api.post("/generations/batch", json={"requests": [
        {"prompt": "fine", "width": 64, "height": 64}, {"prompt": "bad", "provider": "nope"}]})
    assert r.status_code == 404 and r.json()["error"]["field"] == "provider"
    assert api.get("/jobs").json()["items"] == []
