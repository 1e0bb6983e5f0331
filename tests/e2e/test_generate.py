"""The Generate page: generate with the placeholder provider and follow the job in the queue to
its thumbnails (linking to the gallery), cancel a running job, errors at the field they name
(the page's own checks and the server's 422), a ComfyUI workflow's parameter controls reaching
the (fake) ComfyUI, init image plus a painted mask in the request, reuse of an asset's settings,
the seed lock, and the page at 375 px and in both themes."""

from __future__ import annotations

import base64
import io
import json
import re
import uuid

from PIL import Image
from playwright.sync_api import expect

from tests.e2e.conftest import ADMIN_KEY, USER_KEY

GENERATIONS = "/api/v1/image-studio/generations"


def _unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def _job_item(page, prompt: str):
    return page.get_by_role("listitem", name=f"Job: {prompt}")


def _is_generation_post(request) -> bool:
    return request.method == "POST" and request.url.endswith(GENERATIONS)


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (40, 120, 200)).save(out, "PNG")
    return out.getvalue()


def _decode_data_url(value: str) -> Image.Image:
    assert value.startswith("data:image/png;base64,"), value[:40]
    return Image.open(io.BytesIO(base64.b64decode(value.split(",", 1)[1])))


def test_generate_shows_the_job_then_its_thumbnail_linking_to_the_gallery(e2e, open_studio, shot):
    page = open_studio(e2e, key=USER_KEY)
    prompt = _unique("a lighthouse at dusk")
    expect(page.get_by_role("heading", name="Generate")).to_be_visible()
    page.get_by_label("Provider", exact=True).select_option("placeholder")
    page.get_by_label("Prompt", exact=True).fill(prompt)
    with page.expect_request(_is_generation_post) as sent:
        page.get_by_label("Prompt", exact=True).press("Control+Enter")  # the keyboard shortcut submits
    body = json.loads(sent.value.post_data or "{}")
    assert body["prompt"] == prompt and body["provider"] == "placeholder"
    assert body["width"] == 1024 and body["height"] == 1024 and body["n"] == 1 and body["seed"] == -1

    item = _job_item(page, prompt)
    expect(item).to_be_visible()
    expect(item.get_by_text("succeeded")).to_be_visible()
    link = item.get_by_role("link", name=f"Open result 1 of job: {prompt}")
    expect(link.get_by_role("img")).to_be_visible()

    assets = e2e.api(USER_KEY).get("/assets", params={"q": prompt}).json()["items"]
    assert len(assets) == 1
    asset_id = assets[0]["id"]
    expect(link).to_have_attribute("href", f"#/gallery?asset={asset_id}")
    job = e2e.api(USER_KEY).get(f"/jobs/{assets[0]['job_id']}").json()
    assert job["status"] == "succeeded" and job["progress"] == 1.0
    # The thumbnail really loaded (the API key rides in the URL).
    assert link.get_by_role("img").evaluate("img => img.complete && img.naturalWidth > 0")
    shot(page, "generate-light")
    link.click()
    expect(page).to_have_url(re.compile(rf"#/gallery\?asset={asset_id}$"))
    assert page.page_errors == []


def test_cancel_a_running_job_on_the_slow_provider(e2e, open_studio, shot):
    page = open_studio(e2e, key=USER_KEY)
    prompt = _unique("a slow snail")
    page.get_by_label("Provider", exact=True).select_option("slow")
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_role("button", name="Generate", exact=True).click()
    item = _job_item(page, prompt)
    expect(item).to_be_visible()
    # Live progress from the SSE stream: a bar, a step counter and a preview.
    expect(item.get_by_role("progressbar")).to_be_visible()
    expect(item.get_by_text(re.compile(r"running · [1-9]\d?%"))).to_be_visible()
    expect(item.get_by_text(re.compile(r"step [1-9]\d*/10"))).to_be_visible()
    expect(item.get_by_role("img", name=f"Preview of job: {prompt}")).to_be_visible()
    shot(page, "generate-running")
    job_id = item.get_attribute("data-job-id")
    item.get_by_role("button", name=f"Cancel job: {prompt}").click()
    expect(item.get_by_text("canceled", exact=True)).to_be_visible()
    expect(item.get_by_role("button", name=re.compile("Cancel job"))).to_have_count(0)
    assert e2e.api(USER_KEY).get(f"/jobs/{job_id}").json()["status"] == "canceled"
    assert page.page_errors == []


