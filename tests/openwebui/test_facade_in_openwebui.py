"""Open WebUI's own image engine running through the studio, in the session's real Open WebUI.

``image-studio openwebui configure`` (the admin-API path, with the admin's token) points Open
WebUI's engine "openai" at the studio's facade; then Open WebUI's own ``POST
/api/v1/images/generations`` and ``POST /api/v1/images/edit`` return images made by the
studio's placeholder provider, as studio jobs. The session server runs with
``ENABLE_FORWARD_USER_INFO_HEADERS=true``, so Open WebUI sends ``X-OpenWebUI-User-*`` with each
call and those jobs belong to the Open WebUI user who asked (they see them in their gallery);
a call with the service key and no forwarded user (forwarding off) is the service user's,
``openwebui-service``, shown by calling the facade directly.

This module runs after test_integration.py (see conftest.py), whose first signup is the admin.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from PIL import Image
from typer.testing import CliRunner

from image_studio.cli import app as cli
from image_studio.openwebui.configure import FACADE_PATH, SERVICE_OWNER, backup_path
from tests.openwebui.test_integration import (API, PASSWORD, bearer, default_image_permission,
                                              set_image_generation, signin)

ADMIN_EMAIL = "ada@example.com"
THEIR_KEY = "sk-the-admins-own-openai-key"


@dataclass
class Setup:
    url: str
    admin: httpx.Client
    user: httpx.Client
    user_id: str
    admin_token: str


def _admin(url: str) -> dict:
    """Sign in to the session's admin, or sign it up when this module runs alone (first signup)."""
    r = httpx.post(url + "/api/v1/auths/signin", json={"email": ADMIN_EMAIL, "password": PASSWORD}, timeout=30)
    if r.status_code == 200:
        return r.json()
    first = httpx.post(url + "/api/v1/auths/signup", timeout=30,
                       json={"name": "Ada Admin", "email": ADMIN_EMAIL, "password": PASSWORD})
    assert first.status_code == 200 and first.json()["role"] == "admin", first.text
    return first.json()


@pytest.fixture(scope="module")
def setup(openwebui) -> Iterator[Setup]:
    url = openwebui.url
    admin_info = _admin(url)
    admin = bearer(url, admin_info["token"])
    added = admin.post("/api/v1/auths/add", json={"name": "Fay Facade", "email": "fay@example.com",
                                                  "password": PASSWORD, "role": "user"})
    assert added.status_code == 200, added.text
    user_info = signin(url, "fay@example.com")
    r = admin.put(f"{API}/config", json={"default_provider": "ph", "providers": {"ph": {"type": "placeholder"}},
                                         "api_keys": []})
    assert r.status_code == 200, r.text
    # An admin's own, non-studio image settings (an OpenAI key), as found in a running Open WebUI.
    config = admin.get("/api/v1/images/config").json()
    r = admin.post("/api/v1/images/config/update", json={**config, "IMAGES_OPENAI_API_KEY": THEIR_KEY,
                                                         "IMAGE_SIZE": "64x64", "ENABLE_IMAGE_GENERATION": True})
    assert r.status_code == 200, r.text
    yield Setup(url=url, admin=admin, user=bearer(url, user_info["token"]), user_id=user_info["id"],
                admin_token=admin_info["token"])
    admin.close()


def configure(setup: Setup, data_dir, *extra: str):
    return CliRunner().invoke(cli, ["openwebui", "configure", "--url", setup.url, "--token", setup.admin_token,
                                    "--data-dir", str(data_dir), "--edit", *extra])


def studio_jobs(setup: Setup) -> list[dict]:
    r = setup.admin.get(f"{API}/jobs", params={"limit": 200})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        return im.size


