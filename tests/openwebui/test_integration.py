"""The studio inside the real Open WebUI (one server for the session, see conftest.py): its
routes and Open WebUI's answer; Open WebUI's own signup/signin tokens (and cookie) are
accepted; roles, ownership, pending and anonymous callers; Open WebUI's image-generation switch
and permission; the studio's tables in their own database file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from image_studio.openwebui.entry import NO_UI_NOTE
from image_studio.openwebui.mount import WEB_DIR

API = "/api/v1/image-studio"
PASSWORD = "Studio-Test-pw-1"
SMALL = {"width": 64, "height": 64}


@dataclass
class Accounts:
    """Clients for each kind of caller (Bearer tokens from Open WebUI's own signin)."""

    url: str
    admin: httpx.Client
    user: httpx.Client
    pending: httpx.Client
    admin_id: str
    user_id: str
    user_token: str

    def anonymous(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kw)


def signin(url: str, email: str) -> dict:
    r = httpx.post(url + "/api/v1/auths/signin", json={"email": email, "password": PASSWORD}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def bearer(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def set_image_generation(admin: httpx.Client, enabled: bool) -> None:
    """Open WebUI's Admin Panel > Settings > Images switch, through its own API."""
    config = admin.get("/api/v1/images/config").json()
    config["ENABLE_IMAGE_GENERATION"] = enabled
    r = admin.post("/api/v1/images/config/update", json=config)
    assert r.status_code == 200 and r.json()["ENABLE_IMAGE_GENERATION"] is enabled, r.text


@contextmanager
def default_image_permission(admin: httpx.Client, allowed: bool) -> Iterator[None]:
    """Open WebUI's default user permission ``features.image_generation``, restored after."""
    before = admin.get("/api/v1/users/default/permissions").json()
    changed = {**before, "features": {**before["features"], "image_generation": allowed}}
    assert admin.post("/api/v1/users/default/permissions", json=changed).status_code == 200
    try:
        yield
    finally:
        assert admin.post("/api/v1/users/default/permissions", json=before).status_code == 200


@pytest.fixture(scope="module")
def accounts(openwebui) -> Iterator[Accounts]:
    url = openwebui.url
    first = httpx.post(url + "/api/v1/auths/signup", timeout=30,
                       json={"name": "Ada Admin", "email": "ada@example.com", "password": PASSWORD})
    assert first.status_code == 200 and first.json()["role"] == "admin", first.text  # the first account
    admin_info = signin(url, "ada@example.com")
    admin = bearer(url, admin_info["token"])
    for name, email, role in (("Uma User", "uma@example.com", "user"), ("Pat Pending", "pat@example.com", "pending")):
        added = admin.post("/api/v1/auths/add", json={"name": name, "email": email, "password": PASSWORD, "role": role})
        assert added.status_code == 200 and added.json()["role"] == role, added.text
    user_info, pending_info = signin(url, "uma@example.com"), signin(url, "pat@example.com")
    assert user_info["role"] == "user" and pending_info["role"] == "pending"
    set_image_generation(admin, True)  # off by default in Open WebUI
    studio_config = {"default_provider": "ph", "providers": {"ph": {"type": "placeholder"}}}
    r = admin.put(f"{API}/config", json=studio_config)
    assert r.status_code == 200, r.text
    accounts = Accounts(url=url, admin=admin, user=bearer(url, user_info["token"]),
                        pending=bearer(url, pending_info["token"]), admin_id=admin_info["id"],
                        user_id=user_info["id"], user_token=user_info["token"])
    yield accounts
    for client in (accounts.admin, accounts.user, accounts.pending):
        client.close()


def generate(client: httpx.Client, prompt: str) -> httpx.Response:
    return client.post(f"{API}/generations", json={"prompt": prompt, **SMALL}, headers={"Prefer": "wait=30"})


def test_open_webui_and_the_studio_both_answer(openwebui, accounts):
    with accounts.anonymous() as anon:
        assert anon.get("/health").json() == {"status": True}
        owui_config = anon.get("/api/config")
        assert owui_config.status_code == 200 and "version" in owui_config.json()
        health = anon.get(f"{API}/health")
        assert health.status_code == 200 and health.json()["providers"] == ["ph"], health.text
        page = anon.get("/")  # Open WebUI's own frontend, still the final catch-all
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        unknown = anon.get(f"{API}/no-such-route")
        assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "NotFound"
        assert anon.get("/static/favicon.png").headers["content-type"] == "image/png"  # Open WebUI's /static
        loader = anon.get("/static/loader.js")
        assert loader.status_code == 200
        if (WEB_DIR / "index.html").is_file():
            assert "image-studio-entry" in loader.text and anon.get("/image-studio/").status_code == 200
        else:
            assert NO_UI_NOTE.strip() in loader.text


def test_open_webui_tokens_and_cookie_are_accepted_and_roles_checked(accounts):
    assert accounts.user.get(f"{API}/jobs").status_code == 200
    forbidden = accounts.user.get(f"{API}/config")
    assert forbidden.status_code == 403 and forbidden.json()["detail"]["type"] == "Forbidden"
    assert accounts.admin.get(f"{API}/config").status_code == 200
    with accounts.anonymous() as anon:
        nobody = anon.get(f"{API}/jobs")
        assert nobody.status_code == 401 and "sign in to Open WebUI" in nobody.json()["detail"]["message"]
        assert anon.get(f"{API}/jobs", headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    pending = accounts.pending.get(f"{API}/jobs")
    assert pending.status_code == 401 and "approved by an admin" in pending.json()["detail"]["message"]
    with accounts.anonymous(cookies={"token": accounts.user_token}) as browser:  # <img>, EventSource
        assert browser.get(f"{API}/jobs").status_code == 200


def test_jobs_and_assets_belong_to_their_open_webui_user(accounts):
    mine = generate(accounts.admin, "the admin's lighthouse")
    theirs = generate(accounts.user, "the user's fox")
    assert mine.status_code == 200 and theirs.status_code == 200, (mine.text, theirs.text)
    mine, theirs = mine.json(), theirs.json()
    assert mine["status"] == theirs["status"] == "succeeded"
    assert mine["owner"] == accounts.admin_id and theirs["owner"] == accounts.user_id
    user_jobs = {j["id"] for j in accounts.user.get(f"{API}/jobs").json()["items"]}
    assert theirs["id"] in user_jobs and mine["id"] not in user_jobs
    assert accounts.user.get(f"{API}/jobs/{mine['id']}").status_code == 404
    admin_asset, user_asset = mine["assets"][0]["id"], theirs["assets"][0]["id"]
    assert accounts.user.get(f"{API}/assets/{admin_asset}/content").status_code == 404
    user_assets = {a["id"] for a in accounts.user.get(f"{API}/assets").json()["items"]}
    assert user_asset in user_assets and admin_asset not in user_assets
    content = accounts.user.get(f"{API}/assets/{user_asset}/content")
    assert content.status_code == 200 and content.content.startswith(b"\x89PNG")
    admin_jobs = {j["id"] for j in accounts.admin.get(f"{API}/jobs").json()["items"]}
    assert {mine["id"], theirs["id"]} <= admin_jobs


def test_open_webuis_image_permission_is_respected(accounts):
    body = {"prompt": "not allowed", **SMALL}
    with default_image_permission(accounts.admin, False):
        refused = accounts.user.post(f"{API}/generations", json=body)
        assert refused.status_code == 403
        assert refused.json()["error"]["field"] == "features.image_generation"
        batch = accounts.user.post(f"{API}/generations/batch", json={"requests": [body]})
        assert batch.status_code == 403
        assert accounts.user.get(f"{API}/jobs").status_code == 200  # browsing is not generating
        assert generate(accounts.admin, "admins keep the right").status_code == 200
    assert generate(accounts.user, "allowed again").status_code == 200
    set_image_generation(accounts.admin, False)
    try:
        off = generate(accounts.admin, "switched off")
        assert off.status_code == 403 and off.json()["error"]["field"] == "image_generation.enable"
        assert "turned off in Open WebUI" in off.json()["error"]["message"]
    finally:
        set_image_generation(accounts.admin, True)
    assert generate(accounts.admin, "switched on").status_code == 200


def test_the_studio_keeps_its_tables_in_its_own_database_file(openwebui, accounts):
    assert generate(accounts.admin, "a stored asset").status_code == 200
    with sqlite3.connect(openwebui.data_dir / "image_studio.db") as db:
        ours = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
    with sqlite3.connect(openwebui.data_dir / "webui.db") as db:
        theirs = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
    assert {"image_studio_jobs", "image_studio_assets", "image_studio_alembic_version"} <= ours
    assert all(t.startswith("image_studio_") for t in ours)
    assert "user" in theirs and "config" in theirs
    assert not [t for t in theirs if t.startswith("image_studio")]
    assets = openwebui.data_dir / "image-studio" / "assets"
    assert any(p.suffix == ".png" for p in assets.rglob("*"))
    assert (openwebui.data_dir / ".webui_secret_key").is_file()


def test_a_studio_service_key_is_accepted_beside_open_webui_users(accounts):
    """Open WebUI's image engine calls the facade with a studio ``service`` key, not a user token."""
    config = accounts.admin.get(f"{API}/config").json()["config"]
    key = "svc-key-0123456789abcdef"
    saved = accounts.admin.put(f"{API}/config", json={**config, "api_keys": [
        {"key": key, "role": "service", "owner": "open-webui-images"}]})
    assert saved.status_code == 200, saved.text
    try:
        with bearer(accounts.url, key) as service:
            jobs = service.get(f"{API}/jobs")
            assert jobs.status_code == 200 and jobs.json()["items"] == []  # its own jobs only
            assert service.get(f"{API}/config").status_code == 403
        with bearer(accounts.url, "svc-key-wrong-000000000") as wrong:
            assert wrong.get(f"{API}/jobs").status_code == 401
    finally:
        assert accounts.admin.put(f"{API}/config", json={**config, "api_keys": []}).status_code == 200
    with bearer(accounts.url, key) as revoked:
        assert revoked.get(f"{API}/jobs").status_code == 401