def test_errors_show_next_to_the_field_they_name(e2e, open_studio):
    page = open_studio(e2e)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if _is_generation_post(r) else None)
    width = page.get_by_label("Width", exact=True)

    # The page's own check, against the chosen provider's maximum: nothing is sent.
    page.get_by_label("Provider", exact=True).select_option("placeholder")
    page.get_by_label("Prompt", exact=True).fill(_unique("too wide"))
    width.fill("5000")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator("#gen-size-width-err")).to_have_text("Width 5000 is over Placeholder's maximum 4096")
    expect(width).to_have_attribute("aria-invalid", "true")
    expect(width).to_be_focused()
    assert posts == []

    # Automatic (no provider): the server judges; its 422 names the field, shown at that field.
    page.get_by_label("Provider", exact=True).select_option("")
    width.fill("20000")
    with page.expect_response(lambda r: r.url.endswith(GENERATIONS) and r.request.method == "POST") as answer:
        page.get_by_role("button", name="Generate", exact=True).click()
    assert answer.value.status == 422
    assert answer.value.json()["error"]["field"] == "width"
    expect(page.locator("#gen-size-width-err")).to_contain_text("16384")
    expect(width).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_text(re.compile("The studio refused the request: width"))).to_be_visible()

    # An empty prompt is caught at the prompt.
    width.fill("512")
    page.get_by_label("Prompt", exact=True).fill("")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator("#gen-prompt-err")).to_have_text("Write a prompt")
    expect(page.get_by_label("Prompt", exact=True)).to_be_focused()
    assert len(posts) == 1
    assert page.page_errors == []


def test_a_comfyui_workflow_parameters_become_controls_and_reach_comfyui(e2e, open_studio, shot):
    page = open_studio(e2e)
    page.get_by_label("Provider", exact=True).select_option("comfy")
    workflow = page.get_by_label("Workflow", exact=True)
    expect(workflow.locator("option", has_text="txt2img")).to_have_count(1)
    expect(workflow.locator("option", has_text="weightfree")).to_have_count(2)  # and weightfree_video
    # txt2img exposes the sampler slots: the standard controls show.
    workflow.select_option("txt2img")
    expect(page.get_by_label("Steps", exact=True)).to_be_visible()
    expect(page.get_by_text("This workflow has no parameters beyond the standard ones.")).to_be_visible()
    # weightfree has only size slots and 'color': no sampler controls, a Color control.
    workflow.select_option("weightfree")
    params = page.get_by_role("group", name="Workflow parameters")
    color = params.get_by_label("Color", exact=True)
    expect(color).to_be_visible()
    expect(page.get_by_label("Steps", exact=True)).to_have_count(0)
    expect(page.get_by_label("Negative prompt", exact=True)).to_have_count(0)
    color.fill("1193046")  # 0x123456
    prompt = _unique("an inverted square")
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_label("Width", exact=True).fill("64")
    page.get_by_label("Height", exact=True).fill("64")
    shot(page, "generate-comfy-workflow")
    before = len(e2e.comfy.requests)
    with page.expect_request(_is_generation_post) as sent:
        page.get_by_role("button", name="Generate", exact=True).click()
    body = json.loads(sent.value.post_data or "{}")
    assert body["provider"] == "comfy" and body["workflow"] == "weightfree"
    assert body["params"] == {"color": 1193046}
    assert "steps" not in body and "negative_prompt" not in body
    item = _job_item(page, prompt)
    expect(item.get_by_text("succeeded")).to_be_visible()
    expect(item.get_by_role("link", name=f"Open result 1 of job: {prompt}")).to_be_visible()
    queued = [r["json"]["prompt"] for r in e2e.comfy.requests[before:]
              if r["method"] == "POST" and r["path"] == "/prompt" and isinstance(r.get("json"), dict)]
    assert queued, "no /prompt reached the fake ComfyUI"
    node = queued[-1]["1"]["inputs"]
    assert node["color"] == 1193046 and node["width"] == 64 and node["height"] == 64
    assert page.page_errors == []


