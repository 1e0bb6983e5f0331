"""Across pages: a UI-format workflow imported on the Workflows page, its seed exposed as a
parameter with a title and limits, saved; the Generate page then shows that control for the
workflow, and a generation with it reaches the (fake) ComfyUI with the value set there."""

from __future__ import annotations

import json
import re

from playwright.sync_api import expect

NOISE = "ImageAddNoise #2"


def ui_noise() -> dict:
    """EmptyImage -> ImageAddNoise(seed) -> SaveImage, in ComfyUI's UI (litegraph) format."""
    return {
        "last_node_id": 3, "last_link_id": 2, "version": 0.4, "groups": [], "config": {}, "extra": {},
        "nodes": [
            {"id": 1, "type": "EmptyImage", "pos": [40, 60], "size": [315, 130], "flags": {}, "order": 0, "mode": 0,
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1], "slot_index": 0}], "properties": {},
             "widgets_values": [64, 48, 1, 0x205080]},
            {"id": 2, "type": "ImageAddNoise", "pos": [420, 60], "size": [315, 130], "flags": {}, "order": 1,
             "mode": 0, "inputs": [{"name": "image", "type": "IMAGE", "link": 1}],
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [2], "slot_index": 0}], "properties": {},
             "widgets_values": [1234, "fixed", 0.5]},
            {"id": 3, "type": "SaveImage", "pos": [800, 60], "size": [315, 60], "flags": {}, "order": 2, "mode": 0,
             "inputs": [{"name": "images", "type": "IMAGE", "link": 2}], "properties": {},
             "widgets_values": ["noise_e2e"]},
        ],
        "links": [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"]],
    }


def test_an_exposed_seed_becomes_a_control_on_generate_and_runs(e2e, open_studio, shot):
    page = open_studio(e2e, page="workflows")
    expect(page.get_by_text(re.compile(r"\d+ node types"))).to_be_visible()
    page.get_by_label("Or paste JSON").fill(json.dumps(ui_noise()))
    page.get_by_role("button", name="Import pasted JSON").click()
    expect(page.get_by_role("group", name=f"Node {NOISE}")).to_be_visible()

    page.get_by_role("button", name=f"Expose seed of {NOISE} as a parameter").click()
    param = page.get_by_role("group", name=re.compile(r"^Parameter .*seed"))
    name = param.get_by_label(re.compile(r"^Name of parameter"))
    name.fill("noise_seed")
    name.press("Tab")
    param = page.get_by_role("group", name="Parameter noise_seed")
    for label, value in (("Title", "Noise seed"), ("Minimum", "0"), ("Maximum", "99999")):
        field = param.get_by_label(f"{label} of parameter noise_seed")
        field.fill(value)
        field.press("Tab")
    page.get_by_label("Name", exact=True).fill("noise_e2e")
    page.get_by_role("button", name="Save workflow").click()
    expect(page.get_by_text("Saved “noise_e2e”")).to_be_visible()

    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Generate").click()
    page.get_by_label("Provider", exact=True).select_option("comfy")
    page.get_by_label("Workflow", exact=True).select_option("noise_e2e")
    control = page.get_by_label("Noise seed", exact=True)
    expect(control).to_be_visible()
    expect(control).to_have_attribute("max", "99999")
    control.fill("4242")
    page.get_by_label("Prompt", exact=True).fill("noise from the editor")
    shot(page, "generate-with-exposed-workflow-parameter")
    before = len(e2e.comfy.requests)
    page.get_by_role("button", name="Generate", exact=True).click()
    done = page.get_by_role("listitem").filter(has_text="noise from the editor").get_by_text("succeeded")
    expect(done).to_be_visible()
    posted = [r["json"] for r in e2e.comfy.requests[before:] if r["path"] == "/prompt" and r["method"] == "POST"]
    assert posted and posted[-1]["prompt"]["2"]["class_type"] == "ImageAddNoise"
    assert posted[-1]["prompt"]["2"]["inputs"]["seed"] == 4242
    assert page.page_errors == []
