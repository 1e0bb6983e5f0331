"""The Settings page (admin panel): providers added, edited, tested, disabled and removed; the
default provider; the fallback chain reordered by drag and drop and by keyboard; the config
exported and imported. Every check of what was stored goes through ``GET /config``."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.conftest import ADMIN_KEY

SECRET = "sk-e2e-secret-value-123456789"



def providers(page):
    """The Providers section: its headings are the provider cards' (the Analytics section below
    names the same providers in its chart headings once they have run jobs)."""
    return page.get_by_role("region", name="Providers")

def _config(server) -> dict:
    r = server.api(ADMIN_KEY).get("/config")
    assert r.status_code == 200, r.text
    return r.json()["config"]


def _chain(page):
    return page.get_by_role("list", name="Fallback chain")


def _chain_ids(page) -> list[str]:
    return [t.split("(")[-1].rstrip(")") for t in _chain(page).locator("li code").all_inner_texts()]


def test_admin_adds_edits_and_tests_providers(make_e2e, open_studio, shot):
    server = make_e2e()
    page = open_studio(server, page="settings")
    expect(page.get_by_role("heading", name="Settings", level=1)).to_be_visible()
    for label in ("Placeholder", "Slow placeholder", "ComfyUI (fake)"):
        expect(providers(page).get_by_role("heading", name=label, exact=True)).to_be_visible()
    comfy_card = page.get_by_role("article", name="ComfyUI (fake)")
    expect(comfy_card.get_by_text("loaded", exact=True)).to_be_visible()
    expect(page.get_by_role("article", name="Placeholder").get_by_text("default", exact=True)).to_be_visible()
    shot(page, "settings-light")

    # Add a second placeholder; a bad delay is refused in the page before anything is sent.
    page.get_by_role("button", name="Add provider").click()
    form = page.get_by_role("form", name="Add a provider")
    form.get_by_label("Provider type").select_option("placeholder")
    form.get_by_label("Provider id").fill("place2")
    form.get_by_label("Label").fill("Second placeholder")
    form.get_by_label("Delay", exact=True).fill("-1")
    form.get_by_role("button", name="Add provider").click()
    expect(form.get_by_text("Must be at least 0.")).to_be_visible()
    expect(form.get_by_label("Delay", exact=True)).to_have_attribute("aria-invalid", "true")
    assert "place2" not in _config(server)["providers"]
    form.get_by_label("Delay", exact=True).fill("0.5")
    form.get_by_label("Style").select_option("detailed")
    form.get_by_role("button", name="Add provider").click()
    expect(providers(page).get_by_role("heading", name="Second placeholder")).to_be_visible()
    stored = _config(server)["providers"]["place2"]
    assert stored["settings"] == {"delay": 0.5, "style": "detailed"} and stored["label"] == "Second placeholder"

    # A value only the server can refuse: its 422 shows next to the field it names.
    page.get_by_role("button", name="Edit comfy").click()
    edit = page.get_by_role("form", name="Edit provider comfy")
    url = edit.get_by_label("Backend 1 URL")
    url.fill("ftp://127.0.0.1:1")
    edit.get_by_role("button", name="Save provider").click()
    expect(edit.get_by_text("must start with http:// or https://")).to_be_visible()
    expect(url).to_have_attribute("aria-invalid", "true")
    expect(url).to_be_focused()
    url.fill(server.comfy.url)
    # A settings value only the server can check (no such workflow template): shown at the field.
    workflow = edit.get_by_label("Workflow")
    expect(workflow).to_have_value("weightfree")
    workflow.fill("no-such-template")
    edit.get_by_role("button", name="Save provider").click()
    expect(edit.get_by_text("no workflow template 'no-such-template'")).to_be_visible()
    expect(workflow).to_have_attribute("aria-invalid", "true")
    edit.get_by_role("button", name="Cancel").click()
    stored = _config(server)["providers"]["comfy"]
    assert stored["backends"][0]["url"] == server.comfy.url and stored["settings"]["workflow"] == "weightfree"

    # An openai provider with an API key: stored masked, never in the page.
    page.get_by_role("button", name="Add provider").click()
    form = page.get_by_role("form", name="Add a provider")
    form.get_by_label("Provider type").select_option("openai")
    form.get_by_label("Provider id").fill("oa")
    form.get_by_role("button", name="Add provider").click()
    expect(form.get_by_label("API key *")).to_have_attribute("aria-invalid", "true")
    form.get_by_label("API key *").fill(SECRET)
    form.get_by_label("Quality").select_option("high")
    form.get_by_role("button", name="Add provider").click()
    expect(providers(page).get_by_role("heading", name="oa", exact=True)).to_be_visible()
    oa = _config(server)["providers"]["oa"]
    assert oa["credentials"] == {"api_key": "••••6789"} and oa["settings"] == {"quality": "high"}
    assert SECRET not in page.content()

    # Editing without typing the key keeps it; the masked value is the placeholder.
    page.get_by_role("button", name="Edit oa").click()
    edit = page.get_by_role("form", name="Edit provider oa")
    key = edit.get_by_label("API key *")
    expect(key).to_have_value("")
    expect(key).to_have_attribute("placeholder", "••••6789 (stored; type to replace)")
    edit.get_by_label("Timeout (seconds per attempt)").fill("120")
    edit.get_by_role("button", name="Save provider").click()
    expect(page.get_by_role("form", name="Edit provider oa")).to_have_count(0)
    oa = _config(server)["providers"]["oa"]
    assert oa["credentials"] == {"api_key": "••••6789"} and oa["timeout"] == 120
    assert SECRET not in page.content()

    # Test connection: the result per backend, inline.
    page.get_by_role("button", name="Test connection of placeholder").click()
    results = page.get_by_role("list", name="Test results of placeholder")
    expect(results.get_by_text("OK", exact=True)).to_be_visible()
    page.get_by_role("button", name="Test connection of comfy").click()
    expect(page.get_by_role("list", name="Test results of comfy").get_by_text("OK", exact=True)).to_be_visible()
    shot(page, "settings-tested")
    assert page.page_errors == []


def test_admin_orders_the_chain_sets_default_disables_removes_and_round_trips_the_config(
        make_e2e, open_studio, shot, tmp_path):
    server = make_e2e(providers={
        "placeholder": {"type": "placeholder", "label": "Placeholder"},
        "slow": {"type": "placeholder", "label": "Slow placeholder", "settings": {"delay": 6.0}},
        "oa": {"type": "openai", "credentials": {"api_key": SECRET}},
    })
    # "extra" is saved by an admin (providers of the config file cannot be removed, only disabled).
    cfg = _config(server)
    cfg["providers"]["extra"] = {"type": "placeholder", "label": "Extra"}
    assert server.api(ADMIN_KEY).put("/config", json=cfg).status_code == 200
    page = open_studio(server, page="settings")
    chain = _chain(page)
    expect(chain.get_by_role("listitem")).to_have_count(1)

    # Add two providers to the chain, save.
    for pid in ("slow", "extra"):
        page.get_by_label("Provider to add to the chain").select_option(pid)
        page.get_by_role("button", name="Add to chain").click()
    page.get_by_role("button", name="Save chain").click()
    expect(page.get_by_role("button", name="Save chain")).to_be_disabled()
    assert _config(server)["fallback_chain"] == ["placeholder", "slow", "extra"]

    # Drag and drop: extra onto the first place.
    items = chain.get_by_role("listitem")
    items.filter(has_text="Extra").drag_to(items.filter(has_text="Placeholder").first)
    expect(items.first).to_contain_text("Extra")
    page.get_by_role("button", name="Save chain").click()
    expect(page.get_by_role("button", name="Save chain")).to_be_disabled()
    assert _config(server)["fallback_chain"] == ["extra", "placeholder", "slow"]

    # Keyboard: Alt+ArrowUp twice on slow, then the Move down button of extra.
    grip = chain.get_by_role("button", name="Slow placeholder (slow)")
    grip.focus()
    page.keyboard.press("Alt+ArrowUp")
    page.keyboard.press("Alt+ArrowUp")
    expect(items.first).to_contain_text("Slow placeholder")
    expect(chain.get_by_role("button", name="Slow placeholder (slow)")).to_be_focused()
    chain.get_by_role("button", name="Move extra down").click()
    expect(items.nth(2)).to_contain_text("Extra")
    page.get_by_role("button", name="Save chain").click()
    expect(page.get_by_role("button", name="Save chain")).to_be_disabled()
    assert _config(server)["fallback_chain"] == ["slow", "placeholder", "extra"]
    expect(page.get_by_role("article", name="Slow placeholder").get_by_text("chain #1")).to_be_visible()

    # Default provider.
    page.get_by_role("combobox", name="Default provider").select_option("extra")
    page.get_by_role("button", name="Save default").click()
    expect(page.get_by_role("article", name="Extra").get_by_text("default", exact=True)).to_be_visible()
    assert _config(server)["default_provider"] == "extra"

    # Disable, then enable again.
    page.get_by_role("button", name="Disable slow").click()
    expect(page.get_by_role("article", name="Slow placeholder").get_by_text("disabled", exact=True)).to_be_visible()
    assert _config(server)["providers"]["slow"]["enabled"] is False
    page.get_by_role("button", name="Enable slow").click()
    expect(page.get_by_role("button", name="Disable slow")).to_be_visible()
    assert _config(server)["providers"]["slow"]["enabled"] is True

    # Remove (confirmed): gone from providers, chain and default.
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Remove provider extra").click()
    expect(page.get_by_role("article", name="Extra")).to_have_count(0)
    cfg = _config(server)
    assert "extra" not in cfg["providers"] and cfg["fallback_chain"] == ["slow", "placeholder"]
    assert cfg["default_provider"] is None
    expect(chain.get_by_role("listitem")).to_have_count(2)

    # A provider of the config file is kept, disabled, and the page says so.
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Remove provider slow").click()
    expect(page.get_by_text("defined in the studio's config file")).to_be_visible()
    expect(page.get_by_role("article", name="Slow placeholder").get_by_text("disabled", exact=True)).to_be_visible()
    assert _config(server)["providers"]["slow"]["enabled"] is False

    # Export: a JSON download with the secrets masked.
    with page.expect_download() as dl:
        page.get_by_role("button", name="Export config").click()
    exported = json.loads(Path(dl.value.path()).read_text())
    assert exported["fallback_chain"] == ["placeholder"]
    assert exported["providers"]["oa"]["credentials"]["api_key"] == "••••6789"
    assert SECRET not in json.dumps(exported)

    # Import an edited copy: applied, and the masked key keeps the stored secret.
    exported["providers"]["placeholder"]["label"] = "Imported placeholder"
    exported["fallback_chain"] = ["placeholder"]
    exported["default_provider"] = "placeholder"
    file = tmp_path / "studio-config.json"
    file.write_text(json.dumps(exported))
    page.once("dialog", lambda d: d.accept())
    page.get_by_label("Import config file").set_input_files(str(file))
    expect(providers(page).get_by_role("heading", name="Imported placeholder")).to_be_visible()
    cfg = _config(server)
    assert cfg["providers"]["placeholder"]["label"] == "Imported placeholder"
    assert cfg["fallback_chain"] == ["placeholder"] and cfg["default_provider"] == "placeholder"
    assert cfg["providers"]["oa"]["credentials"]["api_key"] == "••••6789"

    # A file that is not a config: the server's error shows.
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"fallback_chain": ["nope"]}))
    page.once("dialog", lambda d: d.accept())
    page.get_by_label("Import config file").set_input_files(str(bad))
    expect(page.get_by_role("alert").filter(has_text="Import failed")).to_contain_text("nope")
    assert page.page_errors == []


def test_settings_dark_and_narrow(e2e, open_studio, shot):
    page = open_studio(e2e, page="settings", color_scheme="dark")
    expect(providers(page).get_by_role("heading", name="ComfyUI (fake)")).to_be_visible()
    page.get_by_role("button", name="Edit placeholder").click()
    expect(page.get_by_role("form", name="Edit provider placeholder")).to_be_visible()
    shot(page, "settings-dark")
    narrow = open_studio(e2e, page="settings", viewport={"width": 375, "height": 800})
    expect(providers(narrow).get_by_role("heading", name="ComfyUI (fake)")).to_be_visible()
    narrow.get_by_role("button", name="Add provider").click()
    narrow.get_by_label("Provider type").select_option("comfyui")
    expect(narrow.get_by_label("Backend 1 URL")).to_be_visible()
    width = narrow.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page scrolls sideways at 375 px ({width} px wide)"
    shot(narrow, "settings-375")
    assert page.page_errors == [] and narrow.page_errors == []
