"""The Models page: every provider's models grouped by kind with a filter; a diffusers_local
provider's models on disk (a model folder and a Hugging Face cache laid out at test time; no
weights are loaded) with their sizes, a download refused offline (HF_HUB_OFFLINE) shown as
such, and a cached hub model deleted; a provider that cannot list shows its error while the
others still show; a user sees it all read-only."""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.conftest import USER_KEY
from tests.providers.test_diffusers_local import hf_cache_copy

CHECKPOINTS = ["sd15.safetensors", "sdxl_base.safetensors", "turbo/sd_turbo.safetensors"]


def _pipeline(folder: Path, weights: int) -> Path:
    """A diffusers pipeline layout: model_index.json and a weights file of ``weights`` bytes
    (random: never loaded, only listed)."""
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline",
                                                         "_diffusers_version": "0.30.0"}))
    (folder / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(os.urandom(weights))
    return folder


def _human(n: int) -> str:
    """The page's formatBytes (binary units, 3 significant digits)."""
    units = ["B", "KB", "MB", "GB", "TB", "PB"]
    value, unit = float(n), 0
    while value >= 1024 and unit < len(units) - 1:
        value /= 1024
        unit += 1
    if unit == 0:
        return f"{round(value)} B"
    text = f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    return f"{text} {units[unit]}"


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def test_models_per_provider_sizes_filter_download_error_and_delete(make_e2e, open_studio, shot, tmp_path,
                                                                   monkeypatch, e2e_comfy):
    monkeypatch.setattr(e2e_comfy, "checkpoints", list(CHECKPOINTS))
    monkeypatch.setattr(e2e_comfy.sim.media, "upscale_models", ["4x-UltraSharp.pth"])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = _pipeline(tmp_path / "models" / "tiny-local", 3_000_000)
    cache = tmp_path / "hf"
    hub = hf_cache_copy(_pipeline(tmp_path / "src" / "tiny-sd", 5_000_000), cache, "tiny/sd").parents[1]
    server = make_e2e(providers={
        "placeholder": {"type": "placeholder", "label": "Placeholder"},
        "comfy": {"type": "comfyui", "label": "ComfyUI (fake)", "backends": [{"url": e2e_comfy.url}],
                  "settings": {"workflow": "weightfree"}},
        "broken": {"type": "comfyui", "label": "Unreachable ComfyUI", "backends": [{"url": "http://127.0.0.1:9"}],
                   "settings": {"connect_timeout": 2, "request_timeout": 2}},
        "local": {"type": "diffusers_local", "label": "Local diffusers",
                  "settings": {"model": str(folder), "cache_dir": str(cache)}},
    })
    page = open_studio(server, page="models")
    expect(page.get_by_role("heading", name="Models", level=1)).to_be_visible()

    comfy = page.get_by_role("region", name="ComfyUI (fake)")
    checkpoints = comfy.get_by_role("list", name="Checkpoints of comfy")
    for name in CHECKPOINTS:
        expect(checkpoints.get_by_text(name, exact=True)).to_be_visible()
    # the upscalers its options list, as their own group
    expect(comfy.get_by_role("list", name="Upscalers of comfy").get_by_text("4x-UltraSharp.pth")).to_be_visible()
    expect(page.get_by_role("region", name="Placeholder", exact=True).get_by_text("Placeholder (detailed)")).to_be_visible()

    # The provider that cannot list shows its error; the others still show.
    expect(page.get_by_role("region", name="Unreachable ComfyUI").get_by_role("alert")).to_contain_text(
        "Could not list the models")

    # diffusers_local: the folder model and the hub-cache model, with sizes.
    local = page.get_by_role("region", name="Local diffusers")
    rows = local.get_by_role("list", name="Checkpoints of local").get_by_role("listitem")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="tiny-local")).to_contain_text(_human(_size(folder)))
    expect(rows.filter(has_text="tiny/sd")).to_contain_text(_human(_size(hub)))
    expect(rows.filter(has_text="tiny/sd")).to_contain_text("hub cache")
    expect(rows.filter(has_text="tiny-local").get_by_role("button")).to_have_count(0)  # folders are never deleted
    shot(page, "models-light")

    # Filter.
    page.get_by_label("Filter models").fill("sdxl")
    expect(checkpoints.get_by_role("listitem")).to_have_count(1)
    expect(comfy.get_by_text(re.compile(r"^1 of \d+ models$"))).to_be_visible()
    expect(page.get_by_role("region", name="Placeholder", exact=True).get_by_text("No model matches")).to_be_visible()
    page.get_by_label("Filter models").fill("")
    expect(checkpoints.get_by_role("listitem")).to_have_count(3)

    # Download: offline here, and the page says why.
    form = local.get_by_role("form", name="Download a model for local")
    form.get_by_label("Hugging Face repo id").fill("someorg/not-here")
    form.get_by_role("button", name="Download").click()
    expect(local.get_by_role("alert")).to_contain_text("HF_HUB_OFFLINE")
    expect(local.get_by_role("alert")).to_contain_text("Download failed")

    # Delete the cached hub model (confirmed): the bytes freed are shown, the files are gone.
    freed = _human(_size(hub))
    page.once("dialog", lambda d: d.accept())
    local.get_by_role("button", name="Delete tiny/sd").click()
    expect(local.get_by_text(f"Deleted tiny/sd: {freed} freed.").first).to_be_visible()
    expect(rows).to_have_count(1)
    assert not hub.exists() and folder.exists()
    assert page.page_errors == []


