"""The studio's UI inside the real Open WebUI, in Chromium: a user signs in on Open WebUI's own
sign-in page, finds the "Image Studio" link that ``/static/loader.js`` adds, opens the studio
with their Open WebUI session (no key of the studio's) and generates an image, which lands in
their gallery. Screenshots go to build/e2e/.

Runs late in the session (conftest.LATE_MODULES): the session's first signup is the admin that
test_integration.py creates; run alone, this module signs that admin up itself.
"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.openwebui.test_facade_in_openwebui import _admin
from tests.openwebui.test_integration import API, PASSWORD, bearer, set_image_generation

SMOKE_EMAIL = "sam@example.com"


@pytest.fixture(scope="module")
def smoke_user(openwebui) -> dict:
    """A plain Open WebUI user (role user) and a studio with a placeholder provider."""
    admin = bearer(openwebui.url, _admin(openwebui.url)["token"])
    set_image_generation(admin, True)
    config = admin.get(f"{API}/config").json()["config"]
    if "ph" not in config.get("providers", {}):
        r = admin.put(f"{API}/config", json={"default_provider": "ph", "providers": {"ph": {"type": "placeholder"}}})
        assert r.status_code == 200, r.text
    added = admin.post("/api/v1/auths/add", json={"name": "Sam Smoke", "email": SMOKE_EMAIL, "password": PASSWORD,
                                                  "role": "user"})
    assert added.status_code == 200, added.text
    admin.close()
    return added.json()


def sign_in(page, url: str, email: str) -> list[str]:
    """Sign in on Open WebUI's own page and wait for the studio's entry link; returns the list
    that collects the page's uncaught errors."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url + "/auth")
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    page.locator("#password").press("Enter")
    expect(page.locator("#image-studio-entry")).to_be_visible(timeout=60_000)  # from /static/loader.js
    return errors


def test_a_user_opens_the_studio_from_open_webui_and_generates(openwebui, smoke_user, browser, shot):
    ctx = browser.new_context(viewport={"width": 1280, "height": 860})
    ctx.set_default_timeout(30_000)
    try:
        page = ctx.new_page()
        errors = sign_in(page, openwebui.url, SMOKE_EMAIL)
        link = page.locator("#image-studio-entry")
        shot(page, "openwebui-with-studio-link")
        link.click()
        page.wait_for_url("**/image-studio/**")
        nav = page.get_by_role("navigation", name="Pages")
        expect(nav.get_by_role("link", name="Gallery")).to_be_visible()
        expect(nav.get_by_role("link", name="Settings")).to_have_count(0)  # a user, not an admin
        expect(page.get_by_text("Sam Smoke · user")).to_be_visible()
        expect(page.get_by_role("link", name="← Open WebUI")).to_be_visible()

        page.get_by_label("Prompt", exact=True).fill("a smoke test lighthouse")
        page.get_by_role("button", name="Generate", exact=True).click()
        done = page.get_by_role("listitem").filter(has_text="a smoke test lighthouse").get_by_text("succeeded")
        expect(done).to_be_visible(timeout=60_000)
        shot(page, "openwebui-studio-generated")
        assert errors == []
    finally:
        ctx.close()

    token = httpx.post(openwebui.url + "/api/v1/auths/signin", timeout=30,
                       json={"email": SMOKE_EMAIL, "password": PASSWORD}).json()["token"]
    with bearer(openwebui.url, token) as mine:
        items = mine.get(f"{API}/assets", params={"q": "a smoke test lighthouse"}).json()["items"]
    assert len(items) == 1 and items[0]["owner"] == smoke_user["id"]


