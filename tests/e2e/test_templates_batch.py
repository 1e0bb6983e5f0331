"""Issue #6 in the browser: prompt templates with placeholder variables and style presets (live
preview, the job's rendered prompt), templates private to their owner, the prompt hints (CLIP
estimate, the "will be shortened" warning, the 10,000-character refusal, the job's prompt note),
the X/Y grid as one batch (its progress in the queue, the gallery filtered on it), cancelling a
batch, and screenshots of the new parts in both themes."""

from __future__ import annotations

import json
import re
import uuid

from playwright.sync_api import expect

from tests.e2e.conftest import ADMIN_KEY, USER_KEY

GENERATIONS = "/api/v1/image-studio/generations"
BOB_KEY = "e2e-user-key-0003"


def _unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def _template_names(api) -> list[str]:
    return [t["name"] for t in api.get("/templates", params={"kind": "prompt"}).json()]


def test_template_with_variables_and_two_styles(e2e, open_studio, shot):
    page = open_studio(e2e, key=USER_KEY)
    page.get_by_label("Provider", exact=True).select_option("placeholder")
    name = _unique("portrait")
    page.get_by_label("Prompt", exact=True).fill("a portrait of {subject} at {place}, {prompt}")
    page.get_by_label("Negative prompt").fill("blurry")
    page.get_by_role("button", name="Save prompt as template").click()
    page.get_by_label("Template name").fill(name)
    page.get_by_role("button", name="Save template").click()
    # saved, chosen, one input per placeholder; the prompt box now fills {prompt}
    saved = next(t for t in e2e.api(USER_KEY).get("/templates").json() if t["name"] == name)
    assert saved["owner"] == "alice" and sorted(saved["variables"]) == ["place", "prompt", "subject"]
    expect(page.get_by_label("Template", exact=True)).to_have_value(saved["id"])
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("")
    page.get_by_label("subject", exact=True).fill("an old sailor")
    page.get_by_label("place", exact=True).fill("the harbour")
    page.get_by_label("Prompt", exact=True).fill("oil on canvas")
    cinematic = page.get_by_role("button", name="cinematic", exact=True)
    watercolor = page.get_by_role("button", name="watercolor", exact=True)
    cinematic.click()
    watercolor.click()
    expect(cinematic).to_have_attribute("aria-pressed", "true")
    expect(watercolor).to_have_attribute("aria-pressed", "true")
    # the live preview is the server's render of exactly this
    expected = e2e.api(USER_KEY).post(f"/templates/{saved['id']}/render", json={
        "variables": {"subject": "an old sailor", "place": "the harbour"}, "prompt": "oil on canvas",
        "styles": ["cinematic", "watercolor"]}).json()
    assert expected["prompt"].startswith("watercolor") and "cinematic still a portrait of an old sailor at the harbour" in expected["prompt"]
    preview = page.get_by_test_id("prompt-preview")
    expect(preview).to_have_text(expected["prompt"])
    shot(page, "generate-template-styles")
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith(GENERATIONS)) as sent:
        page.get_by_role("button", name="Generate", exact=True).click()
    body = json.loads(sent.value.post_data or "{}")
    assert body["template"] == saved["id"] and body["styles"] == ["cinematic", "watercolor"]
    assert body["variables"] == {"subject": "an old sailor", "place": "the harbour"}
    item = page.get_by_role("listitem", name=f"Job: {expected['prompt']}")
    expect(item.get_by_text("succeeded")).to_be_visible()
    job = e2e.api(USER_KEY).get("/jobs", params={"limit": 1}).json()["items"][0]
    assert job["request"]["prompt"] == expected["prompt"]
    assert job["request"]["negative_prompt"] == expected["negative_prompt"]
    assert "blurry" in job["request"]["negative_prompt"]
    # delete it again from the page
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name=f"Delete template {name}").click()
    expect(page.get_by_label("Template", exact=True)).to_have_value("")
    assert name not in _template_names(e2e.api(USER_KEY))
    assert page.page_errors == []


def test_a_users_template_is_not_shown_to_another_user(make_e2e, open_studio):
    server = make_e2e(api_keys=[
        {"key": ADMIN_KEY, "role": "admin", "owner": "admin"},
        {"key": USER_KEY, "role": "user", "owner": "alice"},
        {"key": BOB_KEY, "role": "user", "owner": "bob"},
    ])
    name = _unique("alice only")
    made = server.api(USER_KEY).post("/templates", json={"name": name, "prompt": "a {thing} on a table"})
    assert made.status_code == 201, made.text
    assert name in _template_names(server.api(USER_KEY)) and name not in _template_names(server.api(BOB_KEY))

    alice = open_studio(server, key=USER_KEY)
    expect(alice.get_by_label("Template", exact=True).locator("option", has_text=name)).to_have_count(1)
    bob = open_studio(server, key=BOB_KEY)
    template = bob.get_by_label("Template", exact=True)
    expect(template).to_be_enabled()
    expect(template.locator("option")).not_to_have_count(0)
    expect(template.locator("option", has_text=name)).to_have_count(0)
    assert alice.page_errors == [] and bob.page_errors == []