def test_download_shows_progress_then_lists_the_model(make_e2e, open_studio, shot, tmp_path, monkeypatch):
    """The hub cannot be reached here, so ``snapshot_download`` is stubbed in this process (the
    server runs in it): the stub drives the provider's progress bar class as the hub does, stops
    halfway until the test has seen the page's progress bar, then lays the files out in the cache."""
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    src = _pipeline(tmp_path / "src" / "tiny-new", 4_000_000)
    cache = tmp_path / "hf"
    total = _size(src)
    release = threading.Event()

    def fake_snapshot_download(repo_id: str, **kw) -> str:
        with kw["tqdm_class"](total=total, unit="B", desc="Downloading bytes", name="hub.bytes") as bar:
            bar.update(total // 2)
            release.wait(60)
            bar.update(total - total // 2)
        return str(hf_cache_copy(src, cache, repo_id))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    folder = _pipeline(tmp_path / "models" / "tiny-local", 1_000)
    server = make_e2e(providers={
        "placeholder": {"type": "placeholder", "label": "Placeholder"},
        "local": {"type": "diffusers_local", "label": "Local diffusers",
                  "settings": {"model": str(folder), "cache_dir": str(cache)}},
    })
    page = open_studio(server, page="models")
    local = page.get_by_role("region", name="Local diffusers")
    expect(local.get_by_role("list", name="Checkpoints of local").get_by_role("listitem")).to_have_count(1)
    try:
        local.get_by_label("Hugging Face repo id").fill("tiny/new")
        local.get_by_role("button", name="Download").click()
        bar = local.get_by_role("progressbar", name="Download of tiny/new")
        expect(bar).to_have_attribute("value", str(total // 2))
        expect(local.get_by_text(f"{_human(total // 2)} of {_human(total)} (50%)")).to_be_visible()
        expect(local.get_by_role("button", name="Downloading…")).to_be_disabled()
        shot(page, "models-downloading")
    finally:
        release.set()
    expect(local.get_by_text("Downloaded tiny/new.").first).to_be_visible()
    rows = local.get_by_role("list", name="Checkpoints of local").get_by_role("listitem")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="tiny/new")).to_contain_text(_human(_size(cache / "models--tiny--new")))
    expect(bar).to_have_count(0)
    assert page.page_errors == []


def test_models_dark_and_narrow_and_read_only_for_a_user(e2e, open_studio, shot):
    page = open_studio(e2e, page="models", color_scheme="dark")
    expect(page.get_by_role("region", name="Placeholder", exact=True).get_by_text("Placeholder (simple)")).to_be_visible()
    shot(page, "models-dark")

    user = open_studio(e2e, key=USER_KEY, page="models", viewport={"width": 375, "height": 800})
    region = user.get_by_role("region", name="Placeholder", exact=True)
    expect(region.get_by_role("list", name="Checkpoints of placeholder").get_by_role("listitem")).to_have_count(3)
    expect(user.get_by_text("Read-only")).to_be_visible()
    expect(user.get_by_role("button", name="Delete")).to_have_count(0)
    expect(user.get_by_role("form")).to_have_count(0)
    # the comfy fake of the session offers no checkpoints (only what its recorded options list)
    comfy = user.get_by_role("region", name="ComfyUI (fake)")
    expect(comfy.get_by_role("heading", name="ComfyUI (fake)")).to_be_visible()
    expect(comfy.get_by_text(re.compile(r"^\d+ models?$"))).to_be_visible()  # listed (not loading)
    expect(comfy.get_by_role("list", name="Checkpoints of comfy")).to_have_count(0)
    width = user.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page scrolls sideways at 375 px ({width} px wide)"
    shot(user, "models-375-user")
    assert page.page_errors == [] and user.page_errors == []