def test_an_admin_previews_and_imports_open_webui_image_settings(openwebui, browser, shot):
    """Settings > "Import from Open WebUI" (issue #6 part 1): Open WebUI's ComfyUI engine, written
    through Open WebUI's own config API, is previewed (nothing written), imported (a provider
    and a workflow appear), then changed in Open WebUI: the preview flags the conflict and
    "Replace changed settings" (confirmed) applies it. The studio and Open WebUI settings are put
    back afterwards."""
    import json

    from tests.fakes.comfyui_server import FakeComfyUI
    from tests.openwebui.test_facade_in_openwebui import ADMIN_EMAIL
    from tests.openwebui.test_import_config import BLANK
    from tests.openwebui.test_import_mapping import GRAPH, NODES

    admin = bearer(openwebui.url, _admin(openwebui.url)["token"])
    studio_before = admin.get(f"{API}/config").json()["config"]
    owui_before = admin.get("/api/v1/images/config").json()
    # A studio with nothing configured yet (as the import tests start), so every item is new.
    r = admin.put(f"{API}/config", json={"default_provider": None, "providers": {}, "fallback_chain": []})
    assert r.status_code == 200, r.text

    def owui_config(**values) -> None:
        current = admin.get("/api/v1/images/config").json()
        r = admin.post("/api/v1/images/config/update", json={**current, **BLANK, **values})
        assert r.status_code == 200, r.text

    def workflow_steps() -> int | None:
        saved = next((w for w in admin.get(f"{API}/workflows").json() if w["name"] == "owui-comfyui"), None)
        return saved["api"]["2"]["inputs"]["steps"] if saved else None

    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(30_000)
    try:
        with FakeComfyUI() as comfy:
            comfy_settings = {"IMAGE_GENERATION_ENGINE": "comfyui", "COMFYUI_BASE_URL": comfy.url,
                              "COMFYUI_WORKFLOW": json.dumps(GRAPH), "COMFYUI_WORKFLOW_NODES": NODES,
                              "IMAGE_SIZE": "64x48"}
            owui_config(**comfy_settings, IMAGE_STEPS=7)
            page = ctx.new_page()
            errors = sign_in(page, openwebui.url, ADMIN_EMAIL)
            entry = page.locator("#image-studio-entry")
            # (an admin's first sign-in may open Open WebUI's "what's new" modal over the link)
            page.goto(openwebui.url + (entry.get_attribute("href") or "/image-studio/"))
            page.get_by_role("navigation", name="Pages").get_by_role("link", name="Settings").click()
            card = page.get_by_role("region", name="Import from Open WebUI")
            expect(card).to_be_visible()

            card.get_by_role("button", name="Preview").click()
            plan = card.get_by_role("list", name="Import plan")
            expect(plan.get_by_role("listitem").filter(has_text="providers.owui-comfyui")).to_have_count(1)
            expect(card).to_contain_text(re.compile(r"Preview: \d+ to add, 0 changed"))
            assert "owui-comfyui" not in admin.get(f"{API}/config").json()["config"]["providers"]
            shot(page, "openwebui-settings-import-preview")

            card.get_by_role("button", name="Import", exact=True).click()
            expect(page.get_by_role("article", name="ComfyUI (from Open WebUI)")).to_be_visible()
            config = admin.get(f"{API}/config").json()["config"]
            assert config["providers"]["owui-comfyui"]["type"] == "comfyui"
            assert config["default_provider"] == "owui-comfyui" and workflow_steps() == 7

            # Changed in Open WebUI: the preview holds the change back and flags it.
            owui_config(**comfy_settings, IMAGE_STEPS=9)
            card.get_by_role("button", name="Preview").click()
            changed = plan.get_by_role("listitem").filter(has_text="workflows.owui-comfyui")
            expect(changed.first).to_contain_text("conflict")
            replace = card.get_by_role("button", name="Replace changed settings")
            expect(replace).to_be_visible()
            shot(page, "openwebui-settings-import-conflict")
            page.once("dialog", lambda dialog: dialog.accept())
            replace.click()
            expect(card).to_contain_text(re.compile(r"Done: .*; [1-9]\d* written"))
            expect(replace).to_have_count(0)
            assert workflow_steps() == 9
            assert errors == []
    finally:
        ctx.close()
        admin.put(f"{API}/config", json={k: studio_before[k] for k in ("default_provider", "providers", "fallback_chain")})
        for w in admin.get(f"{API}/workflows").json():
            if w["name"].startswith("owui-") and not w["builtin"]:
                admin.delete(f"{API}/workflows/{w['id']}")
        admin.post("/api/v1/images/config/update", json=owui_before)
        admin.close()