def test_configure_refuses_then_forces_then_changes_nothing(setup, openwebui):
    refused = configure(setup, openwebui.data_dir)
    assert refused.exit_code == 2, refused.output
    assert "IMAGES_OPENAI_API_KEY:" in refused.output and "(not the studio's)" in refused.output
    after = setup.admin.get("/api/v1/images/config").json()
    assert after["IMAGES_OPENAI_API_KEY"] == THEIR_KEY  # kept
    assert setup.admin.get(f"{API}/config").json()["config"]["api_keys"] == []  # no key made
    assert not backup_path(openwebui.data_dir).exists()

    forced = configure(setup, openwebui.data_dir, "--force")
    assert forced.exit_code == 0, forced.output
    assert f"{SERVICE_OWNER}" in forced.output and "written" in forced.output
    now = setup.admin.get("/api/v1/images/config").json()
    facade = setup.url + FACADE_PATH
    assert now["IMAGES_OPENAI_API_BASE_URL"] == now["IMAGES_EDIT_OPENAI_API_BASE_URL"] == facade
    assert now["IMAGE_GENERATION_ENGINE"] == now["IMAGE_EDIT_ENGINE"] == "openai"
    assert now["ENABLE_IMAGE_GENERATION"] and now["ENABLE_IMAGE_EDIT"]
    assert now["IMAGE_GENERATION_MODEL"] == now["IMAGE_EDIT_MODEL"] == "image-studio"
    assert now["IMAGES_OPENAI_API_KEY"] == now["IMAGES_EDIT_OPENAI_API_KEY"] != THEIR_KEY
    assert now["IMAGE_SIZE"] == "64x64"  # untouched
    keys = setup.admin.get(f"{API}/config").json()["config"]["api_keys"]
    assert [(k["role"], k["owner"]) for k in keys] == [("service", SERVICE_OWNER)]
    assert keys[0]["key"].endswith(now["IMAGES_OPENAI_API_KEY"][-4:]) and keys[0]["key"] != now["IMAGES_OPENAI_API_KEY"]
    backups = json.loads(backup_path(openwebui.data_dir).read_text())
    assert len(backups) == 1 and backups[0]["settings"]["IMAGES_OPENAI_API_KEY"] == THEIR_KEY

    again = configure(setup, openwebui.data_dir)
    assert again.exit_code == 0 and "nothing changed" in again.output, again.output
    assert setup.admin.get("/api/v1/images/config").json() == now
    assert len(json.loads(backup_path(openwebui.data_dir).read_text())) == 1


@pytest.fixture
def configured(setup, openwebui) -> Setup:
    result = configure(setup, openwebui.data_dir, "--force")
    assert result.exit_code == 0, result.output
    set_image_generation(setup.admin, True)
    return setup


def test_open_webuis_own_generation_runs_as_a_studio_job(configured):
    before = {j["id"] for j in studio_jobs(configured)}
    r = configured.user.post("/api/v1/images/generations", json={"prompt": "a lighthouse from open webui"})
    assert r.status_code == 200, r.text
    files = r.json()
    assert len(files) == 1 and files[0]["url"].startswith("/api/v1/files/")
    content = configured.user.get(files[0]["url"])
    assert content.status_code == 200 and content.content.startswith(b"\x89PNG")
    assert png_size(content.content) == (64, 64)  # Open WebUI's IMAGE_SIZE, passed through
    new = [j for j in studio_jobs(configured) if j["id"] not in before]
    assert len(new) == 1 and new[0]["status"] == "succeeded" and new[0]["provider"] == "ph"
    assert new[0]["owner"] == configured.user_id  # Open WebUI forwarded its user (X-OpenWebUI-User-Id)
    assert new[0]["request"]["prompt"] == "a lighthouse from open webui"
    mine = configured.user.get(f"{API}/assets", params={"q": "a lighthouse from open webui"}).json()["items"]
    assert [a["id"] for a in mine] == new[0]["asset_ids"]  # in the user's own gallery
    asset = configured.admin.get(f"{API}/assets/{new[0]['asset_ids'][0]}/content")
    assert asset.content == content.content  # Open WebUI's file is the studio's asset


