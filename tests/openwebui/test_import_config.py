"""Carry over a real Open WebUI 0.12 image setup, in the session's Open WebUI (issue #6, part 1).

Each test writes Open WebUI's image settings through Open WebUI's own ``POST
/api/v1/images/config/update`` (stored in its ``config`` table, in the session's temporary
DATA_DIR), imports them (``POST /api/v1/image-studio/openwebui/import-config``, once with
``image-studio openwebui import-config --url --token``), then generates with the result through
the studio's API inside Open WebUI and checks what reached the fake backend on 127.0.0.1: the
fake ComfyUI (tests/fakes/comfyui_server.py), the fake Automatic1111 (tests/fakes/a1111_server.py)
and a fake of the OpenAI and Gemini image APIs (tests/fakes/cloud_images.py).

This module runs last (conftest.py LATE_MODULES): it resets the studio's config and Open WebUI's
image settings before each test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from image_studio.cli import app as cli
from image_studio.openwebui.configure import FACADE_PATH
from tests.fakes.a1111_server import FakeA1111
from tests.fakes.cloud_images import FakeCloudImages
from tests.fakes.comfyui_server import FakeComfyUI
from tests.openwebui.test_facade_in_openwebui import _admin
from tests.openwebui.test_import_mapping import GRAPH, NODES
from tests.openwebui.test_integration import API, bearer

IMPORT = f"{API}/openwebui/import-config"
BLANK = {  # Open WebUI's image settings with no engine set up (the rest of the form is kept)
    "ENABLE_IMAGE_GENERATION": True, "IMAGE_GENERATION_ENGINE": "openai", "IMAGE_GENERATION_MODEL": "",
    "IMAGE_SIZE": "64x64", "IMAGE_STEPS": 4, "IMAGES_OPENAI_API_BASE_URL": "https://api.openai.com/v1",
    "IMAGES_OPENAI_API_KEY": "", "IMAGES_OPENAI_API_VERSION": "", "IMAGES_OPENAI_API_PARAMS": {},
    "AUTOMATIC1111_BASE_URL": "", "AUTOMATIC1111_API_AUTH": "", "AUTOMATIC1111_PARAMS": {},
    "COMFYUI_BASE_URL": "", "COMFYUI_API_KEY": "", "COMFYUI_WORKFLOW_NODES": [],
    "IMAGES_GEMINI_API_BASE_URL": "", "IMAGES_GEMINI_API_KEY": "", "IMAGES_GEMINI_ENDPOINT_METHOD": "",
    "ENABLE_IMAGE_EDIT": False, "IMAGE_EDIT_ENGINE": "openai", "IMAGE_EDIT_MODEL": "",
    "IMAGES_EDIT_OPENAI_API_BASE_URL": "https://api.openai.com/v1", "IMAGES_EDIT_OPENAI_API_KEY": "",
}


@dataclass
class Env:
    url: str
    token: str
    admin: httpx.Client
    comfy: FakeComfyUI
    a1111: FakeA1111
    cloud: FakeCloudImages

    def owui_config(self, **values: Any) -> dict:
        """Write Open WebUI's image settings (BLANK plus ``values``) through its own API."""
        current = self.admin.get("/api/v1/images/config").json()
        r = self.admin.post("/api/v1/images/config/update", json={**current, **BLANK, **values})
        assert r.status_code == 200, r.text
        return r.json()

    def do_import(self, **body: Any) -> dict:
        r = self.admin.post(IMPORT, json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def studio_config(self) -> dict:
        r = self.admin.get(f"{API}/config")
        assert r.status_code == 200, r.text
        return r.json()["config"]

    def generate(self, **body: Any) -> dict:
        r = self.admin.post(f"{API}/generations", json=body, headers={"Prefer": "wait=60"})
        assert r.status_code in (200, 202), r.text
        job = r.json()
        assert job["status"] == "succeeded", job
        return job

    def workflow(self, name: str) -> dict | None:
        return next((w for w in self.admin.get(f"{API}/workflows").json() if w["name"] == name), None)


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeComfyUI, FakeA1111, FakeCloudImages]]:
    with FakeComfyUI() as comfy, FakeA1111(auth=("owui", "a1111-s3cret")) as a1111, FakeCloudImages() as cloud:
        yield comfy, a1111, cloud


