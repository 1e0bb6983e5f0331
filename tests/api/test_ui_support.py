"""Routes the browser UI relies on: who the caller is (/me), the provider types with their
settings schema (/provider-types), and local model download (SSE) and delete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.api.conftest import ADMIN_KEY, ALICE_KEY, KEYS, Api, studio_config
from tests.providers.test_diffusers_local import hf_cache_copy


def test_me_names_the_caller_and_host(make_server):
    server = make_server(studio_config(api_keys=KEYS))
    assert Api(server.url, ADMIN_KEY).get("/me").json() == {
        "owner": "root", "name": "root", "role": "admin", "is_admin": True, "host": "standalone"}
    assert Api(server.url, ALICE_KEY).get("/me").json()["is_admin"] is False
    assert Api(server.url, None).get("/me").status_code == 401
    assert Api(server.url, "nope").get("/me").status_code == 401


def test_me_without_keys_is_the_local_admin(server):
    assert Api(server.url, None).get("/me").json()["owner"] == "local-admin"


def test_provider_types_carry_the_settings_schema_and_credentials(make_server):
    server = make_server(studio_config(api_keys=KEYS))
    types = {t["type"]: t for t in Api(server.url, ADMIN_KEY).get("/provider-types").json()}
    assert {"placeholder", "comfyui", "automatic1111", "openai", "diffusers_local"} <= set(types)
    placeholder = types["placeholder"]["settings_schema"]
    assert placeholder["properties"]["delay"]["minimum"] == 0
    assert types["openai"]["credentials"] == {"api_key": True}
    assert types["openai_compatible"]["credentials"] == {"api_key": False}
    assert types["comfyui"]["needs_backend"] is True or types["comfyui"]["default_url"]
    assert types["diffusers_local"]["credentials"] == {"hf_token": False}
    assert Api(server.url, ALICE_KEY).get("/provider-types").status_code == 403


@pytest.fixture
def hub_cache(tmp_path: Path) -> Path:
    """A Hugging Face cache holding one (weightless) pipeline, ``org/tiny``."""
    src = tmp_path / "src"
    (src / "unet").mkdir(parents=True)
    (src / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    (src / "unet" / "weights.bin").write_bytes(b"\0" * 4096)
    cache = tmp_path / "hf"
    hf_cache_copy(src, cache, "org/tiny")
    return cache


def test_local_models_list_delete_and_offline_download(make_server, hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = studio_config(api_keys=KEYS, providers={
        "fast": {"type": "placeholder"},
        "local": {"type": "diffusers_local", "settings": {"model": "org/tiny", "cache_dir": str(hub_cache)}},
    })
    server = make_server(config)
    admin, alice = Api(server.url, ADMIN_KEY), Api(server.url, ALICE_KEY)
    listed = {m["id"]: m for m in admin.get("/providers/local/models").json()}
    assert listed["org/tiny"]["details"]["size_bytes"] > 4096

    with admin.stream("POST", "/providers/local/models/download", json={"repo_id": "org/other"}) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        body = resp.read().decode()
    assert "event: error" in body and "HF_HUB_OFFLINE" in body

    assert alice.delete("/providers/local/models/org/tiny").status_code == 403
    assert admin.post("/providers/fast/models/download", json={"repo_id": "a/b"}).status_code == 422
    gone = admin.delete("/providers/local/models/org/tiny")
    assert gone.status_code == 200 and gone.json()["deleted"] == "org/tiny" and gone.json()["freed_bytes"] > 4096
    assert "org/tiny" not in {m["id"] for m in admin.get("/providers/local/models").json()}
    missing = admin.delete("/providers/local/models/org/tiny")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFound"
    assert admin.post("/providers/local/models/download", json={"repo_id": "x"}).status_code == 422
