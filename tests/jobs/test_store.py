"""JobStore on SQLite (and PostgreSQL where reachable) through the real migrations."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa

from image_studio.errors import Conflict, InvalidRequest, NotFound
from image_studio.jobs.store import AssetFilter, JobStore, new_id, normalise_database_url
from image_studio.types import Asset, Attempt, GenerationRequest, Job, JobStatus, MediaKind, utcnow




@pytest.fixture
async def store(database_url):
    """The store on SQLite (the default) and on the real PostgreSQL (the scaled-out mode), in
    a schema of its own that is dropped afterwards (``database_url`` in tests/conftest.py)."""
    s = JobStore(database_url)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def make_job(owner="alice", key=None, prompt="a fox", **kw) -> Job:
    return Job(id=new_id(), owner=owner, idempotency_key=key, request=GenerationRequest(prompt=prompt, **kw))


def make_asset(owner="alice", prompt="a red fox", sha="a" * 64, created=None, **kw) -> Asset:
    return Asset(id=new_id(), owner=owner, provider="placeholder", mime_type="image/png", size_bytes=10,
                 sha256=sha, path=f"placeholder/aa/{sha}.png", prompt=prompt, created_at=created or utcnow(),
                 seed=2**64 - 1, **kw)


async def test_migrations_create_prefixed_tables_and_own_version_table(store):
    async with store.engine.connect() as conn:
        names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        version = (await conn.exec_driver_sql("SELECT version_num FROM image_studio_alembic_version")).scalar_one()
    assert set(names) == {"image_studio_jobs", "image_studio_assets", "image_studio_settings",
                          "image_studio_workflows", "image_studio_templates", "image_studio_alembic_version"}
    from alembic.script import ScriptDirectory

    from image_studio.jobs.migrate import alembic_config

    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert heads == [version]  # one line of migrations, all applied
    await store.open()  # running them again is a no-op


async def test_job_round_trip_with_attempts(store):
    job = make_job(width=512, height=768)
    stored, created = await store.create_job(job)
    assert created
    attempt = Attempt(provider="comfy", backend="http://127.0.0.1:8188", outcome="failed", error_type="ProviderUnavailable")
    assert await store.update_job(job.id, status=JobStatus.running, attempts=[attempt], progress=0.5)
    got = await store.get_job(job.id)
    assert got.status is JobStatus.running and got.progress == 0.5
    assert got.attempts[0].error_type == "ProviderUnavailable"
    assert got.request.width == 512 and got.created_at.tzinfo is not None


async def test_compare_and_set_on_status(store):
    job, _ = await store.create_job(make_job())
    assert await store.update_job(job.id, status=JobStatus.running, only_if_status={JobStatus.queued})
    assert not await store.update_job(job.id, status=JobStatus.running, only_if_status={JobStatus.queued})


async def test_idempotency_same_body_same_job_other_body_conflict(store):
    first, created = await store.create_job(make_job(key="k1"))
    again, created_again = await store.create_job(make_job(key="k1"))
    assert created and not created_again and again.id == first.id
    with pytest.raises(Conflict) as info:
        await store.create_job(make_job(key="k1", prompt="another"))
    assert info.value.field == "Idempotency-Key"
    other_owner, created_other = await store.create_job(make_job(owner="bob", key="k1"))
    assert created_other and other_owner.id != first.id


async def test_concurrent_idempotent_creates_make_one_job(store):
    results = await asyncio.gather(*(store.create_job(make_job(key="race")) for _ in range(5)))
    assert len({job.id for job, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_unknown_job_is_not_found(store):
    with pytest.raises(NotFound) as info:
        await store.get_job("nope")
    assert info.value.field == "job_id"


async def test_job_pages_by_cursor_and_owner(store):
    for i in range(5):
        await store.create_job(make_job(prompt=f"p{i}"))
    await store.create_job(make_job(owner="bob"))
    page1 = await store.list_jobs(owner="alice", limit=2)
    page2 = await store.list_jobs(owner="alice", limit=2, cursor=page1.next_cursor)
    page3 = await store.list_jobs(owner="alice", limit=2, cursor=page2.next_cursor)
    prompts = [j.request.prompt for j in page1.items + page2.items + page3.items]
    assert prompts == ["p4", "p3", "p2", "p1", "p0"]
    assert page3.next_cursor is None
    assert len((await store.list_jobs(limit=50)).items) == 6
    with pytest.raises(InvalidRequest) as info:
        await store.list_jobs(cursor="!!!not-a-cursor")
    assert info.value.field == "cursor"


async def test_asset_filters_and_shared_bytes(store):
    now = utcnow()
    a1 = make_asset(prompt="A Red Fox", created=now - timedelta(minutes=2))
    a2 = make_asset(prompt="a blue whale", created=now - timedelta(minutes=1), sha="b" * 64, media=MediaKind.video)
    a3 = make_asset(owner="bob", prompt="red car", created=now)
    for a in (a1, a2, a3):
        await store.add_asset(a)
    assert [a.id for a in (await store.list_assets(AssetFilter(prompt="red"))).items] == [a3.id, a1.id]
    assert [a.id for a in (await store.list_assets(AssetFilter(owner="alice", prompt="RED"))).items] == [a1.id]
    assert [a.id for a in (await store.list_assets(AssetFilter(media=MediaKind.video))).items] == [a2.id]
    assert [a.id for a in (await store.list_assets(AssetFilter(created_after=now - timedelta(seconds=90)))).items] == [a3.id, a2.id]
    got = await store.get_asset(a1.id)
    assert got.seed == 2**64 - 1
    _, last = await store.delete_asset(a1.id)
    assert not last  # a3 shares the bytes
    _, last = await store.delete_asset(a3.id)
    assert last


async def test_settings_round_trip(store):
    assert await store.get_setting("config") is None
    await store.put_setting("config", {"a": 1})
    await store.put_setting("config", {"a": 2})
    assert await store.get_setting("config") == {"a": 2}


def test_database_urls_are_normalised_for_psycopg3():
    assert normalise_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_database_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert normalise_database_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