@pytest.fixture
def env(openwebui, fakes) -> Iterator[Env]:
    info = _admin(openwebui.url)
    admin = bearer(openwebui.url, info["token"])
    r = admin.put(f"{API}/config", json={"default_provider": None, "providers": {}, "fallback_chain": [],
                                         "api_keys": [], "openai_facade": {}})
    assert r.status_code == 200, r.text
    for w in admin.get(f"{API}/workflows").json():
        if w["name"].startswith("owui-") and not w["builtin"]:
            assert admin.delete(f"{API}/workflows/{w['id']}").status_code == 204
    env = Env(openwebui.url, info["token"], admin, *fakes)
    env.owui_config()
    yield env
    admin.close()


def test_the_first_start_import_ran_and_found_nothing_to_carry_over(openwebui):
    """The session's Open WebUI started on a fresh DATA_DIR: the studio looked once and logged it."""
    log = openwebui.log.read_text(errors="replace")
    assert "Open WebUI's image settings hold nothing new to import" in log, openwebui.log_tail()
    assert "could not import Open WebUI's image settings" not in log


def test_comfyui_with_its_workflow_and_node_mapping(env):
    env.owui_config(IMAGE_GENERATION_ENGINE="comfyui", COMFYUI_BASE_URL=env.comfy.url + "/",
                    COMFYUI_API_KEY="comfy-secret-key-1", COMFYUI_WORKFLOW=json.dumps(GRAPH),
                    COMFYUI_WORKFLOW_NODES=NODES, IMAGE_STEPS=7, IMAGE_SIZE="64x48")

    dry = env.do_import(dry_run=True)
    assert dry["dry_run"] and set(dry["added"]) == {"providers.owui-comfyui", "workflows.owui-comfyui",
                                                    "default_provider", "openai_facade.default.defaults"}
    assert "owui-comfyui" not in env.studio_config()["providers"] and env.workflow("owui-comfyui") is None

    first = env.do_import()
    assert set(first["applied"]) == set(dry["added"]) and not first["refused"]
    config = env.studio_config()
    provider = config["providers"]["owui-comfyui"]
    assert provider["type"] == "comfyui" and provider["backends"][0]["url"] == env.comfy.url
    header = provider["backends"][0]["headers"]["Authorization"]
    assert "comfy-secret-key-1" not in json.dumps(config) and header.endswith("ey-1")  # stored masked
    assert config["default_provider"] == "owui-comfyui"
    assert config["openai_facade"]["default"]["defaults"] == {"width": 64, "height": 48}
    saved = env.workflow("owui-comfyui")
    assert saved["slots"]["prompt"] == [["4", "text"]] and saved["slots"]["steps"] == [["2", "steps"]]

    before = len(env.comfy.requests)
    job = env.generate(prompt="a red fox in the snow", width=64, height=48)
    assert job["provider"] == "owui-comfyui"
    queued = [r["json"] for r in env.comfy.requests[before:] if r["method"] == "POST" and r["path"] == "/prompt"]
    assert len(queued) == 1
    graph = queued[0]["prompt"]
    assert graph["4"]["inputs"]["text"] == "a red fox in the snow"  # the prompt node of the mapping
    assert (graph["1"]["inputs"]["width"], graph["1"]["inputs"]["height"]) == (64, 48)
    assert graph["2"]["inputs"]["steps"] == 7  # IMAGE_STEPS
    assert graph["3"]["inputs"]["filename_prefix"] == "from-owui"  # the mapping's fixed value
    by_name = env.generate(prompt="by name", workflow="owui-comfyui", steps=3, width=32, height=32)
    graph = [r["json"] for r in env.comfy.requests if r["path"] == "/prompt"][-1]["prompt"]
    assert by_name["status"] == "succeeded" and graph["2"]["inputs"]["steps"] == 3 and graph["4"]["inputs"]["text"] == "by name"

    again = env.do_import()
    assert again["added"] == again["changed"] == again["applied"] == [] and not again["refused"]
    assert "providers.owui-comfyui" in again["unchanged"]

    env.owui_config(IMAGE_GENERATION_ENGINE="comfyui", COMFYUI_BASE_URL=env.comfy.url,
                    COMFYUI_API_KEY="comfy-secret-key-1", COMFYUI_WORKFLOW=json.dumps(GRAPH),
                    COMFYUI_WORKFLOW_NODES=NODES, IMAGE_STEPS=9, IMAGE_SIZE="64x48")
    held = env.do_import()
    assert held["refused"] and held["applied"] == []
    assert set(held["changed"]) == {"providers.owui-comfyui", "workflows.owui-comfyui"}
    assert any(line.startswith("workflows.owui-comfyui.api:") for line in held["lines"])
    assert all("comfy-secret-key-1" not in line for line in held["lines"])
    assert env.workflow("owui-comfyui")["api"]["2"]["inputs"]["steps"] == 7  # nothing overwritten
    forced = env.do_import(force=True)
    assert set(forced["applied"]) == {"providers.owui-comfyui", "workflows.owui-comfyui"}
    assert env.workflow("owui-comfyui")["api"]["2"]["inputs"]["steps"] == 9


