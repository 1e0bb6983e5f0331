"""The Workflows page: import a UI-format workflow the fake ComfyUI runs (EmptyImage ->
FixtureSleepProgress -> SaveImage), see a wrong link refused, expose a parameter with a title
and limits, save it, check the parameters' JSON Schema, run it from the page and see the image;
shipped templates are read-only; a user sees the editor read-only."""

from __future__ import annotations

import json
import re

from playwright.sync_api import expect

from tests.e2e.conftest import ADMIN_KEY, USER_KEY

SLEEPY_NODE = "Fixture Sleep Progress (test) #2"


def ui_sleepy(color: int = 0x336699) -> dict:
    """EmptyImage -> FixtureSleepProgress -> SaveImage in ComfyUI's UI (litegraph) format."""
    return {
        "last_node_id": 3, "last_link_id": 2, "version": 0.4, "groups": [], "config": {}, "extra": {},
        "nodes": [
            {"id": 1, "type": "EmptyImage", "pos": [40, 60], "size": [315, 130], "flags": {}, "order": 0, "mode": 0,
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1], "slot_index": 0}], "properties": {},
             "widgets_values": [64, 48, 1, color]},
            {"id": 2, "type": "FixtureSleepProgress", "pos": [420, 60], "size": [315, 130], "flags": {}, "order": 1,
             "mode": 0, "inputs": [{"name": "image", "type": "IMAGE", "link": 1}],
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [2], "slot_index": 0}], "properties": {},
             "widgets_values": [3, 0.2, True, True]},
            {"id": 3, "type": "SaveImage", "pos": [800, 60], "size": [315, 60], "flags": {}, "order": 2, "mode": 0,
             "inputs": [{"name": "images", "type": "IMAGE", "link": 2}], "properties": {},
             "widgets_values": ["wf_e2e"]},
        ],
        "links": [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"]],
    }


def _import(page, color: int) -> None:
    expect(page.get_by_text(re.compile(r"\d+ node types"))).to_be_visible()
    page.get_by_label("Or paste JSON").fill(json.dumps(ui_sleepy(color)))
    page.get_by_role("button", name="Import pasted JSON").click()
    expect(page.get_by_role("group", name=f"Node {SLEEPY_NODE}")).to_be_visible()