def test_prompt_hints_clip_estimate_shortening_and_refusal(e2e, open_studio, shot):
    page = open_studio(e2e, key=USER_KEY)
    page.get_by_label("Provider", exact=True).select_option("comfy")
    prompt = "a red fox in a snowy forest, oil painting, highly detailed, 8k"
    page.get_by_label("Prompt", exact=True).fill(prompt)
    check = e2e.api(USER_KEY).post("/prompts/validate", json={"prompt": prompt, "provider": "comfy"}).json()
    assert check["token_limit"] == 75
    hints = page.locator("#gen-prompt-hints")
    expect(hints).to_contain_text(f"{len(prompt)} characters · ~{check['tokens']} / 75 CLIP tokens")

    long_prompt = ("a lighthouse on a cliff above a stormy sea, " * 100)[:3500]
    page.get_by_label("Provider", exact=True).select_option("placeholder")
    page.get_by_label("Prompt", exact=True).fill(long_prompt)
    expect(hints).to_contain_text("3,500 characters: an LLM will shorten it before it runs")
    shot(page, "generate-prompt-hints")
    # nothing answers at the configured LLM address: the job runs the prompt as it was, and says so
    page.get_by_role("button", name="Generate", exact=True).click()
    item = page.get_by_role("listitem", name=f"Job: {long_prompt}")
    expect(item.get_by_text("succeeded")).to_be_visible()
    job = e2e.api(USER_KEY).get("/jobs", params={"limit": 1}).json()["items"][0]
    info = job["prompt_info"]
    assert info and info["warning"] and not info["changed"]
    expect(item.get_by_text(re.compile(r"^prompt not shortened: "))).to_be_visible()

    page.get_by_label("Prompt", exact=True).fill("x" * 10_001)
    expect(page.get_by_text("The prompt is 10,001 characters: the studio refuses prompts over 10,000")).to_be_visible()
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.get_by_role("alert").filter(has_text="10,000")).not_to_have_count(0)
    assert page.page_errors == []


def test_xy_grid_runs_as_one_batch_and_links_the_gallery(e2e, open_studio, shot):
    page = open_studio(e2e, key=USER_KEY)
    page.get_by_label("Provider", exact=True).select_option("placeholder")
    prompt = _unique("grid fox")
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_label("Run an X/Y grid of parameter values as one batch").check()
    page.get_by_label("X axis", exact=True).select_option("seed")
    page.get_by_label("X values (Seed)").fill("11, 12")
    page.get_by_label("Y axis", exact=True).select_option("steps")
    page.get_by_label("Y values (Steps)").fill("10-20 10")
    expect(page.get_by_text("4 jobs in one batch")).to_be_visible()
    shot(page, "generate-grid")
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith(GENERATIONS + "/batch")) as answer:
        page.get_by_role("button", name="Generate 4 jobs").click()
    body = json.loads(answer.value.request.post_data or "{}")
    assert body["grid"] == {"seed": [11, 12], "steps": [10, 20]} and body["base"]["prompt"] == prompt
    batch_id = answer.value.json()["batch_id"]
    group = page.get_by_role("listitem", name=f"Batch {batch_id[:8]}")
    expect(group).to_have_attribute("data-done", "true")
    expect(group.get_by_text("batch done")).to_be_visible()
    expect(group.get_by_text("4 succeeded")).to_be_visible()
    expect(group.get_by_role("listitem", name=f"Job: {prompt}")).to_have_count(4)
    for label in ("seed 11 · steps 10", "seed 11 · steps 20", "seed 12 · steps 10", "seed 12 · steps 20"):
        expect(group.get_by_text(label, exact=True)).to_have_count(1)
    summary = e2e.api(USER_KEY).get(f"/batches/{batch_id}").json()
    assert summary["total"] == 4 and summary["counts"]["succeeded"] == 4
    shot(page, "generate-batch-done")

    group.get_by_role("link", name="Open the batch in the gallery").click()
    expect(page).to_have_url(re.compile(rf"#/gallery\?batch_id={batch_id}$"))
    expect(page.get_by_text(f"Batch {batch_id[:8]}")).to_be_visible()
    tiles = page.get_by_role("list", name="Assets").get_by_role("button", name=prompt, exact=True)
    expect(tiles).to_have_count(4)
    expect(page.get_by_text("4 assets match")).to_be_visible()
    shot(page, "gallery-batch-filter")
    # the lightbox's Batch row links to the same filter; the chip removes it
    tiles.first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("link", name=f"Show all of batch {batch_id[:8]}")).to_be_visible()
    page.keyboard.press("Escape")
    page.get_by_role("button", name=f"Remove filter Batch {batch_id[:8]}").click()
    expect(page).not_to_have_url(re.compile("batch_id="))
    assert page.page_errors == []