def test_init_image_and_painted_mask_are_sent_as_pngs_of_the_image_size(e2e, open_studio, shot):
    page = open_studio(e2e, key=USER_KEY)
    page.get_by_label("Provider", exact=True).select_option("placeholder")
    prompt = _unique("repaint the middle")
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_label("Width", exact=True).fill("320")
    page.get_by_label("Height", exact=True).fill("240")
    page.get_by_label("Init image", exact=True).set_input_files(
        files=[{"name": "init.png", "mimeType": "image/png", "buffer": _png(320, 240)}])
    expect(page.get_by_text("init.png · 320×240 px")).to_be_visible()
    page.get_by_label("Inpaint: paint a mask").check()
    canvas = page.get_by_label("Mask canvas: paint the area to repaint")
    expect(canvas).to_be_visible()

    # No paint yet: the page asks for a mask instead of sending an empty one.
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.get_by_text("Paint the area to repaint, or turn the mask off")).to_be_visible()

    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.3, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=5)
    page.mouse.move(box["x"] + box["width"] * 0.7, y, steps=5)
    page.mouse.up()
    expect(page.get_by_text("Mask painted: the marked area is repainted.")).to_be_visible()
    shot(page, "generate-mask")
    with page.expect_request(_is_generation_post) as sent:
        page.get_by_role("button", name="Generate", exact=True).click()
    body = json.loads(sent.value.post_data or "{}")
    init = _decode_data_url(body["init_image"])
    mask = _decode_data_url(body["mask"]).convert("L")
    assert init.size == (320, 240) and mask.size == (320, 240)
    assert mask.getpixel((160, 120)) == 255  # painted: repaint
    assert mask.getpixel((5, 5)) == 0 and mask.getpixel((315, 235)) == 0  # untouched: keep
    assert set(mask.histogram()[1:255]) == {0}  # only black and white
    assert body["denoising_strength"] == 0.75
    expect(_job_item(page, prompt).get_by_text("succeeded")).to_be_visible()
    asset = e2e.api(USER_KEY).get("/assets", params={"q": prompt}).json()["items"][0]
    assert asset["parameters"]["mode"] == "inpaint"

    # Invert flips the mask; Clear empties it.
    with page.expect_request(_is_generation_post) as sent:
        page.get_by_role("button", name="Invert mask").click()
        page.get_by_role("button", name="Generate", exact=True).click()
    inverted = _decode_data_url(json.loads(sent.value.post_data or "{}")["mask"]).convert("L")
    assert inverted.getpixel((160, 120)) == 0 and inverted.getpixel((5, 5)) == 255
    page.get_by_role("button", name="Clear mask").click()
    expect(page.get_by_text("Paint over the area to repaint")).to_be_visible()
    assert page.page_errors == []


def test_reuse_fills_the_form_from_an_asset(e2e, open_studio):
    client = e2e.api(USER_KEY)
    prompt = _unique("a reused teapot")
    job = client.post("/generations", headers={"Prefer": "wait=10"}, json={
        "prompt": prompt, "negative_prompt": "blurry", "provider": "placeholder", "seed": 4242,
        "width": 640, "height": 448, "steps": 12, "cfg_scale": 6.5}).json()
    assert job["status"] == "succeeded", job
    asset_id = job["asset_ids"][0]
    page = open_studio(e2e, key=USER_KEY, page=f"generate?reuse={asset_id}")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value(prompt)
    expect(page.get_by_label("Negative prompt", exact=True)).to_have_value("blurry")
    expect(page.get_by_label("Seed", exact=True)).to_have_value("4242")
    expect(page.get_by_label("Width", exact=True)).to_have_value("640")
    expect(page.get_by_label("Height", exact=True)).to_have_value("448")
    expect(page.get_by_label("Provider", exact=True)).to_have_value("placeholder")
    expect(page.get_by_label("Steps", exact=True)).to_have_value("12")
    expect(page.get_by_label("CFG scale", exact=True)).to_have_value("6.5")
    with page.expect_request(_is_generation_post) as sent:
        page.get_by_role("button", name="Generate", exact=True).click()
    body = json.loads(sent.value.post_data or "{}")
    assert (body["seed"], body["width"], body["height"], body["steps"]) == (4242, 640, 448, 12)
    assert page.page_errors == []