def test_import_expose_save_and_run_a_workflow(e2e, open_studio, shot):
    page = open_studio(e2e, page="workflows")
    expect(page.get_by_role("heading", name="Workflows", level=1)).to_be_visible()
    _import(page, 0x336699)
    expect(page.get_by_role("group", name="Node EmptyImage #1")).to_be_visible()
    expect(page.get_by_text("No problems found.")).to_be_visible()

    # a wrong link is refused, by dragging on the canvas and from the keyboard form
    page.get_by_label("Search nodes").fill("latent")
    page.get_by_role("button", name="Add node Empty Latent Image").click()
    latent = page.get_by_role("group", name="Node Empty Latent Image #4")
    expect(latent).to_be_visible()
    page.get_by_role("region", name=re.compile("Graph of")).scroll_into_view_if_needed()
    page.get_by_label("Output LATENT (LATENT) of Empty Latent Image #4").drag_to(
        page.get_by_label("Input images (IMAGE) of Save Image #3"))
    expect(page.get_by_role("alert").filter(has_text="Link refused")).to_contain_text(
        "cannot connect LATENT (LATENT) to images, which takes IMAGE")
    page.get_by_role("button", name="Dismiss the refusal").click()
    page.get_by_label("From output").select_option(label="Empty Latent Image #4 → LATENT (LATENT)")
    page.get_by_label("To input").select_option(label="Save Image #3 ← images (IMAGE)")
    page.get_by_role("button", name="Connect", exact=True).click()
    expect(page.get_by_role("alert").filter(has_text="Link refused")).to_be_visible()
    links = page.get_by_role("list", name="Current links")
    expect(links.get_by_role("listitem")).to_have_count(2)  # the graph's two links, unchanged

    # a widget out of range shows next to its node; the Delete key removes the selected node
    width = page.get_by_label("width of Empty Latent Image #4", exact=True)
    width.fill("0")
    width.press("Tab")
    expect(latent).to_contain_text("'width' is 0, below its minimum 16")
    latent.locator("header").click()
    page.keyboard.press("Delete")
    expect(latent).to_have_count(0)
    expect(page.get_by_text("No problems found.")).to_be_visible()

    # expose steps with a title and limits
    page.get_by_role("button", name=f"Expose steps of {SLEEPY_NODE} as a parameter").click()
    param = page.get_by_role("group", name="Parameter steps")
    param.get_by_label("Title of parameter steps").fill("Sleep steps")
    param.get_by_label("Title of parameter steps").press("Tab")
    param.get_by_label("Minimum of parameter steps").fill("1")
    param.get_by_label("Minimum of parameter steps").press("Tab")
    param.get_by_label("Maximum of parameter steps").fill("5")
    param.get_by_label("Maximum of parameter steps").press("Tab")
    expect(page.get_by_role("group", name=f"Node {SLEEPY_NODE}")).to_contain_text("parameter “steps”")

    page.get_by_label("Name", exact=True).fill("e2e_sleepy")
    page.get_by_role("button", name="Save workflow").click()
    expect(page.get_by_text("Saved “e2e_sleepy”")).to_be_visible()
    workflow_list = page.get_by_role("list", name="Workflows")
    expect(workflow_list.get_by_role("button", name=re.compile("e2e_sleepy"))).to_be_visible()

    api = e2e.api(ADMIN_KEY)
    saved = next(w for w in api.get("/workflows").json() if w["name"] == "e2e_sleepy")
    schema = api.get(f"/workflows/{saved['id']}/parameters").json()
    assert schema["properties"]["steps"] == {"type": "integer", "title": "Sleep steps", "default": 3,
                                             "minimum": 1, "maximum": 5}
    assert saved["api"]["2"]["inputs"]["image"] == ["1", 0]
    refused = api.post("/generations", json={"prompt": "x", "workflow": "e2e_sleepy", "provider": "comfy",
                                             "params": {"steps": 9}})
    if refused.status_code == 422:
        assert refused.json()["error"]["field"] == "params.steps"
    else:  # refused when the job starts
        job = refused.json()
        for _ in range(100):
            job = api.get(f"/jobs/{job['id']}", headers={"Prefer": "wait=1"}).json()
            if job["status"] in ("failed", "succeeded"):
                break
        assert job["status"] == "failed" and job["error"]["field"] == "params.steps"

    shot(page, "workflows-editor-light")
    page.get_by_role("button", name=re.compile("Run “e2e_sleepy” on comfy")).click()
    result = page.get_by_role("img", name=re.compile("Result of e2e_sleepy"))
    expect(result).to_be_visible()
    expect(page.get_by_text("Done", exact=True)).to_be_visible()
    assert result.evaluate("img => img.naturalWidth") == 64
    shot(page, "workflows-run-light")

    # the API JSON downloads; a reload opens the same workflow from the URL
    with page.expect_download() as download:
        page.get_by_role("button", name="Export API JSON").click()
    exported = json.loads(open(download.value.path(), encoding="utf-8").read())
    assert exported["2"]["class_type"] == "FixtureSleepProgress" and exported["3"]["inputs"]["images"] == ["2", 0]
    assert f"id={saved['id']}" in page.url
    page.reload()
    expect(page.get_by_label("Name", exact=True)).to_have_value("e2e_sleepy")
    expect(page.get_by_role("group", name=f"Node {SLEEPY_NODE}")).to_be_visible()
    assert page.page_errors == []


def test_dark_theme_builtin_is_read_only_and_saves_a_copy(e2e, open_studio, shot):
    page = open_studio(e2e, page="workflows", color_scheme="dark")
    page.get_by_role("list", name="Workflows").get_by_role("button", name=re.compile(r"^weightfree built-in")).click()
    expect(page.get_by_text("Built-in: read-only")).to_be_visible()
    expect(page.get_by_role("button", name="Save a copy")).to_be_visible()
    expect(page.get_by_role("region", name=re.compile("Graph of"))).to_be_visible()
    shot(page, "workflows-builtin-dark")
    # import from a file
    upload = {"name": "sleepy.json", "mimeType": "application/json", "buffer": json.dumps(ui_sleepy(0x112233)).encode()}
    page.get_by_label("Workflow file (.json, UI or API format)").set_input_files(files=[upload])
    expect(page.get_by_role("group", name=f"Node {SLEEPY_NODE}")).to_be_visible()
    expect(page.get_by_text("Not saved yet")).to_be_visible()
    page.get_by_label("Or paste JSON").fill("{not json")
    page.get_by_role("button", name="Import pasted JSON").click()
    expect(page.get_by_role("alert").filter(has_text="is not JSON")).to_be_visible()
    shot(page, "workflows-imported-dark")
    assert page.page_errors == []


def test_narrow_screen_and_a_user_sees_it_read_only(e2e, open_studio, shot):
    page = open_studio(e2e, key=USER_KEY, page="workflows", viewport={"width": 375, "height": 800})
    page.get_by_role("list", name="Workflows").get_by_role("button", name=re.compile(r"^weightfree built-in")).click()
    expect(page.get_by_text("Read-only (admins edit)")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Save"))).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Delete node"))).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shot(page, "workflows-user-narrow")
    assert page.page_errors == []
