"""The studio's UI inside the real Open WebUI, in Chromium: a user signs in on Open WebUI's own
sign-in page, finds the "Image Studio" link that ``/static/loader.js`` adds, opens the studio
with their Open WebUI session (no key of the studio's) and generates an image, which lands in
their gallery. Screenshots go to build/e2e/.

Runs late in the session (conftest.LATE_MODULES): the session's first signup is the admin that
test_integration.py creates; run alone, this module signs that admin up itself.
"""

from __future__ import annotations

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


def test_a_user_opens_the_studio_from_open_webui_and_generates(openwebui, smoke_user, browser, shot):
    from tests.conftest import ARTIFACTS  # noqa: F401 - screenshots land there

    ctx = browser.new_context(viewport={"width": 1280, "height": 860})
    ctx.set_default_timeout(30_000)
    try:
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(openwebui.url + "/auth")
        page.locator("#email").fill(SMOKE_EMAIL)
        page.locator("#password").fill(PASSWORD)
        page.locator("#password").press("Enter")
        link = page.locator("#image-studio-entry")
        expect(link).to_be_visible(timeout=60_000)  # added by the studio's /static/loader.js
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