def test_the_seed_lock_keeps_the_last_used_seed(e2e, open_studio):
    page = open_studio(e2e, key=USER_KEY)
    page.get_by_label("Provider", exact=True).select_option("placeholder")
    prompt = _unique("a locked seed")
    page.get_by_label("Prompt", exact=True).fill(prompt)
    seed = page.get_by_label("Seed", exact=True)
    expect(seed).to_have_value("")
    lock = page.get_by_role("button", name="Lock seed")
    lock.click()
    expect(lock).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(_job_item(page, prompt).get_by_text("succeeded")).to_be_visible()
    used = e2e.api(USER_KEY).get("/assets", params={"q": prompt}).json()["items"][0]["seed"]
    expect(seed).to_have_value(str(used))
    page.get_by_role("button", name="Randomize").click()
    expect(seed).to_have_value("")
    assert page.page_errors == []


def test_batch_count_queues_separate_jobs(e2e, open_studio):
    page = open_studio(e2e, key=USER_KEY)
    page.get_by_label("Provider", exact=True).select_option("placeholder")
    prompt = _unique("three seeds")
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_label("Seed", exact=True).fill("100")
    page.get_by_label("Batch count (jobs)").fill("3")
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith(GENERATIONS + "/batch")) as sent:
        page.get_by_role("button", name="Generate 3 jobs").click()
    body = json.loads(sent.value.post_data or "{}")
    assert body["grid"] == {"seed": [100, 101, 102]} and body["base"]["prompt"] == prompt
    items = page.get_by_role("listitem", name=f"Job: {prompt}")
    expect(items).to_have_count(3)
    for i in range(3):
        expect(items.nth(i).get_by_text("succeeded")).to_be_visible()
    seeds = sorted(a["seed"] for a in e2e.api(USER_KEY).get("/assets", params={"q": prompt}).json()["items"])
    assert seeds == [100, 101, 102]
    assert page.page_errors == []


def test_the_page_at_375px_and_in_the_dark_theme(e2e, open_studio, shot):
    page = open_studio(e2e, key=ADMIN_KEY, viewport={"width": 375, "height": 800}, color_scheme="dark")
    prompt = _unique("a small screen")
    page.get_by_label("Provider", exact=True).select_option("placeholder")
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(_job_item(page, prompt).get_by_text("succeeded")).to_be_visible()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the 375px screen"
    shot(page, "generate-375-dark")
    page.set_viewport_size({"width": 1280, "height": 860})
    shot(page, "generate-dark")
    assert page.page_errors == []


def test_fallback_and_failure_show_in_the_queue(make_e2e, open_studio):
    server = make_e2e(
        default_provider="broken",
        fallback_chain=["broken", "placeholder"],
        providers={
            "broken": {"type": "placeholder", "label": "Broken",
                       "settings": {"fail_with": "ProviderUnavailable"}},
            "placeholder": {"type": "placeholder", "label": "Placeholder"},
        },
    )
    page = open_studio(server)
    # Automatic: the chain's first provider fails, the job falls back to the placeholder.
    prompt = _unique("saved by the chain")
    page.get_by_label("Prompt", exact=True).fill(prompt)
    with page.expect_request(_is_generation_post) as sent:
        page.get_by_role("button", name="Generate", exact=True).click()
    assert "provider" not in json.loads(sent.value.post_data or "{}")
    item = _job_item(page, prompt)
    expect(item.get_by_text("succeeded")).to_be_visible()
    expect(item.get_by_text(re.compile(r"fell back to placeholder"))).to_be_visible()
    # The broken provider alone: the job fails with its message.
    prompt = _unique("no chain to save it")
    page.get_by_label("Provider", exact=True).select_option("broken")
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_role("button", name="Generate", exact=True).click()
    item = _job_item(page, prompt)
    expect(item.get_by_text("failed", exact=True)).to_be_visible()
    expect(item.get_by_text(re.compile(r"placeholder failure \(fail_with\)"))).to_be_visible()
    assert page.page_errors == []


def test_leaving_the_page_stops_the_live_readers(e2e, open_studio):
    page = open_studio(e2e, key=USER_KEY)
    prompt = _unique("left behind")
    page.get_by_label("Provider", exact=True).select_option("slow")
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_role("button", name="Generate", exact=True).click()
    item = _job_item(page, prompt)
    expect(item.get_by_text(re.compile(r"running · [1-9]\d?%"))).to_be_visible()
    job_id = item.get_attribute("data-job-id")
    events = f"/jobs/{job_id}/events"
    with page.expect_event("requestfailed", lambda r: r.url.endswith(events)) as failed:
        page.get_by_role("navigation", name="Pages").get_by_role("link", name="Gallery").click()
    assert "ABORTED" in (failed.value.failure or "").upper()
    assert e2e.api(USER_KEY).post(f"/jobs/{job_id}/cancel").json()["status"] == "canceled"
    assert page.page_errors == []