def test_automatic1111_through_the_cli_with_its_auth_and_params(env):
    env.owui_config(IMAGE_GENERATION_ENGINE="automatic1111", AUTOMATIC1111_BASE_URL=env.a1111.url,
                    AUTOMATIC1111_API_AUTH="owui:a1111-s3cret", IMAGE_STEPS=6, IMAGE_SIZE="64x64",
                    AUTOMATIC1111_PARAMS={"cfg_scale": 4.5, "sampler_name": "Euler a", "scheduler": "karras"})
    result = CliRunner().invoke(cli, ["openwebui", "import-config", "--url", env.url, "--token", env.token])
    assert result.exit_code == 0, result.output
    assert "providers.owui-a1111" in result.output and "imported:" in result.output
    config = env.studio_config()
    creds = config["providers"]["owui-a1111"]["credentials"]
    assert set(creds) == {"username", "password"} and "a1111-s3cret" not in json.dumps(config)
    assert config["default_provider"] == "owui-a1111"

    before = len(env.a1111.bodies("/sdapi/v1/txt2img"))
    job = env.generate(prompt="a castle on a hill", width=64, height=64, steps=5)  # the fake checks the auth
    body = env.a1111.bodies("/sdapi/v1/txt2img")[before]
    assert job["provider"] == "owui-a1111" and body["prompt"] == "a castle on a hill" and body["steps"] == 5
    # Open WebUI's IMAGE_STEPS and AUTOMATIC1111_PARAMS are the facade's defaults (its image button's path)
    facade = env.admin.post(FACADE_PATH + "/images/generations", json={
        "model": "image-studio", "prompt": "through the facade", "size": "64x64", "response_format": "b64_json"})
    assert facade.status_code == 200, facade.text
    body = env.a1111.bodies("/sdapi/v1/txt2img")[-1]
    assert body["prompt"] == "through the facade" and (body["width"], body["height"]) == (64, 64)
    assert body["steps"] == 6 and body["cfg_scale"] == 4.5 and body["sampler_name"] == "Euler a"
    assert body["scheduler"] == "karras"

    again = CliRunner().invoke(cli, ["openwebui", "import-config", "--url", env.url, "--token", env.token])
    assert again.exit_code == 0 and "imported: nothing new" in again.output, again.output
    env.owui_config(IMAGE_GENERATION_ENGINE="automatic1111", AUTOMATIC1111_BASE_URL=env.a1111.url,
                    AUTOMATIC1111_API_AUTH="owui:another-password", IMAGE_STEPS=6, IMAGE_SIZE="64x64")
    held = CliRunner().invoke(cli, ["openwebui", "import-config", "--url", env.url, "--token", env.token])
    assert held.exit_code == 2 and "providers.owui-a1111.credentials" in held.output, held.output
    assert "another-password" not in held.output


def test_openai_compatible_server(env):
    env.owui_config(IMAGE_GENERATION_ENGINE="openai", IMAGES_OPENAI_API_BASE_URL=env.cloud.url + "/v1",
                    IMAGES_OPENAI_API_KEY="sk-fake-openai-key", IMAGE_GENERATION_MODEL="gpt-image-1",
                    IMAGE_SIZE="64x64")
    out = env.do_import()
    assert "providers.owui-openai" in out["applied"]
    config = env.studio_config()
    provider = config["providers"]["owui-openai"]
    assert provider["type"] == "openai_compatible" and provider["backends"][0]["url"] == env.cloud.url + "/v1"
    assert provider["settings"]["model"] == "gpt-image-1" and "sk-fake-openai-key" not in json.dumps(config)
    before = len(env.cloud.calls_to("/images/generations"))
    job = env.generate(prompt="a lighthouse at dusk", width=64, height=64)
    call = env.cloud.calls_to("/images/generations")[before]
    assert job["provider"] == "owui-openai"
    assert call["headers"]["authorization"] == "Bearer sk-fake-openai-key"
    assert call["json"]["prompt"] == "a lighthouse at dusk" and call["json"]["size"] == "64x64"
    assert call["json"]["model"] == "gpt-image-1"


