"""The Gallery page and the lightbox: filters kept in the URL, the lightbox's details,
keyboard navigation, download, reuse, delete, deep links, and per-owner visibility."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ADMIN_KEY, USER_KEY


def _generate(server, key: str, prompt: str, provider: str = "placeholder", seed: int = 7) -> dict:
    r = server.api(key).post("/generations", json={"prompt": prompt, "provider": provider, "width": 256,
                                                   "height": 192, "seed": seed, "steps": 12},
                             headers={"Prefer": "wait=30"})
    assert r.status_code in (200, 201, 202), r.text
    job = r.json()
    assert job["status"] == "succeeded", job
    return job["assets"][0]


@pytest.fixture
def studio(make_e2e):
    """A studio of this test's own with five images: four by the admin (one on the `slow`
    provider), one by alice. Returns (server, {prompt: asset})."""
    server = make_e2e()
    made = {}
    for i, prompt in enumerate(("gallery fox alpha", "gallery fox beta", "gallery owl gamma")):
        made[prompt] = _generate(server, ADMIN_KEY, prompt, seed=100 + i)
    made["gallery heron slow"] = _generate(server, ADMIN_KEY, "gallery heron slow", provider="slow", seed=200)
    made["alice private kestrel"] = _generate(server, USER_KEY, "alice private kestrel", seed=300)
    return server, made


def _tiles(page):
    return page.get_by_role("list", name="Assets").get_by_role("button")


def _tile(page, prompt: str):
    return page.get_by_role("list", name="Assets").get_by_role("button", name=prompt, exact=True)


def test_filters_live_in_the_url_and_survive_a_reload(studio, open_studio, shot):
    server, made = studio
    page = open_studio(server, page="gallery")
    expect(page.get_by_role("heading", name="Gallery")).to_be_visible()
    expect(_tiles(page)).to_have_count(5)  # an admin sees every owner's assets
    expect(_tile(page, "gallery fox alpha").locator("img")).to_have_attribute("loading", "lazy")
    shot(page, "gallery-light")

    page.get_by_label("Search prompts").fill("fox")
    expect(_tiles(page)).to_have_count(2)
    expect(page).to_have_url(re.compile(r"#/gallery\?q=fox$"))
    expect(_tile(page, "gallery fox alpha")).to_be_visible()
    expect(_tile(page, "gallery fox beta")).to_be_visible()

    page.reload()
    expect(page.get_by_label("Search prompts")).to_have_value("fox")
    expect(_tiles(page)).to_have_count(2)

    page.get_by_role("button", name="Clear filters").first.click()
    expect(_tiles(page)).to_have_count(5)
    page.get_by_label("Provider").select_option(label="Slow placeholder")
    expect(page).to_have_url(re.compile(r"provider=slow"))
    expect(_tiles(page)).to_have_count(1)
    expect(_tile(page, "gallery heron slow")).to_be_visible()

    page.get_by_label("Provider").select_option(label="All providers")
    page.get_by_label("Kind").select_option(label="Videos")
    expect(page.get_by_text("Nothing matches these filters.")).to_be_visible()
    page.get_by_label("Kind").select_option(label="Images")
    page.get_by_label("Search prompts").fill("no such prompt anywhere")
    expect(page.get_by_text("Nothing matches these filters.")).to_be_visible()
    assert page.page_errors == []


def test_lightbox_details_keys_download_reuse_and_delete(studio, open_studio, shot):
    server, made = studio
    gamma, beta, alpha = made["gallery owl gamma"], made["gallery fox beta"], made["gallery fox alpha"]
    page = open_studio(server, page="gallery")
    _tile(page, "gallery owl gamma").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(page).to_have_url(re.compile(rf"asset={gamma['id']}"))
    expect(dialog.get_by_role("img", name="gallery owl gamma")).to_be_visible()
    details = dialog.get_by_role("complementary", name="Details")
    expect(details).to_contain_text("gallery owl gamma")
    expect(details).to_contain_text("256 × 192")
    expect(details).to_contain_text("placeholder")
    params = dialog.locator("dl.params")
    expect(params.locator("dt", has_text=re.compile(r"^seed$"))).to_have_count(1)
    expect(params).to_contain_text("102")
    expect(params.locator("dt", has_text=re.compile(r"^steps$"))).to_have_count(1)
    shot(page, "gallery-lightbox-light")

    # newest first: gamma, beta, alpha; the right arrow goes to the older one
    page.keyboard.press("ArrowRight")
    expect(details).to_contain_text("gallery fox beta")
    expect(page).to_have_url(re.compile(rf"asset={beta['id']}"))
    page.keyboard.press("ArrowRight")
    expect(details).to_contain_text("gallery fox alpha")
    expect(dialog.get_by_role("button", name="Next asset")).to_be_disabled()
    page.keyboard.press("ArrowLeft")
    expect(details).to_contain_text("gallery fox beta")
    dialog.get_by_role("button", name="Previous asset").click()
    expect(details).to_contain_text("gallery owl gamma")

    # copy: the prompt as text, the parameters as JSON (what the API has)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    dialog.get_by_role("button", name="Copy prompt").click()
    expect(page.get_by_role("status").filter(has_text="Prompt copied")).to_have_count(1)
    assert page.evaluate("navigator.clipboard.readText()") == "gallery owl gamma"
    dialog.get_by_role("button", name="Copy parameters").click()
    expect(page.get_by_text("Parameters copied (JSON)")).to_be_visible()
    copied = json.loads(page.evaluate("navigator.clipboard.readText()"))
    assert copied == server.api(ADMIN_KEY).get(f"/assets/{gamma['id']}").json()["parameters"]

    with page.expect_download() as info:
        dialog.get_by_role("link", name="Download").click()
    download = info.value
    assert download.suggested_filename == f"{gamma['id']}.png"
    assert download.path().read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Escape closes; the focus is back on the tile of the asset shown
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page).not_to_have_url(re.compile(r"asset="))
    expect(_tile(page, "gallery owl gamma")).to_be_focused()

    # delete beta (after a confirm): gone from the grid and from the API
    _tile(page, "gallery fox beta").click()
    expect(details).to_contain_text("gallery fox beta")
    dialog.get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Yes, delete").click()
    expect(details).to_contain_text("gallery fox alpha")  # moves on to the next one
    page.keyboard.press("Escape")
    expect(_tile(page, "gallery fox beta")).to_have_count(0)
    expect(_tiles(page)).to_have_count(4)
    assert server.api(ADMIN_KEY).get(f"/assets/{beta['id']}").status_code == 404

    # a deep link opens the lightbox; "Reuse on Generate" goes to the Generate page with the id
    page.goto(f"{server.url}/image-studio/#/gallery?asset={alpha['id']}")
    expect(page.get_by_role("dialog").get_by_role("complementary", name="Details")).to_contain_text("gallery fox alpha")
    page.get_by_role("dialog").get_by_role("button", name="Reuse on Generate").click()
    expect(page).to_have_url(re.compile(rf"#/generate\?reuse={alpha['id']}$"))
    assert page.page_errors == []


def test_grid_keyboard_moves_between_tiles(studio, open_studio):
    server, _ = studio
    page = open_studio(server, page="gallery")
    first = _tiles(page).first
    expect(first).to_be_visible()
    first.focus()
    page.keyboard.press("ArrowRight")
    expect(_tiles(page).nth(1)).to_be_focused()
    page.keyboard.press("End")
    expect(_tiles(page).nth(4)).to_be_focused()  # five tiles fit one row at 1280 px
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    # the focus stays in the dialog, both ways round
    inside = "document.querySelector('dialog[open]').contains(document.activeElement)"
    for key in ["Tab"] * 12 + ["Shift+Tab"] * 12:
        page.keyboard.press(key)
        assert page.evaluate(inside), key
    page.keyboard.press("Escape")
    expect(_tiles(page).nth(4)).to_be_focused()
    # one tile is tabbable: Tab leaves the grid instead of walking every tile
    assert page.evaluate("document.querySelectorAll('[data-asset-id][tabindex=\"0\"]').length") == 1


def test_a_user_sees_only_their_own_assets(studio, open_studio, shot):
    server, made = studio
    page = open_studio(server, key=USER_KEY, page="gallery")
    expect(_tile(page, "alice private kestrel")).to_be_visible()
    expect(_tiles(page)).to_have_count(1)
    expect(page.get_by_label("Owner")).to_have_count(0)  # the owner filter is for admins
    # another owner's asset by URL: refused, the lightbox stays closed
    page.goto(f"{server.url}/image-studio/#/gallery?asset={made['gallery fox alpha']['id']}")
    expect(page.get_by_text(re.compile("Cannot open the asset"))).to_be_visible()
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert page.page_errors == []


def test_dark_theme_and_a_narrow_screen(studio, open_studio, shot):
    server, made = studio
    page = open_studio(server, page="gallery", color_scheme="dark")
    expect(_tiles(page)).to_have_count(5)
    shot(page, "gallery-dark")
    _tile(page, "gallery heron slow").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    shot(page, "gallery-lightbox-dark")

    small = open_studio(server, page="gallery", viewport={"width": 375, "height": 780})
    expect(_tiles(small)).to_have_count(5)
    assert small.evaluate("document.documentElement.scrollWidth") <= 375
    shot(small, "gallery-375")
    _tile(small, "gallery fox alpha").click()
    dialog = small.get_by_role("dialog")
    expect(dialog.get_by_role("button", name="Reuse on Generate")).to_be_visible()
    assert small.evaluate("document.documentElement.scrollWidth") <= 375
    # the viewport only: a full-page shot of a scrolled page misplaces the fixed dialog
    small.screenshot(path=str(shot(small, "gallery-lightbox-375")))
    assert page.page_errors == [] and small.page_errors == []


def test_empty_gallery_offers_generate(make_e2e, open_studio, shot):
    server = make_e2e()
    page = open_studio(server, page="gallery")
    expect(page.get_by_text("No images or videos yet.")).to_be_visible()
    expect(page.get_by_role("link", name="Generate some")).to_be_visible()
    shot(page, "gallery-empty")


def test_videos_show_a_play_badge_and_open_as_video(tmp_path, e2e_comfy, open_studio, shot):
    from tests.e2e.conftest import start_studio, e2e_config
    from tests.e2e.seed_assets import seed_assets, seed_video

    data = tmp_path / "data"
    seed_assets(data, 3)
    video = seed_video(data, "gallery video waves")
    server = start_studio(data, e2e_comfy, e2e_config(e2e_comfy.url))
    try:
        page = open_studio(server, page="gallery")
        tile = _tile(page, "gallery video waves (video)")
        expect(tile).to_be_visible()
        expect(tile.locator(".play")).to_have_text("▶")
        page.get_by_label("Kind").select_option(label="Videos")
        expect(page).to_have_url(re.compile(r"media=video"))
        expect(_tiles(page)).to_have_count(1)
        page.get_by_label("Kind").select_option(label="Images")
        expect(_tiles(page)).to_have_count(3)
        page.get_by_label("Kind").select_option(label="Images and videos")
        _tile(page, "gallery video waves (video)").click()
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_role("heading", name=re.compile("^Video"))).to_be_visible()
        # a <video controls> of the content, or (this MP4 is only a file head) the load error
        expect(dialog.locator(f"video[controls][src*='{video.id}/content'], [role=alert]")).to_have_count(1)
        expect(dialog.get_by_role("complementary", name="Details")).to_contain_text("640 × 360")
        shot(page, "gallery-video")
        assert page.page_errors == []
    finally:
        server.close()


def test_an_api_error_shows_and_try_again_recovers(studio, open_studio, shot):
    server, _ = studio
    page = open_studio(server, key=USER_KEY, page="generate")
    expect(page.get_by_role("navigation", name="Pages")).to_be_visible()
    body = json.dumps({"error": {"type": "Unavailable", "message": "database is locked", "field": None}})
    page.route(re.compile(r".*/api/v1/image-studio/assets\?.*"),
               lambda route: route.fulfill(status=503, content_type="application/json", body=body))
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Gallery").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The gallery could not be loaded: database is locked")
    shot(page, "gallery-error")
    page.unroute(re.compile(r".*/api/v1/image-studio/assets\?.*"))
    alert.get_by_role("button", name="Try again").click()
    expect(_tile(page, "alice private kestrel")).to_be_visible()
    assert page.page_errors == []