def test_a_provider_with_fixed_sizes_offers_them_and_checks_the_size(make_e2e, open_studio):
    server = make_e2e(providers={
        "placeholder": {"type": "placeholder", "label": "Placeholder"},
        "oa": {"type": "openai", "label": "OpenAI", "credentials": {"api_key": "sk-test-e2e"},
               "settings": {"model": "dall-e-2"}},
    })
    page = open_studio(server)
    page.get_by_label("Provider", exact=True).select_option("oa")
    preset = page.get_by_label("Size preset")
    expect(preset).to_be_visible()
    expect(preset.locator("option", has_text="512×512")).to_have_count(1)
    # Only the listed sizes: no free aspect-ratio buttons, and no negative prompt for DALL-E.
    expect(page.get_by_role("group", name="Aspect ratio")).to_have_count(0)
    expect(page.get_by_label("Negative prompt", exact=True)).to_have_count(0)
    preset.select_option(label="512×512 (1:1)")
    expect(page.get_by_label("Width", exact=True)).to_have_value("512")
    expect(page.get_by_label("Height", exact=True)).to_have_value("512")

    page.get_by_label("Prompt", exact=True).fill(_unique("an odd size"))
    page.get_by_label("Width", exact=True).fill("1000")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator("#gen-size-width-err")).to_contain_text("1000x512 is not a size this model takes")
    page.get_by_label("Snap to the nearest size the model takes").check()
    with page.expect_request(_is_generation_post) as sent:
        page.get_by_role("button", name="Generate", exact=True).click()
    body = json.loads(sent.value.post_data or "{}")
    assert body["size_policy"] == "nearest" and body["width"] == 1000 and "negative_prompt" not in body
    assert page.page_errors == []


def test_sampler_loras_and_hires_fix_go_into_the_request(e2e, open_studio):
    page = open_studio(e2e)
    page.get_by_label("Provider", exact=True).select_option("comfy")
    page.get_by_label("Workflow", exact=True).select_option("txt2img")
    sampler = page.get_by_label("Sampler", exact=True)
    expect(sampler.locator("option", has_text="euler")).not_to_have_count(0)
    sampler.select_option("euler")
    page.get_by_label("Scheduler", exact=True).select_option("karras")
    page.get_by_label("Steps", exact=True).fill("12")
    page.get_by_label("CFG scale", exact=True).fill("5.5")
    page.get_by_role("button", name="Add LoRA").click()
    expect(page.get_by_label("LoRA 1", exact=True)).to_be_focused()
    page.get_by_label("LoRA 1", exact=True).fill("detail.safetensors")
    page.get_by_label("Weight 1", exact=True).fill("0.6")
    page.get_by_role("button", name="Add LoRA").click()
    page.get_by_role("button", name="Remove LoRA 2").click()
    expect(page.get_by_label("LoRA 2", exact=True)).to_have_count(0)
    page.get_by_label("Hires fix (a second, upscaled pass)").check()
    page.get_by_label("Hires scale", exact=True).fill("1.5")
    page.get_by_label("Width", exact=True).fill("512")
    page.get_by_label("Height", exact=True).fill("512")
    prompt = _unique("a detailed castle")
    page.get_by_label("Prompt", exact=True).fill(prompt)
    with page.expect_request(_is_generation_post) as sent:
        page.get_by_role("button", name="Generate", exact=True).click()
    body = json.loads(sent.value.post_data or "{}")
    assert body["workflow"] == "txt2img" and body["sampler"] == "euler" and body["scheduler"] == "karras"
    assert body["steps"] == 12 and body["cfg_scale"] == 5.5
    assert body["loras"] == [{"name": "detail.safetensors", "weight": 0.6}]
    assert body["hires"] == {"scale": 1.5, "steps": None, "denoising_strength": 0.5, "upscaler": None}
    # The fake ComfyUI has no such LoRA or checkpoint: the job fails and says why.
    item = _job_item(page, prompt)
    expect(item.get_by_text("failed", exact=True)).to_be_visible()
    expect(item.locator(".msg")).not_to_be_empty()
    assert page.page_errors == []
