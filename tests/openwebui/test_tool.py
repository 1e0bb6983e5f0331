"""The Image Studio Tool through Open WebUI's own tool machinery (one real Open WebUI for the
session, see conftest.py).

A scripted OpenAI-compatible chat model on loopback (tests/fakes/fake_chat_model.py) answers the
first chat request with a tool call and the second, which carries the tool's result, with a
text. The chat goes through Open WebUI's ``POST /api/chat/completions`` as the UI sends it
(``session_id``, a new chat with its user and assistant message ids, ``tool_ids``), so Open
WebUI loads the Tool from its database, injects ``__request__``/``__user__``/``__metadata__``/
``__event_emitter__`` and calls it in its own process, where it reaches the studio in-process.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from image_studio.config import Settings, StudioConfig
from image_studio.errors import ConfigError, InvalidRequest
from image_studio.openwebui.install import EVERYONE, install_tool
from image_studio.openwebui.plugins import TOOL_ID, plugin_description, plugin_source
from image_studio.openwebui.plugins.runtime import ChatCall, build_request, follow, parse_size
from image_studio.studio import Studio
from image_studio.types import GenerationRequest, JobStatus
from tests.fakes.fake_chat_model import FINAL_PREFIX, MODEL_ID, FakeChatModel, serve

API = "/api/v1/image-studio"
PASSWORD = "Studio-Test-pw-1"
ADMIN_EMAIL = "ada@example.com"  # the first account, shared with test_integration.py
USER_EMAIL = "tia.tool@example.com"
CHAT_TIMEOUT = 120.0
"""Seconds a chat may take to leave its image on the message (bounded polling, not timing)."""


@dataclass
class ChatEnv:
    url: str
    admin: httpx.Client
    user: httpx.Client
    admin_token: str
    user_token: str
    user_id: str
    model: FakeChatModel


def _token(url: str, email: str, name: str, admin: httpx.Client | None = None) -> dict:
    """Sign in ``email``; create it first if it does not exist (signup for the very first
    account, which becomes admin; ``/auths/add`` by the admin for the others)."""
    signin = httpx.post(url + "/api/v1/auths/signin", json={"email": email, "password": PASSWORD}, timeout=30)
    if signin.status_code == 200:
        return signin.json()
    if admin is None:
        made = httpx.post(url + "/api/v1/auths/signup", json={"name": name, "email": email, "password": PASSWORD},
                          timeout=30)
    else:
        made = admin.post("/api/v1/auths/add", json={"name": name, "email": email, "password": PASSWORD,
                                                     "role": "user"})
    assert made.status_code == 200, made.text
    signin = httpx.post(url + "/api/v1/auths/signin", json={"email": email, "password": PASSWORD}, timeout=30)
    assert signin.status_code == 200, signin.text
    return signin.json()


def _bearer(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _ok(response: httpx.Response) -> Any:
    assert response.is_success, (response.status_code, response.text)
    return response.json()


@pytest.fixture(scope="module")
def chat_env(openwebui) -> Iterator[ChatEnv]:
    """Accounts, the studio with a placeholder provider, Open WebUI pointed at the fake chat
    model (shared with every user), and the Tool installed; all restored after the module."""
    url = openwebui.url
    admin_info = _token(url, ADMIN_EMAIL, "Ada Admin")
    assert admin_info["role"] == "admin", admin_info
    admin = _bearer(url, admin_info["token"])
    user_info = _token(url, USER_EMAIL, "Tia Tool", admin=admin)
    user = _bearer(url, user_info["token"])

    images_before = _ok(admin.get("/api/v1/images/config"))
    _ok(admin.post("/api/v1/images/config/update", json={**images_before, "ENABLE_IMAGE_GENERATION": True}))
    studio_before = _ok(admin.get(f"{API}/config"))["config"]
    _ok(admin.put(f"{API}/config", json={"default_provider": "ph", "providers": {
        "ph": {"type": "placeholder"},
        "slow": {"type": "placeholder", "settings": {"delay": 600}},
    }}))
    model = FakeChatModel()
    server = serve(model)
    openai_before = _ok(admin.get("/openai/config"))
    try:
        _ok(admin.post("/openai/config/update", json={
            "ENABLE_OPENAI_API": True, "OPENAI_API_BASE_URLS": [server.url + "/v1"], "OPENAI_API_KEYS": ["sk-fake"],
            "OPENAI_API_CONFIGS": {"0": {"enable": True}}}))
        _ok(admin.post("/api/v1/models/create", json={
            "id": MODEL_ID, "base_model_id": None, "name": "Fake tool caller", "meta": {}, "params": {},
            "access_grants": EVERYONE}))
        install_tool(url, admin_info["token"])
        listed = {m["id"] for m in _ok(user.get("/api/models"))["data"]}
        assert MODEL_ID in listed, listed
        yield ChatEnv(url=url, admin=admin, user=user, admin_token=admin_info["token"],
                      user_token=user_info["token"], user_id=user_info["id"], model=model)
    finally:
        admin.post("/api/v1/models/model/delete", json={"id": MODEL_ID})
        admin.delete(f"/api/v1/tools/id/{TOOL_ID}/delete")
        admin.post("/openai/config/update", json=openai_before)
        admin.put(f"{API}/config", json=studio_before)
        admin.post("/api/v1/images/config/update", json=images_before)
        server.stop()
        admin.close()
        user.close()


def start_chat(client: httpx.Client, text: str, files: list[dict] | None = None) -> tuple[str, str, list[str]]:
    """A new chat sent as the UI sends it (``files``: attached to the user message). Returns
    (chat id, assistant message id, task ids)."""
    user_message_id, assistant_id = str(uuid.uuid4()), str(uuid.uuid4())
    body = {
        "model": MODEL_ID, "stream": True, "tool_ids": [TOOL_ID], "features": {},
        "messages": [{"role": "user", "content": text}],
        "parent_id": None, "id": assistant_id, "session_id": "test-session-" + uuid.uuid4().hex[:8],
        "user_message": {"id": user_message_id, "parentId": None, "childrenIds": [], "role": "user",
                         "content": text, "timestamp": int(time.time()), "models": [MODEL_ID],
                         **({"files": files} if files else {})},
        **({"files": files} if files else {}),
    }
    answer = _ok(client.post("/api/chat/completions", json=body))
    assert answer.get("status") is True and answer.get("chat_id"), answer
    return answer["chat_id"], assistant_id, answer.get("task_ids") or []


def wait_for_message(client: httpx.Client, chat_id: str, message_id: str, ready) -> dict:  # noqa: ANN001
    """Poll the chat until ``ready(message)``; fail after :data:`CHAT_TIMEOUT` s with the message."""
    deadline = time.monotonic() + CHAT_TIMEOUT
    message: dict = {}
    while time.monotonic() < deadline:
        chat = _ok(client.get(f"/api/v1/chats/{chat_id}"))["chat"]
        message = chat.get("history", {}).get("messages", {}).get(message_id) or {}
        if ready(message):
            return message
        time.sleep(0.3)
    pytest.fail(f"the chat message did not get there within {CHAT_TIMEOUT:g} s: {message}")


def studio_jobs(client: httpx.Client) -> list[dict]:
    return _ok(client.get(f"{API}/jobs"))["items"]


def test_the_installer_creates_then_updates_the_tool_shared_with_everyone(chat_env):
    again = install_tool(chat_env.url, chat_env.admin_token)  # the fixture created it
    assert again.action == "updated"
    tool = _ok(chat_env.admin.get(f"/api/v1/tools/id/{TOOL_ID}"))
    grants = [(g["principal_type"], g["principal_id"], g["permission"]) for g in tool["access_grants"]]
    assert grants == [("user", "*", "read")]
    assert tool["meta"]["manifest"]["title"] == "Image Studio"
    exported = {t["id"]: t for t in _ok(chat_env.admin.get("/api/v1/tools/export"))}
    specs = {s["name"]: s for s in exported[TOOL_ID]["specs"]}
    assert {"generate_image", "edit_image", "generate_video"} <= set(specs)
    params = specs["generate_image"]["parameters"]
    assert params["required"] == ["prompt"] and "size" in params["properties"]
    assert not [p for p in params["properties"] if p.startswith("__")]
    assert tool_visible_to(chat_env.user)
    with pytest.raises(ConfigError) as refused:
        install_tool(chat_env.url, chat_env.user_token)  # a user may read the tool, not change it
    assert refused.value.field == "token"


def tool_visible_to(client: httpx.Client) -> bool:
    return TOOL_ID in {t["id"] for t in _ok(client.get("/api/v1/tools/"))}


def test_a_tool_call_in_chat_leaves_the_image_on_the_message(chat_env):
    chat_env.model.arguments = {"prompt": "a red fox", "size": "64x64", "seed": 42}
    before = {j["id"] for j in studio_jobs(chat_env.user)}
    chat_id, message_id, _ = start_chat(chat_env.user, "Draw me a red fox")

    message = wait_for_message(chat_env.user, chat_id, message_id,
                               lambda m: m.get("files") and FINAL_PREFIX in (m.get("content") or ""))
    images = [f for f in message["files"] if f.get("type") == "image"]
    assert len(images) == 1, message["files"]
    content = chat_env.user.get(f"/api/v1/files/{images[0]['id']}/content")
    assert content.status_code == 200 and content.content.startswith(b"\x89PNG")
    meta = _ok(chat_env.user.get(f"/api/v1/files/{images[0]['id']}"))["meta"]["data"]
    assert meta["chat_id"] == chat_id and meta["message_id"] == message_id
    assert meta["image_studio"]["prompt"] == "a red fox" and meta["image_studio"]["seed"] == 42

    jobs = [j for j in studio_jobs(chat_env.user) if j["id"] not in before]
    assert len(jobs) == 1, jobs
    job = jobs[0]
    assert job["status"] == "succeeded" and job["owner"] == chat_env.user_id
    assert job["request"]["prompt"] == "a red fox" and (job["request"]["width"], job["request"]["height"]) == (64, 64)
    said = chat_env.model.tool_results()[-1]
    assert "Generated 1 image of 'a red fox' (seed 42) with ph" in said
    assert "Generated 1 image of 'a red fox'" in message["content"]  # the model's final answer, in the chat


def test_a_user_without_the_image_permission_gets_a_refusal_and_no_job(chat_env):
    before = _ok(chat_env.admin.get("/api/v1/users/default/permissions"))
    denied = {**before, "features": {**before["features"], "image_generation": False}}
    _ok(chat_env.admin.post("/api/v1/users/default/permissions", json=denied))
    try:
        chat_env.model.arguments = {"prompt": "a forbidden fox", "size": "64x64"}
        jobs_before = {j["id"] for j in studio_jobs(chat_env.user)}
        chat_id, message_id, _ = start_chat(chat_env.user, "Draw a forbidden fox")
        message = wait_for_message(chat_env.user, chat_id, message_id,
                                   lambda m: FINAL_PREFIX in (m.get("content") or ""))
    finally:
        _ok(chat_env.admin.post("/api/v1/users/default/permissions", json=before))
    said = chat_env.model.tool_results()[-1]
    assert "could not be generated" in said and "features.image_generation" in said
    assert not message.get("files")
    assert {j["id"] for j in studio_jobs(chat_env.user)} == jobs_before


def test_stopping_the_chat_cancels_the_studio_job(chat_env):
    chat_env.model.arguments = {"prompt": "a very slow fox", "size": "64x64", "provider": "slow"}
    before = {j["id"] for j in studio_jobs(chat_env.user)}
    chat_id, _, _ = start_chat(chat_env.user, "Draw a very slow fox")

    deadline = time.monotonic() + CHAT_TIMEOUT
    job: dict = {}
    while time.monotonic() < deadline and job.get("status") != "running":
        new = [j for j in studio_jobs(chat_env.user) if j["id"] not in before]
        job = new[0] if new else {}
        time.sleep(0.2)
    assert job.get("status") == "running", job

    _ok(chat_env.user.post(f"/api/tasks/chat/{chat_id}/stop"))  # the UI's stop button
    while time.monotonic() < deadline and job["status"] == "running":
        job = _ok(chat_env.user.get(f"{API}/jobs/{job['id']}"))
        time.sleep(0.2)
    assert job["status"] == "canceled", job


# In-process units of the plugin runtime (no Open WebUI needed) ---------------------------------


def test_tool_arguments_become_a_generation_request():
    req = build_request(prompt=" a fox ", size="640x480", n=9, provider="", workflow="", seed=-1, max_n=4,
                        defaults={"provider": "comfy", "workflow": "portrait"})
    assert (req.prompt, req.width, req.height, req.n) == ("a fox", 640, 480, 4)
    assert (req.provider, req.workflow, req.seed) == ("comfy", "portrait", None)
    assert build_request(prompt="x", size="8X8", n=1, provider="ph", workflow="", seed=7, max_n=4).seed == 7
    for bad in ("large", "0x512", "512"):
        with pytest.raises(InvalidRequest) as err:
            parse_size(bad)
        assert err.value.field == "size"
    with pytest.raises(InvalidRequest) as err:
        build_request(prompt="  ", size="64x64", n=1, provider="", workflow="", seed=-1, max_n=4)
    assert err.value.field == "prompt"


def test_the_tool_source_has_open_webui_front_matter_and_no_rewritten_imports():
    source = plugin_source(TOOL_ID)
    assert source.splitlines()[0] == '"""' and "title: Image Studio" in source
    assert plugin_description(source).startswith("Generate and edit images")
    # Open WebUI rewrites these prefixes in plugin text (utils/plugin.py replace_imports)
    assert not [p for p in ("from utils", "from apps", "from main", "from config") if p in source]


