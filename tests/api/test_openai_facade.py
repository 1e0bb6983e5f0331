"""The OpenAI-compatible facade (``/openai/v1``) through a real server with placeholder providers:
requests as Open WebUI's image engine "openai" sends them, model mapping, edits, the model
list, OpenAI error bodies, service keys acting for forwarded users, the ``openai_facade``
config section, and the project's own ``openai_compatible`` provider as a real client."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import pytest
from PIL import Image

from image_studio.config import Settings, StudioConfig
from image_studio.crypto import config_to_public, merge_masked
from image_studio.studio import Studio
from image_studio.types import GenerationRequest, JobStatus
from tests.api.conftest import ADMIN_KEY, ALICE_KEY, API, KEYS, Api

SERVICE_KEY = "owui-service-key-1"
FACADE = API + "/openai/v1"
FORWARDED = {"X-OpenWebUI-User-Id": "8d2c-user-42", "X-OpenWebUI-User-Name": "Carol",
             "X-OpenWebUI-User-Email": "carol@example.org", "X-OpenWebUI-User-Role": "user"}
INIT_COLOUR = (10, 200, 30)


def facade_config(**over: Any) -> StudioConfig:
    data: dict[str, Any] = {
        "default_provider": "fast",
        "providers": {
            "fast": {"type": "placeholder"},
            "other": {"type": "placeholder", "settings": {"style": "detailed"}},
            "refuser": {"type": "placeholder", "settings": {"fail_with": "ContentRejected"}},
            "glacial": {"type": "placeholder", "settings": {"delay": 60}},
            "off": {"type": "placeholder", "enabled": False},
        },
        "api_keys": [*KEYS, {"key": SERVICE_KEY, "role": "service", "owner": "openwebui"}],
        "openai_facade": {"models": {"sdxl-comfy": {"provider": "other"},
                                     "refusing": {"provider": "refuser"},
                                     "slowpoke": {"provider": "glacial"}}},
    }
    data.update(over)
    return StudioConfig.model_validate(data)


def client(server, key: str | None = SERVICE_KEY, headers: dict[str, str] | None = None) -> httpx.Client:
    auth = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.url + FACADE, headers={**auth, **(headers or {})}, timeout=60)


def png(width: int, height: int, colour: tuple[int, ...] = INIT_COLOUR, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), colour).save(out, format="PNG")
    return out.getvalue()


def openai_mask(width: int, height: int) -> bytes:
    """OpenAI's convention: left half fully transparent (paint there), right half opaque."""
    im = Image.new("RGBA", (width, height), (0, 0, 0, 255))
    im.paste((0, 0, 0, 0), (0, 0, width // 2, height))
    out = io.BytesIO()
    im.save(out, format="PNG")
    return out.getvalue()


def decode(item: dict[str, Any]) -> Image.Image:
    im = Image.open(io.BytesIO(base64.b64decode(item["b64_json"], validate=True)))
    im.load()
    return im


@pytest.fixture
def server(make_server):
    return make_server(facade_config())


@pytest.fixture
def admin(server) -> Api:
    return Api(server.url, ADMIN_KEY)


def job_of(admin: Api, response: httpx.Response) -> dict[str, Any]:
    job_id = response.headers["X-Image-Studio-Job-Id"]
    r = admin.get(f"/jobs/{job_id}")
    assert r.status_code == 200, r.text
    return r.json()


def test_generation_as_open_webui_sends_it(server, admin):
    body = {"model": "dall-e-2", "prompt": "a red fox in snow", "n": 1, "size": "512x512",
            "response_format": "b64_json", "steps": 12, "negative_prompt": "blurry", "seed": 7}
    with client(server) as c:
        r = c.post("/images/generations", json=body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert isinstance(answer["created"], int) and answer["size"] == "512x512" and answer["output_format"] == "png"
    assert len(answer["data"]) == 1 and "url" not in answer["data"][0]
    im = decode(answer["data"][0])
    assert im.format == "PNG" and im.size == (512, 512)
    listed = {j["id"]: j for j in admin.get("/jobs").json()["items"]}
    job = listed[r.headers["X-Image-Studio-Job-Id"]]
    assert job["status"] == "succeeded" and job["provider"] == "fast" and job["owner"] == "openwebui"
    req = job["request"]
    assert (req["prompt"], req["steps"], req["negative_prompt"], req["seed"]) == ("a red fox in snow", 12, "blurry", 7)
    assert (req["width"], req["height"], req["model"], req["extra"]) == (512, 512, None, {})
    asset = job_of(admin, r)["assets"][0]
    stored = admin.get(asset["content_url"].removeprefix(API)).content
    assert base64.b64decode(answer["data"][0]["b64_json"]) == stored


def test_url_format_n2_and_unknown_fields_go_to_extra(server, admin):
    body = {"model": "gpt-image-1", "prompt": "two owls", "n": 2, "size": "96x64", "response_format": "url",
            "quality": "high", "enable_safety_checker": False, "extra": {"k": 1}, "params": {"denoise": 0.5}}
    with client(server) as c:
        r = c.post("/images/generations", json=body)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert len(data) == 2 and all("b64_json" in d and "url" not in d for d in data)
    images = [decode(d) for d in data]
    assert [im.size for im in images] == [(96, 64), (96, 64)]
    assert data[0]["b64_json"] != data[1]["b64_json"]  # seeds s and s+1
    req = job_of(admin, r)["request"]
    # quality is OpenAI's own option: ignored unless the route sets openai_options
    assert req["extra"] == {"enable_safety_checker": False, "k": 1} and req["params"] == {"denoise": 0.5}
    assert req["n"] == 2


@pytest.mark.parametrize(("model", "provider", "workflow"), [
    ("sdxl-comfy", "other", None),      # mapped in openai_facade.models
    ("other", "other", None),           # a provider id
    ("no-such-model", "fast", None),    # unknown: the default route (default chain)
    ("weightfree", "fast", "weightfree"),  # a shipped workflow (no workflow provider: default chain)
])
def test_model_mapping(server, admin, model, provider, workflow):
    with client(server) as c:
        r = c.post("/images/generations", json={"model": model, "prompt": "mapped", "size": "64x64"})
    assert r.status_code == 200, r.text
    job = job_of(admin, r)
    assert job["provider"] == provider
    assert job["request"]["provider"] == (None if provider == "fast" else provider)
    assert job["request"]["workflow"] == workflow


def test_body_provider_overrides_the_route_and_options_pass_for_openai_routes(make_server):
    cfg = facade_config(openai_facade={"default": {"provider": "other", "openai_options": True,
                                                   "defaults": {"steps": 5, "width": 80, "height": 40}}})
    server = make_server(cfg)
    admin = Api(server.url, ADMIN_KEY)
    with client(server) as c:
        r1 = c.post("/images/generations", json={"model": "dall-e-2", "prompt": "x", "size": "auto",
                                                  "quality": "hd", "background": "transparent"})
        r2 = c.post("/images/generations", json={"model": "dall-e-2", "prompt": "x", "provider": "fast",
                                                  "steps": 9, "width": 72})
    assert r1.status_code == 200 and r2.status_code == 200, (r1.text, r2.text)
    j1, j2 = job_of(admin, r1), job_of(admin, r2)
    assert j1["provider"] == "other" and j1["request"]["steps"] == 5
    assert (j1["request"]["width"], j1["request"]["height"]) == (80, 40)
    assert j1["request"]["extra"] == {"quality": "hd", "background": "transparent"}
    assert j2["provider"] == "fast" and j2["request"]["steps"] == 9
    assert (j2["request"]["width"], j2["request"]["height"]) == (72, 40)
    assert decode(r2.json()["data"][0]).size == (72, 40)


def test_edits_multipart_inpaint_img2img_and_references(server, admin):
    init = png(64, 48)
    with client(server) as c:
        r = c.post("/images/edits", data={"prompt": "paint the left", "model": ""},
                   files=[("image", ("a.png", init, "image/png")), ("mask", ("m.png", openai_mask(64, 48), "image/png"))])
        assert r.status_code == 200, r.text
        out = decode(r.json()["data"][0]).convert("RGB")
        refs = c.post("/images/edits", data={"prompt": "mix", "size": "32x32", "n": "2", "steps": "4",
                                             "params": '{"denoise": 0.4}'},
                      files=[("image[]", ("a.png", init, "image/png")),
                             ("image[]", ("b.png", png(20, 20, (255, 0, 0)), "image/png"))])
    job = job_of(admin, r)
    assert job["request"]["mode"] == "inpaint" and job["provider"] == "fast"
    assert job["request"]["init_image_bytes"] == len(init) and job["request"]["mask_bytes"] > 0
    assert out.size == (64, 48)  # no size: the image's own
    assert out.getpixel((60, 24)) == INIT_COLOUR  # opaque in OpenAI's mask: kept
    assert out.getpixel((2, 24)) != INIT_COLOUR  # transparent: painted
    assert refs.status_code == 200, refs.text
    rj = job_of(admin, refs)["request"]
    assert rj["mode"] == "img2img" and rj["n"] == 2 and rj["steps"] == 4 and rj["params"] == {"denoise": 0.4}
    assert "mask_bytes" not in rj and (rj["width"], rj["height"]) == (32, 32)
    [ref] = rj["extra"]["reference_images"]
    assert Image.open(io.BytesIO(base64.b64decode(ref))).size == (20, 20)
    assert [decode(d).size for d in refs.json()["data"]] == [(32, 32), (32, 32)]


def test_edit_errors(server):
    with client(server) as c:
        none = c.post("/images/edits", data={"prompt": "x"})
        junk = c.post("/images/edits", data={"prompt": "x"}, files=[("image", ("a.png", b"not an image", "image/png"))])
        bad_mask = c.post("/images/edits", data={"prompt": "x"},
                          files=[("image", ("a.png", png(8, 8), "image/png")), ("mask", ("m.png", b"zz", "image/png"))])
        no_prompt = c.post("/images/edits", files=[("image", ("a.png", png(8, 8), "image/png"))])
    for r, param in ((none, "image"), (junk, "image"), (bad_mask, "mask"), (no_prompt, "prompt")):
        assert r.status_code == 422, r.text
        assert r.json()["error"]["param"] == param and r.json()["error"]["type"] == "invalid_request_error"


def test_models_listing(server, admin):
    template = admin.get("/workflows/builtin:txt2img").json()
    saved = admin.post("/workflows", json={"name": "my-flow", "workflow": {"prompt": template["api"],
                                                                             "slots": template["slots"]}})
    assert saved.status_code == 201, saved.text
    with client(server) as c:
        listing = c.get("/models")
        one = c.get("/models/my-flow")
        missing = c.get("/models/nope")
    assert listing.status_code == 200 and listing.json()["object"] == "list"
    ids = [m["id"] for m in listing.json()["data"]]
    assert ids[:3] == ["sdxl-comfy", "refusing", "slowpoke"]
    assert {"fast", "other", "glacial", "txt2img", "weightfree", "my-flow"} <= set(ids) and "off" not in ids
    assert len(ids) == len(set(ids))
    assert all(m["object"] == "model" and m["owned_by"] == "image-studio" and isinstance(m["created"], int)
               for m in listing.json()["data"])
    assert one.status_code == 200 and one.json()["id"] == "my-flow"
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "model"
    with client(server) as c:  # a saved workflow's name maps to it
        r = c.post("/images/generations", json={"model": "my-flow", "prompt": "flow", "size": "64x64"})
    assert r.status_code == 200 and job_of(admin, r)["request"]["workflow"] == "my-flow"


@pytest.mark.parametrize(("body", "status", "param"), [
    ({"prompt": "x", "size": "big"}, 422, "size"),
    ({"prompt": "x", "size": "4x4"}, 422, "size"),
    ({"prompt": "x", "size": "64x64", "width": 2}, 422, "width"),
    ({"prompt": "x", "n": 0}, 422, "n"),
    ({"prompt": "x", "response_format": "xml"}, 422, "response_format"),
    ({"size": "64x64"}, 422, "prompt"),
    ({"prompt": "   "}, 422, "prompt"),
    ({"prompt": "x", "stream": True}, 422, "stream"),
    ({"prompt": "x", "steps": "many"}, 422, "steps"),
    ({"prompt": "x", "extra": [1]}, 422, "extra"),
    ({"prompt": "x", "media": "video"}, 422, "media"),
    ({"prompt": "x", "provider": "nope"}, 404, "provider"),
    ({"prompt": "x", "provider": "off"}, 404, "provider"),
])
def test_error_shapes(server, body, status, param):
    with client(server) as c:
        r = c.post("/images/generations", json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param and error["message"]
    assert error["type"] == "invalid_request_error"


def test_auth_failures_and_failed_jobs_in_openai_shape(server):
    with client(server, key=None) as c:
        anon = c.post("/images/generations", json={"prompt": "x"})
    with client(server, key="wrong-key-123456") as c:
        wrong = c.get("/models")
    for r in (anon, wrong):
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        assert "API key" in r.json()["error"]["message"]
    with client(server) as c:
        refused = c.post("/images/generations", json={"model": "refusing", "prompt": "x", "size": "64x64"})
    assert refused.status_code == 422 and refused.headers["X-Image-Studio-Job-Id"]
    assert refused.json()["error"]["code"] == "content_policy_violation"


def test_no_provider_is_503(make_server):
    server = make_server(StudioConfig.model_validate({"api_keys": [{"key": SERVICE_KEY, "role": "service",
                                                                      "owner": "openwebui"}]}))
    with client(server) as c:
        r = c.post("/images/generations", json={"model": "dall-e-2", "prompt": "x"})
        models = c.get("/models")
    assert r.status_code == 503, r.text
    assert r.json()["error"]["type"] == "server_error" and r.json()["error"]["param"] == "providers"
    assert "no provider is configured" in r.json()["error"]["message"]
    assert "fast" not in [m["id"] for m in models.json()["data"]]


def test_wait_max_answers_504_and_the_job_runs_on(make_server):
    server = make_server(facade_config(), wait_max=0.2)
    admin = Api(server.url, ADMIN_KEY)
    with client(server) as c:
        r = c.post("/images/generations", json={"model": "slowpoke", "prompt": "patience", "size": "64x64"})
    assert r.status_code == 504, r.text
    assert r.json()["error"]["code"] == "timeout" and r.json()["error"]["type"] == "server_error"
    job_id = r.headers["X-Image-Studio-Job-Id"]
    assert job_id in r.json()["error"]["message"]
    job = admin.get(f"/jobs/{job_id}").json()
    assert job["status"] in ("queued", "running") and job["provider"] in (None, "glacial")
    assert admin.post(f"/jobs/{job_id}/cancel").json()["status"] == "canceled"


@pytest.mark.parametrize(("key", "headers", "owner"), [
    (SERVICE_KEY, FORWARDED, "8d2c-user-42"),  # service key + Open WebUI's forwarded user
    (SERVICE_KEY, {}, "openwebui"),             # service key alone: the documented service user
    (ALICE_KEY, FORWARDED, "alice"),            # a plain user key: the headers are ignored
    (ADMIN_KEY, FORWARDED, "root"),             # an admin key too
])
def test_job_owner(server, admin, key, headers, owner):
    with client(server, key=key, headers=headers) as c:
        r = c.post("/images/generations", json={"prompt": "whose", "size": "64x64"})
    assert r.status_code == 200, r.text
    assert job_of(admin, r)["owner"] == owner
    assets = admin.get("/assets", params={"owner": owner}).json()["items"]
    assert [a["job_id"] for a in assets] == [r.headers["X-Image-Studio-Job-Id"]]


def test_forwarded_id_is_checked_and_service_key_sees_only_its_own(server):
    with client(server, headers={"X-OpenWebUI-User-Id": "u" * 201}) as c:
        bad = c.post("/images/generations", json={"prompt": "x", "size": "64x64"})
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "X-OpenWebUI-User-Id"
    service = Api(server.url, SERVICE_KEY)
    assert service.get("/config").status_code == 403
    with client(server, headers=FORWARDED) as c:
        assert c.post("/images/generations", json={"prompt": "x", "size": "64x64"}).status_code == 200
    assert service.get("/jobs").json()["items"] == []  # the job is Carol's, not the service user's


def test_config_section_round_trip_and_persistence(make_server):
    server = make_server(facade_config())
    admin = Api(server.url, ADMIN_KEY)
    body = admin.get("/config").json()["config"]
    assert body["openai_facade"]["models"]["sdxl-comfy"]["provider"] == "other"
    assert SERVICE_KEY not in admin.get("/config").text
    body["openai_facade"]["models"]["house"] = {"provider": "other", "defaults": {"steps": 7, "cfg_scale": 3.5}}
    body["openai_facade"]["default"] = {"provider": "other"}
    assert admin.put("/config", json=body).status_code == 200
    bad = admin.put("/config", json={**body, "openai_facade": {"models": {"x": {"provider": "missing"}}}})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "openai_facade.models.x.provider"
    bad2 = admin.put("/config", json={**body, "openai_facade": {"models": {"x": {"defaults": {"prompt": "p"}}}}})
    assert bad2.status_code == 422 and bad2.json()["error"]["field"] == "openai_facade.models.x.defaults"
    with client(server) as c:
        r = c.post("/images/generations", json={"model": "house", "prompt": "home", "size": "64x64"})
        d = c.post("/images/generations", json={"model": "dall-e-3", "prompt": "home", "size": "64x64"})
    job = job_of(admin, r)
    assert job["provider"] == "other" and job["request"]["steps"] == 7 and job["request"]["cfg_scale"] == 3.5
    assert job_of(admin, d)["provider"] == "other"
    assert "house" in [m["id"] for m in client(server).get("/models").json()["data"]]
    server.stop()
    again = make_server(facade_config())  # same data dir: the saved layer applies over the config
    assert Api(again.url, ADMIN_KEY).get("/config").json()["config"]["openai_facade"]["models"]["house"]["defaults"] \
        == {"steps": 7, "cfg_scale": 3.5}


def test_public_and_masked_merge_keep_the_section():
    cfg = facade_config()
    public = config_to_public(cfg)
    assert public["openai_facade"]["models"]["sdxl-comfy"]["provider"] == "other"
    assert SERVICE_KEY not in str(public)
    kept = merge_masked({"default_provider": "other"}, cfg)
    assert kept.openai_facade == cfg.openai_facade and kept.api_keys[-1].role == "service"
    replaced = merge_masked({**public, "openai_facade": {"default": {"provider": "fast"}}}, cfg)
    assert replaced.openai_facade.models == {} and replaced.openai_facade.default.provider == "fast"
    assert replaced.api_keys[-1].key.get_secret_value() == SERVICE_KEY


async def test_openai_compatible_provider_through_the_facade(make_server, tmp_path):
    server = make_server(facade_config())
    admin = Api(server.url, ADMIN_KEY)
    cfg = StudioConfig.model_validate({"default_provider": "remote", "providers": {"remote": {
        "type": "openai_compatible", "backends": [{"url": server.url + FACADE}],
        "credentials": {"api_key": SERVICE_KEY}, "settings": {"model": "sdxl-comfy", "edits": True}}}})
    async with Studio(Settings(data_dir=tmp_path / "client", secret_key="client-secret"), config=cfg) as studio:
        models = [m.id for m in await studio.providers["remote"].list_models()]
        job = await studio.wait((await studio.submit(
            GenerationRequest(prompt="over the wire", width=128, height=96, n=2), owner="me")).id, 60)
        assert job.status is JobStatus.succeeded, job.error
        sizes = [((a := await studio.store.get_asset(i)).width, a.height) for i in job.asset_ids]
        mask = Image.new("L", (64, 48), 0)
        mask.paste(255, (0, 0, 32, 48))  # the studio's convention: white is painted
        buf = io.BytesIO()
        mask.save(buf, format="PNG")
        edit = await studio.wait((await studio.submit(
            GenerationRequest(prompt="edit over the wire", width=64, height=48, init_image=png(64, 48),
                              mask=buf.getvalue()), owner="me")).id, 60)
        assert edit.status is JobStatus.succeeded, edit.error
        edited = await studio.store.get_asset(edit.asset_ids[0])
        out = Image.open(io.BytesIO(b"".join([c async for c in await studio.assets.open(edited)]))).convert("RGB")
    assert {"sdxl-comfy", "fast", "other", "txt2img"} <= set(models)
    assert sizes == [(128, 96), (128, 96)]
    server_jobs = admin.get("/jobs").json()["items"]
    assert [(j["provider"], j["owner"], j["request"]["mode"]) for j in server_jobs] == [
        ("other", "openwebui", "inpaint"), ("other", "openwebui", "txt2img")]
    assert server_jobs[1]["request"]["n"] == 2 and server_jobs[1]["request"]["prompt"] == "over the wire"
    assert out.getpixel((60, 24)) == INIT_COLOUR and out.getpixel((2, 24)) != INIT_COLOUR
