"""The Image Studio Pipe (image models in the model picker) and Action (a message button)
through Open WebUI's own function machinery (one real Open WebUI for the session, see
conftest.py).

The installer creates both functions through Open WebUI's admin API; the chat goes through
``POST /api/chat/completions`` as the UI sends it (``stream``, ``session_id``, a new chat with
its user and assistant message ids), so Open WebUI calls ``Pipe.pipe`` in its own process; the
Action goes through ``POST /api/chat/actions/{id}`` as the message button sends it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from image_studio.errors import ConfigError
from image_studio.openwebui.install import install_function, install_functions
from image_studio.openwebui.plugins import ACTION_ID, PIPE_ID, function_source, plugin_description
from image_studio.openwebui.plugins.chat_models import last_user_text, message_text, task_answer
from tests.openwebui.test_tool import ADMIN_EMAIL, API, _bearer, _ok, _token, studio_jobs, wait_for_message

USER_EMAIL = "pia.pipe@example.com"
PH_MODEL = f"{PIPE_ID}.provider.ph"


@dataclass
class PipeEnv:
    url: str
    admin: httpx.Client
    user: httpx.Client
    admin_token: str
    user_token: str
    user_id: str


@pytest.fixture(scope="module")
def pipe_env(openwebui) -> Iterator[PipeEnv]:
    """Accounts, the studio with a placeholder provider ``ph``, image generation on, and the
    Pipe and the Action installed; the functions, their model entries and the settings are
    restored after the module."""
    url = openwebui.url
    admin_info = _token(url, ADMIN_EMAIL, "Ada Admin")
    assert admin_info["role"] == "admin", admin_info
    admin = _bearer(url, admin_info["token"])
    user_info = _token(url, USER_EMAIL, "Pia Pipe", admin=admin)
    user = _bearer(url, user_info["token"])
    images_before = _ok(admin.get("/api/v1/images/config"))
    studio_before = _ok(admin.get(f"{API}/config"))["config"]
    shared: list[str] = []
    try:
        _ok(admin.post("/api/v1/images/config/update", json={**images_before, "ENABLE_IMAGE_GENERATION": True}))
        _ok(admin.put(f"{API}/config", json={"default_provider": "ph", "providers": {"ph": {"type": "placeholder"}}}))
        results = install_functions(url, admin_info["token"])
        shared = [m for r in results for m in r.models]
        assert [(r.id, r.action) for r in results] == [(PIPE_ID, "created"), (ACTION_ID, "created")]
        yield PipeEnv(url=url, admin=admin, user=user, admin_token=admin_info["token"],
                      user_token=user_info["token"], user_id=user_info["id"])
    finally:
        for model_id in set(shared) | {PH_MODEL}:
            admin.post("/api/v1/models/model/delete", json={"id": model_id})
        for function_id in (PIPE_ID, ACTION_ID):
            admin.delete(f"/api/v1/functions/id/{function_id}/delete")
        admin.put(f"{API}/config", json=studio_before)
        admin.post("/api/v1/images/config/update", json=images_before)
        admin.close()
        user.close()


def test_the_installer_turns_the_functions_on_and_updates_them_in_place(pipe_env):
    pipe = install_function(pipe_env.url, pipe_env.admin_token, PIPE_ID)  # the fixture created both
    action = install_function(pipe_env.url, pipe_env.admin_token, ACTION_ID)
    assert (pipe.action, pipe.is_active, pipe.is_global) == ("updated", True, False)
    assert (action.action, action.is_active, action.is_global) == ("updated", True, True)  # not toggled back
    assert PH_MODEL in pipe.models
    stored = {f["id"]: f for f in _ok(pipe_env.admin.get("/api/v1/functions/"))}
    assert stored[PIPE_ID]["type"] == "pipe" and stored[ACTION_ID]["type"] == "action"
    assert stored[ACTION_ID]["is_global"] and stored[PIPE_ID]["is_active"]
    with pytest.raises(ConfigError) as refused:
        install_function(pipe_env.url, pipe_env.user_token, PIPE_ID)
    assert refused.value.field == "token"


def test_the_pipe_models_are_listed_for_a_user(pipe_env):
    models = {m["id"]: m for m in _ok(pipe_env.user.get("/api/models"))["data"]}
    assert PH_MODEL in models, sorted(models)
    assert models[PH_MODEL]["pipe"]["type"] == "pipe"
    assert not [m for m in models if m.startswith(f"{PIPE_ID}.workflow.")]  # no ComfyUI provider to run them
    actions = {a["id"] for a in models[PH_MODEL].get("actions") or []}
    assert ACTION_ID in actions  # the global Action is under every message


def _chat_body(model: str, text: str) -> tuple[dict, str]:
    user_message_id, assistant_id = str(uuid.uuid4()), str(uuid.uuid4())
    return {
        "model": model, "stream": True, "features": {}, "messages": [{"role": "user", "content": text}],
        "parent_id": None, "id": assistant_id, "session_id": "test-session-" + uuid.uuid4().hex[:8],
        "user_message": {"id": user_message_id, "parentId": None, "childrenIds": [], "role": "user",
                         "content": text, "timestamp": int(time.time()), "models": [model]},
    }, assistant_id


def _image_on(client: httpx.Client, message: dict) -> dict:
    images = [f for f in message.get("files") or [] if f.get("type") == "image"]
    assert len(images) == 1, message.get("files")
    content = client.get(f"/api/v1/files/{images[0]['id']}/content")
    assert content.status_code == 200 and content.content.startswith(b"\x89PNG")
    return _ok(client.get(f"/api/v1/files/{images[0]['id']}"))["meta"]["data"]


def test_a_chat_with_a_pipe_model_leaves_the_image_on_the_assistant_message(pipe_env):
    before = {j["id"] for j in studio_jobs(pipe_env.user)}
    body, message_id = _chat_body(PH_MODEL, "a lighthouse at dusk")
    answer = _ok(pipe_env.user.post("/api/chat/completions", json=body))
    chat_id = answer["chat_id"]

    message = wait_for_message(pipe_env.user, chat_id, message_id,
                               lambda m: m.get("files") and "Generated the image" in (m.get("content") or ""))
    meta = _image_on(pipe_env.user, message)
    assert meta["chat_id"] == chat_id and meta["message_id"] == message_id
    assert meta["image_studio"]["prompt"] == "a lighthouse at dusk"
    assert "*a lighthouse at dusk*" in message["content"] and "**ph**" in message["content"]
    jobs = [j for j in studio_jobs(pipe_env.user) if j["id"] not in before]
    assert len(jobs) == 1, jobs  # Open WebUI's title task did not make a second image
    assert jobs[0]["status"] == "succeeded" and jobs[0]["owner"] == pipe_env.user_id
    assert jobs[0]["provider"] == "ph" and jobs[0]["request"]["width"] == 1024


def test_the_action_attaches_an_image_made_from_the_message_text(pipe_env):
    message_id = str(uuid.uuid4())
    message = {"id": message_id, "parentId": None, "childrenIds": [], "role": "assistant",
               "content": "A green owl on a birch branch", "timestamp": int(time.time()), "model": PH_MODEL}
    chat = _ok(pipe_env.user.post("/api/v1/chats/new", json={"chat": {
        "title": "owl", "models": [PH_MODEL], "messages": [message],
        "history": {"messages": {message_id: message}, "currentId": message_id}}}))
    before = {j["id"] for j in studio_jobs(pipe_env.user)}

    result = _ok(pipe_env.user.post(f"/api/chat/actions/{ACTION_ID}", json={
        "model": PH_MODEL, "chat_id": chat["id"], "id": message_id, "session_id": "test-session-action",
        "messages": [message]}))

    assert result["status"] == "ok" and "A green owl" in result["message"], result
    saved = _ok(pipe_env.user.get(f"/api/v1/chats/{chat['id']}"))["chat"]["history"]["messages"][message_id]
    meta = _image_on(pipe_env.user, saved)
    assert meta["message_id"] == message_id and meta["image_studio"]["prompt"] == "A green owl on a birch branch"
    jobs = [j for j in studio_jobs(pipe_env.user) if j["id"] not in before]
    assert len(jobs) == 1 and jobs[0]["owner"] == pipe_env.user_id, jobs


# In-process units (no Open WebUI needed) ---------------------------------------------------------


def test_the_function_sources_have_front_matter_and_the_right_class():
    pipe, action = function_source(PIPE_ID), function_source(ACTION_ID)
    assert "class Pipe:" in pipe and "async def pipes(self)" in pipe and "async def pipe(self" in pipe
    assert "class Action:" in action and "async def action(self" in action
    assert plugin_description(action).startswith("A message button")
    for source in (pipe, action):
        assert not [p for p in ("from utils", "from apps", "from main", "from config") if p in source]


def test_prompts_come_from_the_last_user_message_and_tasks_get_a_title():
    messages = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "text", "text": "a cat"},
                                             {"type": "image_url", "image_url": {"url": "data:"}}]}]
    assert last_user_text(messages) == "a cat"
    assert last_user_text([{"role": "assistant", "content": "x"}]) == ""
    assert message_text({"content": "  spaced  "}) == "spaced"
    assert '"title": "a cat"' in task_answer(messages)