def test_gemini_imagen(env):
    env.owui_config(IMAGE_GENERATION_ENGINE="gemini", IMAGES_GEMINI_API_BASE_URL=env.cloud.url + "/v1beta",
                    IMAGES_GEMINI_API_KEY="AIza-fake-gemini-key", IMAGES_GEMINI_ENDPOINT_METHOD="predict",
                    IMAGE_GENERATION_MODEL="imagen-3.0-generate-002", IMAGE_SIZE="1024x1024")
    out = env.do_import()
    assert "providers.owui-gemini" in out["applied"]
    config = env.studio_config()
    assert config["providers"]["owui-gemini"]["type"] == "imagen" and config["default_provider"] == "owui-gemini"
    assert "AIza-fake-gemini-key" not in json.dumps(config)
    before = len(env.cloud.calls_to(":predict"))
    job = env.generate(prompt="a koi pond", width=1024, height=1024)
    call = env.cloud.calls_to(":predict")[before]
    assert job["provider"] == "owui-gemini" and call["path"].endswith("/models/imagen-3.0-generate-002:predict")
    assert call["headers"]["x-goog-api-key"] == "AIza-fake-gemini-key"
    assert json.dumps(call["json"]).count("a koi pond") == 1


def test_settings_configure_replaced_come_from_its_backup(env, openwebui):
    """An admin's OpenAI-compatible setup, then `configure` points Open WebUI at the studio: the
    import takes the setup from configure's backup, never the studio's own facade."""
    env.owui_config(IMAGE_GENERATION_ENGINE="openai", IMAGES_OPENAI_API_BASE_URL=env.cloud.url + "/v1",
                    IMAGES_OPENAI_API_KEY="sk-before-the-studio", IMAGE_GENERATION_MODEL="dall-e-3")
    configured = CliRunner().invoke(cli, ["openwebui", "configure", "--url", env.url, "--token", env.token,
                                          "--data-dir", str(openwebui.data_dir), "--force"])
    assert configured.exit_code == 0, configured.output
    now = env.admin.get("/api/v1/images/config").json()
    assert now["IMAGES_OPENAI_API_BASE_URL"].endswith(FACADE_PATH)

    out = env.do_import()
    assert any("backup" in note for note in out["notes"]), out
    provider = env.studio_config()["providers"]["owui-openai"]
    assert provider["backends"][0]["url"] == env.cloud.url + "/v1"  # not the facade
    assert provider["credentials"]["api_key"].endswith("udio") and provider["settings"]["model"] == "dall-e-3"
    # Open WebUI's own image button now runs through the studio, on the imported provider
    before = len(env.cloud.calls_to("/images/generations"))
    r = env.admin.post("/api/v1/images/generations", json={"prompt": "a round trip", "size": "64x64"})
    assert r.status_code == 200, r.text
    call = env.cloud.calls_to("/images/generations")[before]
    assert call["headers"]["authorization"] == "Bearer sk-before-the-studio" and call["json"]["prompt"] == "a round trip"


def test_non_admins_cannot_import(env, openwebui):
    r = env.admin.post("/api/v1/auths/add", json={"name": "Ivy Import", "email": "ivy@example.com",
                                                  "password": "Studio-Test-pw-1", "role": "user"})
    assert r.status_code in (200, 400), r.text  # 400: added by an earlier run of this test in the session
    signin = httpx.post(openwebui.url + "/api/v1/auths/signin", timeout=30,
                        json={"email": "ivy@example.com", "password": "Studio-Test-pw-1"})
    with bearer(openwebui.url, signin.json()["token"]) as user:
        refused = user.post(IMPORT, json={})
    assert refused.status_code == 403, refused.text
