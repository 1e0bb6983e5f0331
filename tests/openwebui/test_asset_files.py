"""Studio assets as Open WebUI files (image_studio/openwebui/files.py), on the session's real
Open WebUI (conftest.py), plus in-process units of the core hooks (no Open WebUI needed).

The Open WebUI tests reuse test_tool.py's module fixture ``chat_env`` (accounts, a placeholder
provider ``ph``, the fake tool-calling chat model, the Tool installed): this module gets its
own instance of it, set up and restored around this module.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from image_studio.api.openai_facade.translate import with_chat_context
from image_studio.config import Settings, StudioConfig
from image_studio.studio import Studio
from image_studio.types import GenerationRequest, JobStatus
from tests.fakes.fake_chat_model import FINAL_PREFIX
from tests.openwebui.test_tool import API, _ok, chat_env, start_chat, wait_for_message  # noqa: F401 - a fixture

WAIT = {"Prefer": "wait=60"}


def generate(client: httpx.Client, **fields) -> dict:
    """One studio generation through its own API, waited for; returns the job (succeeded)."""
    body = {"width": 64, "height": 64, "provider": "ph", **fields}
    job = _ok(client.post(f"{API}/generations", json=body, headers=WAIT))
    assert job["status"] == "succeeded", job
    return job


def user_files(client: httpx.Client) -> dict[str, dict]:
    """The caller's Open WebUI files by id (``GET /api/v1/files/``, first page)."""
    return {f["id"]: f for f in _ok(client.get("/api/v1/files/", params={"content": "false"}))["items"]}


def test_a_studio_generation_is_an_open_webui_file_of_its_user_until_the_asset_is_deleted(chat_env):
    job = generate(chat_env.user, prompt="a blue heron", seed=7)
    asset_id = job["asset_ids"][0]
    asset = _ok(chat_env.user.get(f"{API}/assets/{asset_id}"))
    file_id = asset["parameters"]["openwebui_file_id"]

    listed = user_files(chat_env.user)
    assert file_id in listed and listed[file_id]["user_id"] == chat_env.user_id
    meta = listed[file_id]["meta"]["data"]
    assert meta["image_studio"]["asset_id"] == asset_id and meta["image_studio"]["job_id"] == job["id"]
    assert meta["image_studio"]["prompt"] == "a blue heron" and meta["image_studio"]["seed"] == 7
    assert meta["image_studio"]["parameters"]["provider"] == "ph"
    assert "chat_id" not in meta  # not from a chat: linked to none
    content = chat_env.user.get(f"/api/v1/files/{file_id}/content")
    assert content.status_code == 200
    assert content.content == chat_env.user.get(f"{API}/assets/{asset_id}/content").content

    assert chat_env.user.delete(f"{API}/assets/{asset_id}").status_code == 204
    assert chat_env.user.get(f"/api/v1/files/{file_id}").status_code == 404
    assert file_id not in user_files(chat_env.user)


def _new_chat(client: httpx.Client) -> str:
    chat = _ok(client.post("/api/v1/chats/new", json={"chat": {"title": "files", "messages": [], "history": {}}}))
    return chat["id"]


def test_a_generation_from_a_chat_links_its_file_to_that_chat_only_for_its_owner(chat_env):
    own_chat, message_id = _new_chat(chat_env.user), str(uuid.uuid4())
    job = generate(chat_env.user, prompt="a linked heron",
                   extra={"openwebui": {"chat_id": own_chat, "message_id": message_id}})
    file_id = _ok(chat_env.user.get(f"{API}/assets/{job['asset_ids'][0]}"))["parameters"]["openwebui_file_id"]
    meta = _ok(chat_env.user.get(f"/api/v1/files/{file_id}"))["meta"]["data"]
    assert (meta["chat_id"], meta["message_id"]) == (own_chat, message_id)

    others_chat = _new_chat(chat_env.admin)  # another user's chat is never linked to
    job = generate(chat_env.user, prompt="an intruding heron",
                   extra={"openwebui": {"chat_id": others_chat, "message_id": message_id}})
    file_id = _ok(chat_env.user.get(f"{API}/assets/{job['asset_ids'][0]}"))["parameters"]["openwebui_file_id"]
    assert "chat_id" not in _ok(chat_env.user.get(f"/api/v1/files/{file_id}"))["meta"]["data"]