class Recorder:
    """An ``__event_emitter__`` that keeps the events and can wait for a status text."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.seen = asyncio.Event()
        self.wanted = ""

    async def __call__(self, event: dict) -> None:
        self.events.append(event)
        if self.wanted and self.wanted in event.get("data", {}).get("description", ""):
            self.seen.set()

    def lines(self) -> list[str]:
        return [e["data"]["description"] for e in self.events if e["type"] == "status"]


def _studio(tmp_path, delay: float) -> Studio:
    config = StudioConfig.model_validate({"default_provider": "ph",
                                          "providers": {"ph": {"type": "placeholder", "settings": {"delay": delay}}}})
    return Studio(Settings(data_dir=tmp_path, secret_key="k"), config=config)


async def test_follow_turns_studio_events_into_status_lines(tmp_path):
    recorder = Recorder()
    async with _studio(tmp_path, 0.3) as studio:
        job = await studio.submit(GenerationRequest(prompt="p", width=64, height=64), owner="u1")
        job = await follow(studio, job, ChatCall(request=None, user={}, emitter=recorder), owner="u1",
                           wait_seconds=60, noun="image")
    assert job.status is JobStatus.succeeded
    lines = recorder.lines()
    assert any(line.startswith("Generating the image") for line in lines), lines
    percents = [int(line.rsplit(" ", 1)[1].rstrip("%")) for line in lines if line.endswith("%")]
    assert percents == sorted(percents) and len(percents) <= 11, percents  # at most one line per 10 %


async def test_a_canceled_chat_cancels_the_studio_job(tmp_path):
    recorder = Recorder()
    recorder.wanted = "Generating the image"
    async with _studio(tmp_path, 600) as studio:
        job = await studio.submit(GenerationRequest(prompt="p", width=64, height=64), owner="u1")
        call = ChatCall(request=None, user={}, emitter=recorder)
        task = asyncio.create_task(follow(studio, job, call, owner="u1", wait_seconds=600, noun="image"))
        await asyncio.wait_for(recorder.seen.wait(), 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await studio.get_job(job.id)).status is JobStatus.canceled
    assert recorder.lines()[-1] == "Stopped: the image was canceled"
    assert recorder.events[-1]["data"]["done"] is True


def _png(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_edit_image_uses_the_image_attached_to_the_chat(chat_env):
    uploaded = _ok(chat_env.user.post("/api/v1/files/", params={"process": "false"},
                                      files={"file": ("fox.png", _png(48, 32), "image/png")}))
    attached = {"type": "image", "id": uploaded["id"], "url": f"/api/v1/files/{uploaded['id']}/content"}
    chat_env.model.tool_name, chat_env.model.arguments = "edit_image", {"prompt": "the fox in winter"}
    before = {j["id"] for j in studio_jobs(chat_env.user)}
    try:
        chat_id, message_id, _ = start_chat(chat_env.user, "Make it winter", files=[attached])
        message = wait_for_message(chat_env.user, chat_id, message_id,
                                   lambda m: m.get("files") and FINAL_PREFIX in (m.get("content") or ""))
    finally:
        chat_env.model.tool_name = "generate_image"
    jobs = [j for j in studio_jobs(chat_env.user) if j["id"] not in before]
    assert len(jobs) == 1 and jobs[0]["status"] == "succeeded", jobs
    request = _ok(chat_env.user.get(f"{API}/jobs/{jobs[0]['id']}"))["request"]
    assert (request["width"], request["height"]) == (48, 32)  # the source image's size is kept
    assert request.get("init_image") or request.get("init_image_bytes")  # image to image
    assert "Generated 1 image of 'the fox in winter'" in chat_env.model.tool_results()[-1]
    assert [f for f in message["files"] if f.get("type") == "image"]
