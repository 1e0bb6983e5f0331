"""Prompt templates and style presets through the HTTP API: a user's own, shared by an admin,
the shipped styles; rendering with variables and defaults; generations with ``template`` +
``variables`` and ``styles``; the errors naming the field at fault."""

from __future__ import annotations

import pytest

from tests.api.conftest import ADMIN_KEY, ALICE_KEY, BOB_KEY, KEYS, Api, studio_config


@pytest.fixture
def apis(make_server):
    server = make_server(studio_config(api_keys=KEYS))
    return Api(server.url, ADMIN_KEY), Api(server.url, ALICE_KEY), Api(server.url, BOB_KEY)


PORTRAIT = {"name": "portrait", "prompt": "a portrait of {subject}, {lighting}, {prompt}",
            "negative_prompt": "blurry, {avoid}", "defaults": {"lighting": "soft window light", "avoid": "text"}}


def test_a_users_template_is_theirs_and_renders_with_defaults(apis):
    admin, alice, bob = apis
    made = alice.post("/templates", json=PORTRAIT)
    assert made.status_code == 201, made.text
    tpl = made.json()
    assert tpl["owner"] == "alice" and tpl["variables"] == ["subject", "lighting", "prompt", "avoid"]
    assert alice.post("/templates", json=PORTRAIT).status_code == 409
    assert bob.get(f"/templates/{tpl['id']}").status_code == 404
    assert [t["name"] for t in bob.get("/templates", params={"kind": "prompt"}).json()] == []
    assert "portrait" in [t["name"] for t in admin.get("/templates").json()]
    r = alice.post(f"/templates/{tpl['id']}/render",
                   json={"variables": {"subject": "an old sailor"}, "prompt": "oil on canvas", "styles": ["cinematic"]})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "prompt": "cinematic still a portrait of an old sailor, soft window light, oil on canvas . emotional, "
                  "harmonious, vignette, highly detailed, high budget, bokeh, cinemascope, moody, epic, gorgeous, "
                  "film grain, grainy",
        "negative_prompt": "blurry, text, anime, cartoon, graphic, text, painting, crayon, graphite, abstract, "
                           "glitch, deformed, mutated, ugly, disfigured"}


def test_generation_with_template_variables_and_styles(apis):
    _, alice, _ = apis
    alice.post("/templates", json=PORTRAIT)
    job = alice.post("/generations", headers={"Prefer": "wait=30"}, json={
        "template": "portrait", "variables": {"subject": "a cat", "lighting": "candle light"},
        "styles": ["watercolor"], "width": 64, "height": 64}).json()
    assert job["status"] == "succeeded", job
    assert job["request"]["prompt"] == ("watercolor painting a portrait of a cat, candle light . vibrant, beautiful, "
                                        "painterly, detailed, textural, artistic")
    assert job["request"]["template"] == "portrait" and job["request"]["styles"] == ["watercolor"]
    assert job["assets"][0]["prompt"] == job["request"]["prompt"]


def test_template_errors_name_the_field(apis):
    _, alice, bob = apis
    alice.post("/templates", json={"name": "t", "prompt": "a {subject}"})
    missing = alice.post("/generations", json={"template": "t", "width": 64, "height": 64})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "variables.subject"
    extra = alice.post("/generations", json={"template": "t", "variables": {"subject": "x", "mood": "y"}})
    assert extra.status_code == 422 and extra.json()["error"]["field"] == "variables.mood"
    unknown = bob.post("/generations", json={"template": "t", "variables": {"subject": "x"}})
    assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "template"
    style = alice.post("/generations", json={"prompt": "x", "styles": ["no-such-style"]})
    assert style.status_code == 404 and style.json()["error"]["field"] == "styles"
    brace = alice.post("/templates", json={"name": "bad", "prompt": "a {subject"})
    assert brace.status_code == 422 and brace.json()["error"]["field"] == "prompt"
    stray = alice.post("/templates", json={"name": "d", "prompt": "a {x}", "defaults": {"y": "1"}})
    assert stray.status_code == 422 and stray.json()["error"]["field"] == "defaults.y"
    lone = alice.post("/generations", json={"prompt": "x", "variables": {"a": "b"}})
    assert lone.status_code == 422 and lone.json()["error"]["field"] == "variables"
    assert alice.get("/jobs").json()["items"] == []  # nothing queued by any of these