def test_an_image_made_by_the_tool_is_uploaded_once(chat_env):
    chat_env.model.arguments = {"prompt": "a single fox", "size": "64x64", "seed": 3}
    before = set(user_files(chat_env.user))
    chat_id, message_id, _ = start_chat(chat_env.user, "Draw one fox")
    message = wait_for_message(chat_env.user, chat_id, message_id,
                               lambda m: m.get("files") and FINAL_PREFIX in (m.get("content") or ""))
    new = set(user_files(chat_env.user)) - before
    assert len(new) == 1, new  # one asset, one file: the hook's, reused by the Tool
    images = [f for f in message["files"] if f.get("type") == "image"]
    assert [f["id"] for f in images] == list(new)
    meta = _ok(chat_env.user.get(f"/api/v1/files/{images[0]['id']}"))["meta"]["data"]
    assert (meta["chat_id"], meta["message_id"]) == (chat_id, message_id)
    asset = _ok(chat_env.user.get(f"{API}/assets/{meta['image_studio']['asset_id']}"))
    assert asset["parameters"]["openwebui_file_id"] == images[0]["id"]


# In-process units of the core hooks (no Open WebUI) -------------------------------------------


def _studio(tmp_path) -> Studio:
    config = StudioConfig.model_validate({"default_provider": "ph", "providers": {"ph": {"type": "placeholder"}}})
    return Studio(Settings(data_dir=tmp_path, secret_key="k"), config=config)


async def test_asset_hooks_run_before_the_end_is_published_and_never_fail_the_job(tmp_path):
    seen: list[tuple[str, list[str]]] = []
    deleted: list[str] = []

    async def broken(job, assets):
        raise RuntimeError("host down")

    async def record(job, assets):
        seen.append((job.id, [a.id for a in assets]))
        await studio.store.update_asset_parameters(assets[0].id, {"host_file": "f1"})

    async def on_delete(asset):
        deleted.append(asset.parameters["host_file"])

    async with _studio(tmp_path) as studio:
        studio.asset_hooks += [broken, record]
        studio.asset_delete_hooks.append(on_delete)
        job = await studio.submit(GenerationRequest(prompt="p", width=64, height=64), owner="u1")
        job = await studio.wait(job.id, 60)
        assert job.status is JobStatus.succeeded
        assert seen == [(job.id, job.asset_ids)]  # done already when wait() returned
        asset = await studio.get_asset(job.asset_ids[0])
        assert asset.parameters["host_file"] == "f1" and asset.parameters["provider"] == "ph"
        await studio.delete_asset(asset.id, owner="u1")
    assert deleted == ["f1"]


async def test_host_keys_of_extra_stay_on_the_job_but_never_reach_the_provider(tmp_path):
    async with _studio(tmp_path) as studio:
        studio.host_extra_keys.add("openwebui")
        sent: list[dict] = []
        run = studio.orchestrator.run

        async def spy(request, **kwargs):
            sent.append(dict(request.extra))
            return await run(request, **kwargs)

        studio.orchestrator.run = spy
        request = GenerationRequest(prompt="p", width=64, height=64, extra={"openwebui": {"chat_id": "c"}, "k": 1})
        job = await studio.wait((await studio.submit(request)).id, 60)
    assert job.status is JobStatus.succeeded and sent == [{"k": 1}]
    assert job.request.extra["openwebui"] == {"chat_id": "c"}


def test_the_facade_reads_open_webui_chat_headers_only_when_the_host_keeps_them():
    request = GenerationRequest(prompt="p")
    headers = httpx.Headers({"x-openwebui-chat-id": "c1", "X-OpenWebUI-Message-Id": "m1"})
    assert with_chat_context(request, headers, set()) is request  # standalone: nothing added
    got = with_chat_context(request, headers, {"openwebui"})
    assert got.extra == {"openwebui": {"chat_id": "c1", "message_id": "m1"}}
    assert with_chat_context(request, httpx.Headers({}), {"openwebui"}) is request