def test_cancel_a_batch_on_the_slow_provider(e2e, open_studio, shot):
    page = open_studio(e2e, key=USER_KEY, color_scheme="dark")
    page.get_by_label("Provider", exact=True).select_option("slow")
    prompt = _unique("slow grid")
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_label("Run an X/Y grid of parameter values as one batch").check()
    page.get_by_label("X axis", exact=True).select_option("seed")
    page.get_by_label("X values (Seed)").fill("1-3")
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith(GENERATIONS + "/batch")) as answer:
        page.get_by_role("button", name="Generate 3 jobs").click()
    batch_id = answer.value.json()["batch_id"]
    group = page.get_by_role("listitem", name=f"Batch {batch_id[:8]}")
    expect(group.get_by_text("3 jobs", exact=True)).to_be_visible()
    shot(page, "generate-batch-running-dark")
    group.get_by_role("button", name=f"Cancel batch {batch_id[:8]}").click()
    expect(group).to_have_attribute("data-done", "true")
    expect(group.get_by_text("3 canceled")).to_be_visible()
    expect(group.get_by_role("button", name=re.compile("^Cancel batch"))).to_have_count(0)
    jobs = group.get_by_role("listitem", name=f"Job: {prompt}")
    expect(jobs).to_have_count(3)
    for i in range(3):
        expect(jobs.nth(i).get_by_text("canceled", exact=True)).to_be_visible()
    summary = e2e.api(USER_KEY).get(f"/batches/{batch_id}").json()
    assert summary["done"] and summary["counts"]["canceled"] == 3
    shot(page, "generate-batch-canceled-dark")
    assert page.page_errors == []


def test_new_parts_at_375px_in_the_dark_theme(e2e, open_studio, shot):
    page = open_studio(e2e, key=ADMIN_KEY, viewport={"width": 375, "height": 800}, color_scheme="dark")
    page.get_by_label("Provider", exact=True).select_option("comfy")
    page.get_by_label("Prompt", exact=True).fill("a red fox in a snowy forest, oil painting")
    expect(page.locator("#gen-prompt-hints")).to_contain_text("CLIP tokens")
    page.get_by_role("button", name="anime", exact=True).click()
    expect(page.get_by_test_id("prompt-preview")).to_contain_text("a red fox in a snowy forest")
    page.get_by_role("button", name="Save prompt as template").click()
    expect(page.get_by_label("Shared with everyone")).to_be_visible()  # admins may share
    page.get_by_label("Run an X/Y grid of parameter values as one batch").check()
    page.get_by_label("X axis", exact=True).select_option("seed")
    page.get_by_label("X values (Seed)").fill("1-30")
    page.get_by_label("Y axis", exact=True).select_option("steps")
    page.get_by_label("Y values (Steps)").fill("1-20")
    expect(page.get_by_text("That makes 600 jobs; a batch may hold 500")).to_be_visible()
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith(GENERATIONS + "/batch") else None)
    page.get_by_role("button", name="Generate 600 jobs").click()
    expect(page.get_by_role("alert").filter(has_text="Fix the marked fields.")).to_be_visible()
    expect(page.get_by_label("Run an X/Y grid of parameter values as one batch")).to_be_focused()
    assert sent == [], "a grid over 500 jobs must not be sent"
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the 375px screen"
    page.locator("fieldset", has_text="Template and style presets").scroll_into_view_if_needed()
    shot(page, "generate-templates-375-dark")
    page.locator("fieldset", has_text="X/Y grid").scroll_into_view_if_needed()
    shot(page, "generate-grid-375-dark")
    page.goto(f"{e2e.url}/image-studio/#/gallery?batch_id=0123456789abcdef0123456789abcdef")
    expect(page.get_by_role("button", name="Remove filter Batch 01234567")).to_be_visible()
    expect(page.get_by_text("Nothing matches these filters.")).to_be_visible()
    shot(page, "gallery-batch-filter-375-dark")
    assert page.page_errors == []