def test_open_webuis_own_edit_runs_as_a_studio_img2img_job(configured):
    red = io.BytesIO()
    Image.new("RGB", (48, 32), (255, 0, 0)).save(red, "PNG")
    data_url = "data:image/png;base64," + base64.b64encode(red.getvalue()).decode()
    before = {j["id"] for j in studio_jobs(configured)}
    r = configured.user.post("/api/v1/images/edit", json={"prompt": "make it blue", "image": data_url})
    assert r.status_code == 200, r.text
    content = configured.user.get(r.json()[0]["url"])
    assert content.status_code == 200 and png_size(content.content) == (48, 32)  # the input's size
    with Image.open(io.BytesIO(content.content)) as im:
        assert im.convert("RGB").getpixel((0, 0)) != (255, 0, 0)  # drawn over, not the input returned
    new = [j for j in studio_jobs(configured) if j["id"] not in before]
    assert len(new) == 1 and new[0]["status"] == "succeeded" and new[0]["owner"] == configured.user_id
    assert new[0]["request"]["mode"] == "img2img" and new[0]["request"]["prompt"] == "make it blue"


def test_a_user_without_the_image_permission_gets_open_webuis_refusal_and_no_job(configured):
    before = {j["id"] for j in studio_jobs(configured)}
    with default_image_permission(configured.admin, False):
        r = configured.user.post("/api/v1/images/generations", json={"prompt": "not allowed"})
        assert r.status_code == 403, r.text
        edit = configured.user.post("/api/v1/images/edit", json={"prompt": "no", "image": "data:image/png;base64,AA=="})
        assert edit.status_code == 403, edit.text
    assert {j["id"] for j in studio_jobs(configured)} == before


def test_the_facade_gates_the_user_open_webui_forwards(configured):
    """Open WebUI with ENABLE_FORWARD_USER_INFO_HEADERS sends the user's id: the facade checks
    that user's permission and Open WebUI's switch, and the job is that user's."""
    key = configured.admin.get("/api/v1/images/config").json()["IMAGES_OPENAI_API_KEY"]
    body = {"model": "image-studio", "prompt": "forwarded", "size": "64x64", "response_format": "b64_json"}
    forwarded = {"Authorization": f"Bearer {key}", "X-OpenWebUI-User-Id": configured.user_id}
    with httpx.Client(base_url=configured.url + FACADE_PATH, headers=forwarded, timeout=60) as facade:
        ok = facade.post("/images/generations", json=body)
        assert ok.status_code == 200, ok.text
        job_id = ok.headers["X-Image-Studio-Job-Id"]
        assert configured.user.get(f"{API}/jobs/{job_id}").json()["owner"] == configured.user_id
        before = {j["id"] for j in studio_jobs(configured)}
        with default_image_permission(configured.admin, False):
            refused = facade.post("/images/generations", json=body)
            assert refused.status_code == 403, refused.text
            assert "Image Generation" in refused.text
        set_image_generation(configured.admin, False)
        try:
            off = facade.post("/images/generations", json=body)
            assert off.status_code == 403 and "turned off in Open WebUI" in off.text, off.text
        finally:
            set_image_generation(configured.admin, True)
        assert {j["id"] for j in studio_jobs(configured)} == before


def test_without_a_forwarded_user_the_job_is_the_service_users(configured):
    """What Open WebUI sends with ENABLE_FORWARD_USER_INFO_HEADERS off: the service key alone."""
    key = configured.admin.get("/api/v1/images/config").json()["IMAGES_OPENAI_API_KEY"]
    body = {"model": "image-studio", "prompt": "no forwarded user", "size": "64x64", "response_format": "b64_json"}
    with httpx.Client(base_url=configured.url + FACADE_PATH, headers={"Authorization": f"Bearer {key}"},
                      timeout=60) as facade:
        ok = facade.post("/images/generations", json=body)
    assert ok.status_code == 200, ok.text
    job = configured.admin.get(f"{API}/jobs/{ok.headers['X-Image-Studio-Job-Id']}").json()
    assert job["owner"] == SERVICE_OWNER
    assert configured.user.get(f"{API}/jobs/{job['id']}").status_code == 404  # not the user's
