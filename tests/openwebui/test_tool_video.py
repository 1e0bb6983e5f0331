"""The Tool's ``generate_video`` through Open WebUI's own tool calling, on a fake ComfyUI.

The fake ComfyUI (tests/fakes/comfyui_server.py) runs in this test process on 127.0.0.1; the
studio inside the session's Open WebUI (see conftest.py) reaches it over loopback through a
``comfyui`` provider added with the studio's ``PUT /config`` (restored after). The scripted chat
model calls ``generate_video`` with the shipped weight-free video template (EmptyImage ->
ImageInvert -> SaveWEBM), so the job makes a real VP9 WebM, which must end up as a studio video
asset of the user and as a file on the chat message.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.comfyui_server import FakeComfyUI
from tests.fakes.fake_chat_model import FINAL_PREFIX
from tests.openwebui.test_tool import API, _ok, chat_env, start_chat, studio_jobs, wait_for_message  # noqa: F401

COMFY_ID = "comfy_video"
WEBM_MAGIC = b"\x1a\x45\xdf\xa3"
"""The EBML header that starts every WebM (Matroska) file."""


@pytest.fixture
def comfy_provider(chat_env) -> Iterator[FakeComfyUI]:  # noqa: F811
    """A fake ComfyUI, added to the studio as provider :data:`COMFY_ID`; config restored after."""
    with FakeComfyUI() as fake:
        before = _ok(chat_env.admin.get(f"{API}/config"))["config"]
        providers = {**before.get("providers", {}),
                     COMFY_ID: {"type": "comfyui", "backends": [{"url": fake.url}]}}
        _ok(chat_env.admin.put(f"{API}/config", json={**before, "providers": providers}))
        try:
            yield fake
        finally:
            _ok(chat_env.admin.put(f"{API}/config", json=before))


def test_a_video_tool_call_leaves_the_webm_on_the_message(chat_env, comfy_provider):  # noqa: F811
    chat_env.model.tool_name = "generate_video"
    chat_env.model.arguments = {"prompt": "waves", "size": "64x48", "provider": COMFY_ID,
                                "workflow": "weightfree_video"}
    before = {j["id"] for j in studio_jobs(chat_env.user)}
    try:
        chat_id, message_id, _ = start_chat(chat_env.user, "Make a video of waves")
        message = wait_for_message(chat_env.user, chat_id, message_id,
                                   lambda m: FINAL_PREFIX in (m.get("content") or ""))
    finally:
        chat_env.model.tool_name = "generate_image"

    said = chat_env.model.tool_results()[-1]
    assert "Generated 1 video of 'waves'" in said, said
    assert any(r["path"] == "/prompt" and r["method"] == "POST" for r in comfy_provider.requests)
    jobs = [j for j in studio_jobs(chat_env.user) if j["id"] not in before]
    assert len(jobs) == 1 and jobs[0]["status"] == "succeeded", jobs
    job = _ok(chat_env.user.get(f"{API}/jobs/{jobs[0]['id']}"))
    assert job["provider"] == COMFY_ID and job["request"]["workflow"] == "weightfree_video", job
    assert len(job["asset_ids"]) == 1, job
    asset = _ok(chat_env.user.get(f"{API}/assets/{job['asset_ids'][0]}"))
    assert (asset["media"], asset["mime_type"]) == ("video", "video/webm"), asset
    assert asset["owner"] == chat_env.user_id, asset
    webm = chat_env.user.get(f"{API}/assets/{asset['id']}/content")
    assert webm.status_code == 200 and webm.content.startswith(WEBM_MAGIC)

    files = [f for f in message.get("files") or [] if (f.get("content_type") or "").startswith("video/")]
    assert len(files) == 1, message.get("files")
    assert files[0]["type"] == "file" and files[0]["content_type"] == "video/webm"
    content = chat_env.user.get(f"/api/v1/files/{files[0]['id']}/content")
    assert content.status_code == 200 and content.content == webm.content
