"""API keys and roles, ownership, config editing with masked secrets, health and metrics,
assets content ranges and delete, and the refusal to serve an open admin on a public address."""

from __future__ import annotations

import pytest

from image_studio.api.app import create_app
from image_studio.config import Settings
from image_studio.errors import ConfigError
from image_studio.studio import Studio
from tests.api.conftest import ADMIN_KEY, ALICE_KEY, BOB_KEY, KEYS, Api, studio_config


@pytest.fixture
def keyed(make_server):
    server = make_server(studio_config(api_keys=KEYS))
    return {name: Api(server.url, key) for name, key in
            (("admin", ADMIN_KEY), ("alice", ALICE_KEY), ("bob", BOB_KEY), ("anon", None), ("wrong", "wrong-key-99999"))}


def gen(api: Api, prompt: str) -> dict:
    r = api.post("/generations", json={"prompt": prompt, "width": 64, "height": 64}, headers={"Prefer": "wait=20"})
    assert r.status_code == 200, r.text
    return r.json()


def test_keys_roles_and_ownership(keyed):
    anon = keyed["anon"].get("/jobs")
    assert anon.status_code == 401 and anon.json()["error"]["type"] == "Unauthorized"
    assert keyed["wrong"].get("/jobs").status_code == 401
    a = gen(keyed["alice"], "alice's fox")
    b = gen(keyed["bob"], "bob's whale")
    assert a["owner"] == "alice" and b["owner"] == "bob"
    alice_jobs = [j["id"] for j in keyed["alice"].get("/jobs").json()["items"]]
    assert alice_jobs == [a["id"]]
    assert keyed["alice"].get(f"/jobs/{b['id']}").status_code == 404
    assert keyed["alice"].post(f"/jobs/{b['id']}/cancel").status_code == 404
    bob_asset = b["assets"][0]["id"]
    assert keyed["alice"].get(f"/assets/{bob_asset}/content").status_code == 404
    assert keyed["alice"].delete(f"/assets/{bob_asset}").status_code == 404
    assert [x["prompt"] for x in keyed["alice"].get("/assets").json()["items"]] == ["alice's fox"]
    assert len(keyed["admin"].get("/jobs").json()["items"]) == 2
    assert [x["owner"] for x in keyed["admin"].get("/assets", params={"owner": "bob"}).json()["items"]] == ["bob"]
    forbidden = keyed["alice"].get("/config")
    assert forbidden.status_code == 403 and forbidden.json()["error"]["message"] == "admins only"
    assert keyed["alice"].put("/config", json={}).status_code == 403
    assert keyed["admin"].get("/config").status_code == 200


def test_config_update_masks_secrets_applies_live_and_rejects_bad_fields(keyed):
    admin = keyed["admin"]
    cfg = admin.get("/config").json()
    assert "placeholder" in cfg["provider_types"] and "comfyui" in cfg["provider_types"]
    body = cfg["config"]
    body["providers"]["third"] = {"type": "placeholder", "credentials": {"token": "super-secret-token-value"}}
    body["fallback_chain"] = ["third"]
    r = admin.put("/config", json=body)
    assert r.status_code == 200, r.text
    text = r.text + admin.get("/config").text + admin.get("/config/export").text
    assert "super-secret-token-value" not in text and ADMIN_KEY not in text
    assert "alue" in r.json()["config"]["providers"]["third"]["credentials"]["token"]
    ids = [p["id"] for p in admin.get("/providers").json()]
    assert "third" in ids
    job = admin.post(
        "/generations", json={"prompt": "x", "provider": "third", "width": 64, "height": 64},
        headers={"Prefer": "wait=20"}).json()
    assert job["status"] == "succeeded" and job["provider"] == "third"
    # sending the masked config back keeps the secret and the keys
    again = admin.put("/config", json=admin.get("/config").json()["config"])
    assert again.status_code == 200
    assert keyed["alice"].get("/jobs").status_code == 200
    bad = admin.put("/config", json={**body, "providers": {**body["providers"],
                    "x": {"type": "placeholder", "settings": {"delay": -1}}}})
    assert bad.status_code == 422 and "providers.x.settings.delay" in bad.json()["error"]["field"]
    bad_ref = admin.put("/config", json={**body, "fallback_chain": ["missing"]})
    assert bad_ref.json()["error"]["field"].startswith("fallback_chain")
    assert "x" not in [p["id"] for p in admin.get("/providers").json()]


def test_health_metrics_and_provider_routes(api: Api):
    health = api.get("/health").json()
    assert health["status"] == "ok" and health["providers"] == ["fast", "slow"]
    gen(api, "count me")
    metrics = api.get("/metrics").text
    assert 'image_studio_jobs_finished_total{provider="fast",status="succeeded"} 1.0' in metrics
    providers = api.get("/providers").json()
    assert {p["id"]: p["default"] for p in providers} == {"fast": True, "slow": False}
    tested = api.post("/providers/fast/test").json()
    assert tested[0]["ok"] is True
    assert [m["id"] for m in api.get("/providers/fast/models").json()][:1]
    assert api.get("/providers/nope/models").status_code == 404


def test_no_provider_configured_starts_and_answers_503(make_server):
    api = Api(make_server(studio_config(default_provider=None, providers={})).url, None)
    health = api.get("/health").json()
    assert health["status"] == "degraded" and "no provider" in health["problems"][0]
    r = api.post("/generations", json={"prompt": "x"})
    assert r.status_code == 503 and "no provider is configured" in r.json()["error"]["message"]


def test_asset_ranges_and_delete(api: Api):
    asset = gen(api, "ranges")["assets"][0]
    url = f"/assets/{asset['id']}/content"
    full = api.get(url).content
    part = api.get(url, headers={"Range": "bytes=0-7"})
    assert part.status_code == 206 and part.content == full[:8] == b"\x89PNG\r\n\x1a\n"
    assert part.headers["content-range"] == f"bytes 0-7/{len(full)}"
    tail = api.get(url, headers={"Range": "bytes=-4"})
    assert tail.content == full[-4:]
    bad = api.get(url, headers={"Range": f"bytes={len(full)}-"})
    assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{len(full)}"
    assert api.delete(f"/assets/{asset['id']}").status_code == 204
    assert api.get(url).status_code == 404


async def test_open_admin_on_public_address_refused(tmp_path):
    settings = Settings(data_dir=tmp_path, host="0.0.0.0", secret_key="k")
    app = create_app(settings, studio=Studio(settings, config=studio_config()))
    with pytest.raises(ConfigError) as info:
        async with app.router.lifespan_context(app):
            pass
    assert info.value.field == "api_keys" and "0.0.0.0" in info.value.message


async def test_keys_allow_a_public_address(tmp_path):
    settings = Settings(data_dir=tmp_path, host="0.0.0.0", secret_key="k")
    app = create_app(settings, studio=Studio(settings, config=studio_config(api_keys=KEYS)))
    async with app.router.lifespan_context(app):
        assert app.state.studio.providers