def test_shared_templates_are_an_admins_and_everyone_uses_them(apis):
    admin, alice, bob = apis
    refused = alice.post("/templates", json={"name": "house", "prompt": "{prompt}, house style", "shared": True})
    assert refused.status_code == 403 and refused.json()["error"]["field"] == "shared"
    shared = admin.post("/templates", json={"name": "house", "kind": "style", "prompt": "{prompt}, house style",
                                            "negative_prompt": "watermark", "shared": True}).json()
    for user in (alice, bob):
        assert "house" in [t["name"] for t in user.get("/templates", params={"kind": "style"}).json()]
    job = bob.post("/generations", headers={"Prefer": "wait=30"},
                   json={"prompt": "a barn", "styles": ["house"], "width": 64, "height": 64}).json()
    assert job["request"]["prompt"] == "a barn, house style" and job["request"]["negative_prompt"] == "watermark"
    assert bob.put(f"/templates/{shared['id']}", json={"prompt": "{prompt} mine"}).status_code == 404
    assert bob.delete(f"/templates/{shared['id']}").status_code == 404
    assert admin.put(f"/templates/{shared['id']}", json={"description": "ours"}).json()["description"] == "ours"


def test_shipped_styles_are_listed_and_read_only(apis):
    _, alice, _ = apis
    styles = alice.get("/templates", params={"kind": "style"}).json()
    names = [s["name"] for s in styles if s["builtin"]]
    assert {"cinematic", "photographic", "anime", "pixel-art"} <= set(names)
    assert alice.get("/templates/builtin:anime").json()["kind"] == "style"
    assert alice.put("/templates/builtin:anime", json={"prompt": "x"}).status_code == 422
    assert alice.delete("/templates/builtin:anime").status_code == 422


def test_update_and_delete_own_template(apis):
    _, alice, _ = apis
    tpl = alice.post("/templates", json={"name": "a", "prompt": "{x} and {y}", "defaults": {"y": "z"}}).json()
    changed = alice.put(f"/templates/{tpl['id']}", json={"prompt": "{x} only", "defaults": {}})
    assert changed.status_code == 200 and changed.json()["variables"] == ["x"]
    bad = alice.put(f"/templates/{tpl['id']}", json={"prompt": "oops {"})
    assert bad.status_code == 422
    assert alice.get(f"/templates/{tpl['id']}").json()["prompt"] == "{x} only"  # nothing half-written
    assert alice.delete(f"/templates/{tpl['id']}").status_code == 204
    assert alice.get(f"/templates/{tpl['id']}").status_code == 404


def test_render_without_a_template_is_what_a_generation_runs(apis):
    _, alice, _ = apis
    body = {"prompt": "a barn", "negative_prompt": "fog", "styles": ["anime", "pixel-art"]}
    preview = alice.post("/templates/render", json=body)
    assert preview.status_code == 200, preview.text
    job = alice.post("/generations", headers={"Prefer": "wait=30"}, json={**body, "width": 64, "height": 64}).json()
    assert preview.json() == {"prompt": job["request"]["prompt"], "negative_prompt": job["request"]["negative_prompt"]}
    assert preview.json()["negative_prompt"].startswith("fog, photo, deformed")
    assert alice.post("/templates/render", json={"prompt": "x", "styles": ["nope"]}).status_code == 404
    assert alice.post("/templates/render", json={"prompt": "x", "variables": {"a": "b"}}).status_code == 422
