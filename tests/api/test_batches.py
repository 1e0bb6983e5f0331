"""Batches as one thing through the HTTP API: summary, progress events, cancel, listing and
ownership, the gallery grouping (assets carry ``batch_id``), and the migration that gives
assets made before it their batch."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from tests.api.conftest import ADMIN_KEY, ALICE_KEY, BOB_KEY, KEYS, Api, studio_config

TERMINAL = {"succeeded", "failed", "canceled", "expired"}


def batch_events(api: Api, batch_id: str) -> list[tuple[str, dict]]:
    """Every SSE event of a batch until its stream ends."""
    return api.sse(f"/batches/{batch_id}/events")


@pytest.fixture
def users(make_server, database_url):
    """Admin, alice and bob on one server, on SQLite and on PostgreSQL."""
    server = make_server(studio_config(
        api_keys=KEYS,
        providers={"fast": {"type": "placeholder"},
                   "slow": {"type": "placeholder", "settings": {"delay": 30.0}}}), database_url=database_url)
    return Api(server.url, ADMIN_KEY), Api(server.url, ALICE_KEY), Api(server.url, BOB_KEY)


def test_batch_progress_events_summary_and_grouped_assets(users):
    admin, alice, bob = users
    r = alice.post("/generations/batch", json={
        "base": {"prompt": "base", "width": 64, "height": 64, "n": 2, "provider": "fast"},
        "prompts": ["a red fox", "a blue owl"], "grid": {"seed": [1, 2]}})
    assert r.status_code == 202, r.text
    batch_id, submitted = r.json()["batch_id"], [j["id"] for j in r.json()["jobs"]]

    events = batch_events(alice, batch_id)
    assert events[0][0] == "snapshot" and events[0][1]["total"] == 4
    assert events[-1][0] == "done"
    last = events[-1][1]
    assert last["done"] is True and last["progress"] == 1.0 and last["counts"]["succeeded"] == 4
    ended = [data["job_id"] for kind, data in events if kind == "succeeded"]
    already = events[0][1]["counts"]["succeeded"]  # jobs that ended before the stream began
    assert len(ended) + already == 4 and set(ended) <= set(submitted)
    progress = [data["progress"] for _, data in events]
    assert progress == sorted(progress), "the batch's progress never goes back"

    summary = alice.get(f"/batches/{batch_id}").json()
    assert summary["id"] == batch_id and summary["owner"] == "alice" and summary["job_ids"] == submitted
    assert summary["total"] == 4 and summary["done"] is True and summary["progress"] == 1.0
    assert summary["counts"] == {"queued": 0, "running": 0, "succeeded": 4, "failed": 0, "canceled": 0, "expired": 0}
    assert len(summary["asset_ids"]) == 8 and summary["jobs"] == []
    with_jobs = alice.get(f"/batches/{batch_id}", params={"jobs": "true"}).json()
    assert [j["id"] for j in with_jobs["jobs"]] == submitted
    assert sorted({(j["request"]["prompt"], j["request"]["seed"]) for j in with_jobs["jobs"]}) == [
        ("a blue owl", 1), ("a blue owl", 2), ("a red fox", 1), ("a red fox", 2)]
    assert last["asset_ids"] == summary["asset_ids"]

    assets = alice.get("/assets", params={"batch_id": batch_id, "limit": 50}).json()["items"]
    assert sorted(a["id"] for a in assets) == sorted(summary["asset_ids"])
    assert {a["batch_id"] for a in assets} == {batch_id}
    single = alice.post("/generations", json={"prompt": "alone", "width": 64, "height": 64, "provider": "fast"},
                        headers={"Prefer": "wait=20"}).json()
    assert single["assets"][0]["batch_id"] is None
    assert alice.get(f"/assets/{summary['asset_ids'][0]}").json()["batch_id"] == batch_id

    # owners only; admins see every batch
    assert admin.get(f"/batches/{batch_id}").json()["owner"] == "alice"
    for call in (lambda: bob.get(f"/batches/{batch_id}"), lambda: bob.post(f"/batches/{batch_id}/cancel"),
                 lambda: bob.get(f"/batches/{batch_id}/events")):
        resp = call()
        assert resp.status_code == 404 and resp.json()["error"]["field"] == "batch_id"
    assert bob.get("/batches").json() == {"items": [], "next_cursor": None}


def test_cancel_batch_stops_every_job_and_is_idempotent(users):
    _, alice, _ = users
    r = alice.post("/generations/batch", json={"base": {"prompt": "slow", "width": 64, "height": 64,
                                                        "provider": "slow"}, "grid": {"seed": [1, 2, 3]}})
    batch_id = r.json()["batch_id"]
    before = alice.get(f"/batches/{batch_id}").json()
    assert before["done"] is False and before["counts"]["queued"] + before["counts"]["running"] == 3

    canceled = alice.post(f"/batches/{batch_id}/cancel")
    assert canceled.status_code == 200, canceled.text
    body = canceled.json()
    assert body["counts"]["canceled"] == 3 and body["done"] is True and body["progress"] == 1.0
    jobs = alice.get("/jobs", params={"batch_id": batch_id}).json()["items"]
    assert {j["status"] for j in jobs} == {"canceled"}
    assert [j["finished_at"] for j in jobs] == [j["finished_at"] for j in
                                               alice.get("/jobs", params={"batch_id": batch_id}).json()["items"]]

    again = alice.post(f"/batches/{batch_id}/cancel").json()
    assert again["counts"] == body["counts"] and again["job_ids"] == body["job_ids"]
    events = batch_events(alice, batch_id)
    assert [kind for kind, _ in events] == ["snapshot", "done"]
    assert events[-1][1]["counts"]["canceled"] == 3
    assert alice.get("/assets", params={"batch_id": batch_id}).json()["items"] == []


def test_cancel_from_another_client_ends_the_event_stream(users):
    import threading

    _, alice, _ = users
    batch_id = alice.post("/generations/batch", json={
        "base": {"prompt": "slow", "width": 64, "height": 64, "provider": "slow"}, "prompts": ["a", "b"]}
    ).json()["batch_id"]
    other = Api(str(alice.http.base_url).split("/api/v1")[0], ALICE_KEY)
    canceler = threading.Thread(target=lambda: other.post(f"/batches/{batch_id}/cancel"))
    kinds, event, data = [], "message", []
    with alice.http.stream("GET", f"/batches/{batch_id}/events") as resp:
        for line in resp.iter_lines():
            if line == "" and data:
                kinds.append((event, json.loads("\n".join(data))))
                event, data = "message", []
                if len(kinds) == 1:  # the stream is open: cancel from elsewhere
                    canceler.start()
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
    canceler.join(20)
    assert [k for k, _ in kinds][0] == "snapshot" and kinds[-1][0] == "done"
    assert kinds[0][1]["done"] is False
    assert {d["job_id"] for k, d in kinds if k == "canceled"} == set(alice.get(f"/batches/{batch_id}").json()["job_ids"])
    assert kinds[-1][1]["counts"]["canceled"] == 2 and kinds[-1][1]["progress"] == 1.0


def test_list_batches_newest_first_with_cursor_pages(users):
    admin, alice, bob = users
    made = []
    for i in range(3):
        made.append(alice.post("/generations/batch", json={
            "base": {"prompt": f"batch {i}", "width": 64, "height": 64, "provider": "fast"},
            "grid": {"seed": [1, 2]}}).json()["batch_id"])
    bobs = bob.post("/generations/batch", json={"requests": [
        {"prompt": "bob", "width": 64, "height": 64, "provider": "fast"}]}).json()["batch_id"]
    for batch_id in made:
        batch_events(alice, batch_id)  # until done

    first = alice.get("/batches", params={"limit": 2}).json()
    assert [b["id"] for b in first["items"]] == [made[2], made[1]] and first["next_cursor"]
    second = alice.get("/batches", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [b["id"] for b in second["items"]] == [made[0]] and second["next_cursor"] is None
    item = first["items"][0]
    assert item["total"] == 2 and item["counts"]["succeeded"] == 2 and item["progress"] == 1.0 and item["done"]
    assert item["owner"] == "alice" and item["job_ids"] == [] and item["asset_ids"] == []
    everyone = [b["id"] for b in admin.get("/batches").json()["items"]]
    assert set(everyone) == {*made, bobs}
    bad = alice.get("/batches", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "cursor"
    assert alice.get("/batches/nope").status_code == 404


async def test_migration_gives_existing_assets_their_batch(database_url):
    from image_studio.jobs.migrate import upgrade
    from image_studio.jobs.store import AssetFilter, JobStore

    store = JobStore(database_url)
    try:
        await upgrade(store.engine, "0001")
        now = "2026-11-22 01:00:00"
        async with store.engine.begin() as conn:
            for job_id, batch in (("j1", "b1"), ("j2", None)):
                await conn.execute(sa.text(
                    "INSERT INTO image_studio_jobs (id, seq, status, owner, request, request_hash, progress, "
                    "attempts, asset_ids, batch_id, created_at, updated_at) VALUES (:id, 1, 'succeeded', 'alice', "
                    "'{}', 'h', 1.0, '[]', '[]', :batch, :now, :now)"), {"id": job_id, "batch": batch, "now": now})
                await conn.execute(sa.text(
                    "INSERT INTO image_studio_assets (id, job_id, owner, media, mime_type, size_bytes, sha256, path, "
                    "parameters, created_at) VALUES (:id, :job, 'alice', 'image', 'image/png', 1, 's', 'p', '{}', :now)"),
                    {"id": "a-" + job_id, "job": job_id, "now": now})
        await store.open()  # upgrades to the newest revision
        page = await store.list_assets(AssetFilter(batch_id="b1"))
        assert [(a.id, a.batch_id) for a in page.items] == [("a-j1", "b1")]
        assert (await store.get_asset("a-j2")).batch_id is None
    finally:
        await store.close()
