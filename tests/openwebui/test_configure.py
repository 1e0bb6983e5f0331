"""``image-studio openwebui configure`` without a real Open WebUI: the diff and its conflict
rule, the backup file in a temporary DATA_DIR, and the admin-API flow against an in-memory fake
of Open WebUI's ``/api/v1/images/config`` and the studio's ``/config`` (httpx.MockTransport:
nothing leaves the process). The same flow against the real Open WebUI is in
test_facade_in_openwebui.py."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from image_studio.crypto import mask_secret
from image_studio.errors import ConfigError
from image_studio.openwebui import configure as cfg
from tests.openwebui.conftest import openwebui_python

FACADE = "http://127.0.0.1:8080" + cfg.FACADE_PATH
FRESH = {  # what a fresh Open WebUI 0.12.4 answers (the subset configure reads)
    "ENABLE_IMAGE_GENERATION": False, "IMAGE_GENERATION_ENGINE": "openai", "IMAGE_GENERATION_MODEL": "",
    "IMAGES_OPENAI_API_BASE_URL": "https://api.openai.com/v1", "IMAGES_OPENAI_API_KEY": "",
    "IMAGES_OPENAI_API_VERSION": "", "IMAGES_OPENAI_API_PARAMS": {}, "ENABLE_IMAGE_EDIT": False,
    "IMAGE_EDIT_ENGINE": "openai", "IMAGE_EDIT_MODEL": "", "IMAGES_EDIT_OPENAI_API_BASE_URL": "https://api.openai.com/v1",
    "IMAGES_EDIT_OPENAI_API_KEY": "", "IMAGES_EDIT_OPENAI_API_VERSION": "", "IMAGE_SIZE": "512x512",
}


def wanted(key: str = "isk-svc-0123456789", edit: bool = True) -> dict[str, Any]:
    return cfg.wanted_settings(base_url=FACADE, api_key=key, model="image-studio", params={"steps": 4}, edit=edit)


def test_facade_base_url_and_studio_detection():
    assert cfg.facade_base_url("http://127.0.0.1:8080/") == FACADE
    assert cfg.is_studio_url(FACADE + "/") and cfg.is_studio_url("https://owui.example/api/v1/image-studio/openai/v1")
    assert not cfg.is_studio_url("https://api.openai.com/v1") and not cfg.is_studio_url(None)
    with pytest.raises(ConfigError) as err:
        cfg.facade_base_url("127.0.0.1:8080")
    assert err.value.field == "--url"


def test_a_fresh_open_webui_is_configured_without_conflicts():
    plan = cfg.plan_changes(FRESH, wanted())
    assert plan.conflicts == []
    changed = {c.key: c.new for c in plan.changes}
    assert changed["IMAGES_OPENAI_API_BASE_URL"] == changed["IMAGES_EDIT_OPENAI_API_BASE_URL"] == FACADE
    assert changed["ENABLE_IMAGE_GENERATION"] is True and changed["IMAGE_GENERATION_MODEL"] == "image-studio"
    assert changed["IMAGES_OPENAI_API_PARAMS"] == {"steps": 4}
    assert "IMAGE_GENERATION_ENGINE" not in changed  # already "openai": no change listed
    assert "IMAGE_SIZE" not in changed  # never touched
    assert "IMAGES_OPENAI_API_KEY: \"\" -> \"****6789\"" in plan.render()  # keys masked in the diff


def test_an_admins_own_settings_are_conflicts_and_studio_ones_are_not():
    theirs = {**FRESH, "IMAGE_GENERATION_ENGINE": "comfyui", "IMAGES_OPENAI_API_KEY": "sk-their-openai-key"}
    plan = cfg.plan_changes(theirs, wanted(edit=False))
    assert {c.key for c in plan.conflicts} == {"IMAGE_GENERATION_ENGINE", "IMAGES_OPENAI_API_KEY"}
    assert all("(not the studio's)" in c.render() for c in plan.conflicts)
    assert not any(c.key.startswith(("IMAGE_EDIT", "IMAGES_EDIT", "ENABLE_IMAGE_EDIT")) for c in plan.changes)
    ours = {**FRESH, **wanted(key="isk-svc-old-key-000", edit=False), "IMAGES_OPENAI_API_BASE_URL": FACADE}
    replan = cfg.plan_changes(ours, wanted(edit=False))
    assert [c.key for c in replan.changes] == ["IMAGES_OPENAI_API_KEY"] and replan.conflicts == []


def test_no_changes_when_already_configured_and_params_as_json_text():
    current = {**FRESH, **wanted(), "IMAGES_OPENAI_API_PARAMS": '{"steps": 4}'}
    assert cfg.plan_changes(current, wanted()).changes == []


def test_backup_appends_timestamped_entries_with_mode_0600(tmp_path):
    first = cfg.plan_changes({**FRESH, "IMAGES_OPENAI_API_KEY": "sk-their-openai-key"}, wanted())
    path = cfg.write_backup(tmp_path, first, target="http://127.0.0.1:8080",
                            now=datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc))
    second = cfg.plan_changes({**FRESH, **wanted()}, wanted(key="isk-svc-newer-key-1"))
    cfg.write_backup(tmp_path, second, target="http://127.0.0.1:8080")
    assert path == tmp_path / "image-studio" / "openwebui-image-settings.backup.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    entries = json.loads(path.read_text())
    assert len(entries) == 2 and entries[0]["saved_at"] == "2026-11-22T10:00:00+00:00"
    assert entries[0]["settings"]["IMAGES_OPENAI_API_KEY"] == "sk-their-openai-key"  # restorable as it was
    assert entries[0]["settings"]["IMAGES_OPENAI_API_BASE_URL"] == "https://api.openai.com/v1"
    assert entries[1]["settings"] == {"IMAGES_OPENAI_API_KEY": "isk-svc-0123456789",
                                      "IMAGES_EDIT_OPENAI_API_KEY": "isk-svc-0123456789"}


def test_a_corrupt_backup_file_is_a_config_error(tmp_path):
    path = cfg.backup_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text('{"not": "a list"}')
    with pytest.raises(ConfigError) as err:
        cfg.write_backup(tmp_path, cfg.plan_changes(FRESH, wanted()), target="x")
    assert err.value.field == "DATA_DIR"


def test_service_key_entries_are_replaced_not_piled_up():
    keys = [{"key": "••••aaaa", "role": "admin", "owner": "ops"},
            {"key": "••••bbbb", "role": "service", "owner": cfg.SERVICE_OWNER}]
    out = cfg.with_service_key(keys, "isk-svc-new-000000")
    assert out == [keys[0], {"key": "isk-svc-new-000000", "role": "service", "owner": cfg.SERVICE_OWNER}]
    assert cfg.new_service_key() != cfg.new_service_key() and cfg.new_service_key().startswith("isk-svc-")


class FakeOpenWebUI:
    """Open WebUI's image config endpoints and the studio's config endpoints, in memory."""

    def __init__(self, images: dict[str, Any], token: str = "admin-token") -> None:
        self.images, self.token = dict(images), token
        self.api_keys: list[dict[str, Any]] = []  # plain keys (the fake answers them masked)
        self.calls: list[tuple[str, str]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        path, auth = request.url.path, request.headers.get("authorization", "")
        self.calls.append((request.method, path))
        if path == cfg.FACADE_PATH + "/models":
            ok = any(f"Bearer {k['key']}" == auth for k in self.api_keys)
            return httpx.Response(200 if ok else 401, json={"data": []})
        if auth != f"Bearer {self.token}":
            return httpx.Response(401, json={"detail": "Not authenticated"})
        if (request.method, path) == ("GET", "/api/v1/images/config"):
            return httpx.Response(200, json=self.images)
        if (request.method, path) == ("POST", "/api/v1/images/config/update"):
            self.images.update(json.loads(request.content))
            return httpx.Response(200, json=self.images)
        if path == "/api/v1/image-studio/config" and request.method == "GET":
            masked = [{**k, "key": mask_secret(k["key"])} for k in self.api_keys]
            return httpx.Response(200, json={"config": {"api_keys": masked, "providers": {}}})
        if path == "/api/v1/image-studio/config" and request.method == "PUT":
            sent = json.loads(request.content)["api_keys"]
            self.api_keys = [k for k in sent if not k["key"].startswith("••••")]
            return httpx.Response(200, json={"config": sent})
        return httpx.Response(404)

    async def run(self, tmp_path, **kw: Any) -> cfg.Outcome:
        return await cfg.configure_via_api("http://127.0.0.1:8080", kw.pop("token", self.token), data_dir=tmp_path,
                                           transport=httpx.MockTransport(self.handler), **kw)


async def test_api_flow_refuses_then_forces_then_changes_nothing(tmp_path):
    fake = FakeOpenWebUI({**FRESH, "IMAGES_OPENAI_API_KEY": "sk-their-openai-key"})
    refused = await fake.run(tmp_path, edit=True)
    assert refused.refused and not refused.applied
    assert [c.key for c in refused.plan.conflicts] == ["IMAGES_OPENAI_API_KEY"]
    assert fake.images["IMAGES_OPENAI_API_KEY"] == "sk-their-openai-key" and fake.api_keys == []
    assert not cfg.backup_path(tmp_path).exists()
    assert ("POST", "/api/v1/images/config/update") not in fake.calls

    forced = await fake.run(tmp_path, edit=True, force=True)
    assert forced.applied and forced.created_key and forced.backup == cfg.backup_path(tmp_path)
    key = fake.images["IMAGES_OPENAI_API_KEY"]
    assert fake.api_keys == [{"key": key, "role": "service", "owner": cfg.SERVICE_OWNER}]
    assert fake.images["IMAGES_EDIT_OPENAI_API_KEY"] == key and fake.images["IMAGES_OPENAI_API_BASE_URL"] == FACADE
    assert fake.images["IMAGE_SIZE"] == "512x512"  # the rest of the form is sent back unchanged

    again = await fake.run(tmp_path, edit=True)
    assert again.plan.changes == [] and not again.applied and not again.created_key
    assert fake.images["IMAGES_OPENAI_API_KEY"] == key
    assert len(json.loads(cfg.backup_path(tmp_path).read_text())) == 1


async def test_api_flow_replaces_a_key_the_studio_no_longer_accepts(tmp_path):
    fake = FakeOpenWebUI({**FRESH, **wanted(key="isk-svc-revoked-key-1", edit=False)})
    outcome = await fake.run(tmp_path)
    assert outcome.applied and outcome.created_key and outcome.plan.conflicts == []
    assert [c.key for c in outcome.plan.changes] == ["IMAGES_OPENAI_API_KEY"]
    assert fake.images["IMAGES_OPENAI_API_KEY"] != "isk-svc-revoked-key-1"


async def test_api_flow_names_the_token_when_refused(tmp_path):
    fake = FakeOpenWebUI(FRESH)
    with pytest.raises(ConfigError) as err:
        await fake.run(tmp_path, token="not-an-admin")
    assert err.value.field == "--token"


async def test_in_process_needs_an_open_webui_data_dir(tmp_path):
    with pytest.raises(ConfigError) as err:
        await cfg.configure_in_process(tmp_path / "empty")
    assert err.value.field == "--data-dir" and "webui.db" in err.value.message


def _run_owui(python: str, data_dir, *args: str, code: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGE_STUDIO_") and k not in (
        "DATA_DIR", "DATABASE_URL", "WEBUI_SECRET_KEY")}
    env.update(DATA_DIR=str(data_dir), FROM_INIT_PY="true", OFFLINE_MODE="true", COLUMNS="200")
    cmd = [python, "-c", code] if code else [python, "-m", "image_studio.cli", "openwebui", "configure",
                                            "--data-dir", str(data_dir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=data_dir)


def test_in_process_on_a_data_dir_with_open_webuis_config_model(tmp_path):
    """The no-token path, in Open WebUI's interpreter: its ``config`` rows and the studio's
    encrypted service key in DATA_DIR; refusal (exit 2), --force, then nothing to change."""
    python = openwebui_python()
    if subprocess.run([python, "-c", "import open_webui"], capture_output=True, timeout=120).returncode != 0:
        pytest.skip(f"open_webui cannot be imported by {python}")
    data = tmp_path / "data"
    data.mkdir()
    (data / ".webui_secret_key").write_text("test-secret-key-for-configure")
    init = _run_owui(python, data, code="from image_studio.openwebui.launcher import prepare_environment as p; "
                                        "p(); import open_webui.config")  # Open WebUI's migrations
    assert init.returncode == 0 and (data / "webui.db").is_file(), init.stderr[-2000:]
    with sqlite3.connect(data / "webui.db") as db:
        db.execute("insert into config (key, value, updated_at) values (?, ?, 0)",
                   ("image_generation.openai.api_key", json.dumps("sk-their-openai-key")))

    refused = _run_owui(python, data)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "IMAGES_OPENAI_API_KEY" in refused.stdout and "(not the studio's)" in refused.stdout
    forced = _run_owui(python, data, "--force", "--url", "http://owui.internal:8080")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "restart a running Open WebUI" in forced.stdout
    with sqlite3.connect(data / "webui.db") as db:
        rows = {k: json.loads(v) for k, v in db.execute("select key, value from config")}
    assert rows["image_generation.openai.api_base_url"] == "http://owui.internal:8080" + cfg.FACADE_PATH
    assert rows["image_generation.enable"] is True and rows["image_generation.model"] == "image-studio"
    key = rows["image_generation.openai.api_key"]
    assert key.startswith("isk-svc-") and "images.edit.enable" not in rows  # no --edit
    studio_db = (data / "image_studio.db").read_bytes()
    assert key.encode() not in studio_db and b"openwebui-service" in studio_db  # saved encrypted
    backups = json.loads(cfg.backup_path(data).read_text())
    assert backups[0]["settings"]["IMAGES_OPENAI_API_KEY"] == "sk-their-openai-key"

    again = _run_owui(python, data, "--url", "http://owui.internal:8080")
    assert again.returncode == 0 and "nothing changed" in again.stdout, again.stdout + again.stderr
