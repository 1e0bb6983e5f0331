"""The gallery at scale: 2,000 seeded assets. After scrolling far down, the grid keeps only a
window of tiles in the DOM, and the later pages came through the cursor. Nothing is timed."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import start_studio, e2e_config
from tests.e2e.seed_assets import seed_assets, seed_prompt

COUNT = 2_000


@pytest.fixture
def big_studio(tmp_path, e2e_comfy):
    data = tmp_path / "data"
    seed_assets(data, COUNT)
    server = start_studio(data, e2e_comfy, e2e_config(e2e_comfy.url))
    yield server
    server.close()


def test_a_deep_scroll_keeps_the_dom_small_and_pages_by_cursor(big_studio, open_studio, shot):
    requests: list[str] = []
    page = open_studio(big_studio, page="gallery")
    page.on("request", lambda r: requests.append(r.url) if re.search(r"/api/v1/image-studio/assets\?", r.url) else None)
    grid = page.get_by_role("list", name="Assets")
    expect(grid.get_by_role("button", name=seed_prompt(0), exact=True)).to_be_visible()

    # the keyboard pages through the grid: the focused tile is rendered, in view and clear of
    # the sticky top bar
    grid.get_by_role("button", name=seed_prompt(0), exact=True).focus()
    for _ in range(5):
        page.keyboard.press("PageDown")
    focused = page.evaluate("""() => {
      const el = document.activeElement, r = el.getBoundingClientRect();
      return { index: Number(el.closest('[data-index]').dataset.index), top: r.top, bottom: r.bottom,
               bar: document.querySelector('header').getBoundingClientRect().bottom, h: innerHeight };
    }""")
    assert focused["index"] >= 5 * 6, focused  # at least a row per PageDown (6 columns at 1280 px)
    assert focused["top"] >= focused["bar"] and focused["bottom"] <= focused["h"], focused
    page.keyboard.press("Control+Home")
    expect(grid.get_by_role("button", name=seed_prompt(0), exact=True)).to_be_focused()

    # scroll down in steps until asset 1,500 (in the 16th page of 100) is on screen
    target = grid.get_by_role("button", name=seed_prompt(1500), exact=True)
    for _ in range(1000):
        if target.count() and target.is_visible():
            break
        page.mouse.move(640, 500)
        page.mouse.wheel(0, 600)  # less than a screen: the target cannot be skipped
        page.wait_for_timeout(30)
    expect(target).to_be_visible()
    tiles = page.locator("[data-asset-id]").count()
    imgs = page.locator("[data-asset-id] img").count()
    nodes = page.evaluate("document.getElementsByTagName('*').length")
    assert 0 < tiles < 300, tiles
    assert imgs <= tiles
    assert nodes < 3000, nodes
    # the first tile is long gone from the DOM
    expect(grid.get_by_role("button", name=seed_prompt(0), exact=True)).to_have_count(0)
    # later pages: fetched with a cursor, 100 at a time, never all at once
    cursor_calls = [u for u in requests if "cursor=" in u]
    assert len(cursor_calls) >= 14, cursor_calls
    assert all("limit=100" in u for u in requests)
    loaded = page.evaluate("document.querySelector('[role=listitem]').getAttribute('aria-setsize')")
    assert 1500 < int(loaded) < COUNT, loaded  # not "load all": only the pages scrolled to
    shot(page, "gallery-scale-deep")

    # the tiles there open in the lightbox like any other
    target.click()
    expect(page.get_by_role("dialog").get_by_role("complementary", name="Details")).to_contain_text(seed_prompt(1500))
    assert page.page_errors == []
