"""The shell: sign-in with an API key, the pages a role may see, errors shown."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.conftest import ADMIN_KEY, USER_KEY


def test_sign_in_with_an_api_key_then_the_pages_show(e2e, open_studio, shot):
    page = open_studio(e2e, key=None)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API key").fill("wrong-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API key").fill(ADMIN_KEY)
    page.get_by_role("button", name="Sign in").click()
    nav = page.get_by_role("navigation", name="Pages")
    for name in ("Generate", "Workflows", "Gallery", "Models", "Settings"):
        expect(nav.get_by_role("link", name=name)).to_be_visible()
    expect(page.get_by_text("admin · admin")).to_be_visible()
    assert page.page_errors == []


def test_a_user_key_sees_no_settings(e2e, open_studio, shot):
    page = open_studio(e2e, key=USER_KEY, page="settings")
    nav = page.get_by_role("navigation", name="Pages")
    expect(nav.get_by_role("link", name="Gallery")).to_be_visible()
    expect(nav.get_by_role("link", name="Settings")).to_have_count(0)
    expect(page.get_by_role("alert")).to_contain_text("Only admins")
    shot(page, "settings-refused-for-user")
    assert e2e.api(USER_KEY).get("/config").status_code == 403
