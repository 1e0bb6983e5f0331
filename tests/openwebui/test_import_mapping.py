"""Open WebUI's image settings as studio config, without a server: the mapping of each engine,
the ComfyUI workflow and node mapping as a template, configure's backup, and the plan
(additions, changes, unchanged). The same import through the real Open WebUI is in
test_import_config.py."""

from __future__ import annotations

import json

from image_studio.config import StudioConfig
from image_studio.crypto import config_to_public
from image_studio.openwebui import import_config as imp
from image_studio.openwebui.configure import FACADE_PATH

GRAPH = {  # runs on tests/fakes/comfyui_server.py (no model files): size, steps, and a text node for the prompt
    "1": {"class_type": "EmptyImage", "inputs": {"width": 512, "height": 512, "batch_size": 1, "color": 0x336699}},
    "2": {"class_type": "FixtureSleepProgress", "inputs": {"image": ["1", 0], "steps": 20, "step_seconds": 0.0,
                                                           "preview": False, "progress_text": False}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "owui"}},
    "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "Prompt", "clip": ["9", 1]}},
    "5": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["9", 1]}},
}
NODES = [  # Open WebUI's COMFYUI_WORKFLOW_NODES shape (utils/images/comfyui.py ComfyUINodeInput)
    {"type": "prompt", "key": "text", "node_ids": ["4"]},
    {"type": "negative_prompt", "key": "", "node_ids": ["5"]},
    {"type": "width", "key": "width", "node_ids": ["1"]},
    {"type": "height", "key": "height", "node_ids": ["1"]},
    {"type": "n", "key": "batch_size", "node_ids": ["1"]},
    {"type": "steps", "key": "steps", "node_ids": ["2"]},
    {"type": None, "key": "filename_prefix", "node_ids": ["3"], "value": "from-owui"},
]
FRESH = {  # a fresh Open WebUI 0.12.4 (GET /api/v1/images/config), nothing set up
    "ENABLE_IMAGE_GENERATION": False, "IMAGE_GENERATION_ENGINE": "openai", "IMAGE_GENERATION_MODEL": "",
    "IMAGE_SIZE": "512x512", "IMAGE_STEPS": 50, "IMAGES_OPENAI_API_BASE_URL": "https://api.openai.com/v1",
    "IMAGES_OPENAI_API_KEY": "", "IMAGES_OPENAI_API_VERSION": "", "IMAGES_OPENAI_API_PARAMS": {},
    "AUTOMATIC1111_BASE_URL": "", "AUTOMATIC1111_API_AUTH": "", "AUTOMATIC1111_PARAMS": {}, "COMFYUI_BASE_URL": "",
    "COMFYUI_API_KEY": "", "COMFYUI_WORKFLOW": json.dumps(GRAPH), "COMFYUI_WORKFLOW_NODES": [],
    "IMAGES_GEMINI_API_BASE_URL": "", "IMAGES_GEMINI_API_KEY": "", "IMAGES_GEMINI_ENDPOINT_METHOD": "",
    "ENABLE_IMAGE_EDIT": False, "IMAGE_EDIT_ENGINE": "openai", "IMAGE_EDIT_MODEL": "", "IMAGE_EDIT_SIZE": "",
    "IMAGES_EDIT_OPENAI_API_BASE_URL": "https://api.openai.com/v1", "IMAGES_EDIT_OPENAI_API_KEY": "",
    "IMAGES_EDIT_COMFYUI_BASE_URL": "", "IMAGES_EDIT_COMFYUI_API_KEY": "", "IMAGES_EDIT_COMFYUI_WORKFLOW": "",
    "IMAGES_EDIT_COMFYUI_WORKFLOW_NODES": [], "IMAGES_EDIT_GEMINI_API_BASE_URL": "", "IMAGES_EDIT_GEMINI_API_KEY": "",
}
COMFY = {**FRESH, "IMAGE_GENERATION_ENGINE": "comfyui", "COMFYUI_BASE_URL": "http://127.0.0.1:8188/",
         "COMFYUI_API_KEY": "comfy-secret-123", "COMFYUI_WORKFLOW_NODES": NODES, "IMAGE_STEPS": 7,
         "IMAGE_SIZE": "640x448", "IMAGE_GENERATION_MODEL": "sd15.safetensors"}


def test_a_fresh_open_webui_has_nothing_to_import():
    out = imp.map_settings(FRESH)
    assert out.providers == {} and out.workflows == {} and out.default_provider is None
    assert out.facade_defaults == {}


def test_comfyui_becomes_a_provider_with_the_mapped_workflow():
    out = imp.map_settings(COMFY)
    provider = out.providers["owui-comfyui"]
    assert provider.type == "comfyui" and provider.backends[0].url == "http://127.0.0.1:8188"
    assert provider.backends[0].headers == {"Authorization": "Bearer comfy-secret-123"}
    template = out.workflows["owui-comfyui"]
    assert template.slots == {"prompt": [("4", "text")], "negative_prompt": [("5", "text")], "width": [("1", "width")],
                              "height": [("1", "height")], "batch_size": [("1", "batch_size")],
                              "steps": [("2", "steps")]}
    assert template.prompt["2"]["inputs"]["steps"] == 7  # IMAGE_STEPS, as Open WebUI sets on every run
    assert template.prompt["3"]["inputs"]["filename_prefix"] == "from-owui"  # an untyped entry's fixed value
    assert provider.settings["workflow"]["slots"]["prompt"] == [["4", "text"]]  # the provider's own workflow
    assert out.default_provider == "owui-comfyui"
    assert out.facade_defaults == {"width": 640, "height": 448}
    public = config_to_public(StudioConfig(providers=out.providers))
    assert "comfy-secret-123" not in json.dumps(public)  # a secret header: masked


def test_model_and_seed_nodes_and_entries_pointing_nowhere():
    graph = {**GRAPH, "6": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x.safetensors"}}}
    nodes = [{"type": "model", "key": "ckpt_name", "node_ids": ["6"]}, {"type": "seed", "key": "seed", "node_ids": ["2"]},
             {"type": "prompt", "key": "text", "node_ids": ["77"]}, {"type": "lora", "key": "x", "node_ids": ["1"]}]
    template, notes = imp.workflow_template("w", json.dumps(graph), nodes, model="sd15.safetensors")
    assert template is not None and template.slots == {"checkpoint": [("6", "ckpt_name")]}
    assert template.prompt["6"]["inputs"]["ckpt_name"] == "sd15.safetensors"
    assert any("node 2 input 'seed'" in n for n in notes) and any("node 77" in n for n in notes)
    assert any("'lora'" in n for n in notes)
    assert imp.workflow_template("w", "{not json", nodes)[0] is None
    ui = {"nodes": [], "links": [], "version": 0.4}
    assert "API format" in imp.workflow_template("w", ui, nodes)[1][0]


def test_an_empty_node_mapping_falls_back_to_slot_detection():
    template, notes = imp.workflow_template("w", json.dumps(GRAPH), [])
    assert template is not None and template.slots["width"] == [("1", "width")]
    assert "detected" in notes[0]


def test_automatic1111_with_auth_and_params():
    values = {**FRESH, "IMAGE_GENERATION_ENGINE": "automatic1111", "AUTOMATIC1111_BASE_URL": "http://127.0.0.1:7860",
              "AUTOMATIC1111_API_AUTH": "owui:s3cret:colon", "IMAGE_STEPS": 12,
              "AUTOMATIC1111_PARAMS": json.dumps({"cfg_scale": 4.5, "sampler_name": "Euler a", "scheduler": "karras",
                                                  "clip_skip": 2})}
    out = imp.map_settings(values)
    provider = out.providers["owui-a1111"]
    assert provider.credentials["username"].get_secret_value() == "owui"
    assert provider.credentials["password"].get_secret_value() == "s3cret:colon"
    defaults = {"steps": 12, "cfg_scale": 4.5, "sampler": "Euler a", "scheduler": "karras", "extra": {"clip_skip": 2}}
    assert out.facade_models["owui-a1111"].defaults == defaults and out.facade_models["owui-a1111"].provider == "owui-a1111"
    assert out.facade_defaults == {"width": 512, "height": 512, **defaults}
    assert imp.map_settings({**values, "IMAGE_GENERATION_ENGINE": ""}).default_provider == "owui-a1111"  # '' is A1111


def test_openai_official_and_compatible():
    official = imp.map_settings({**FRESH, "IMAGES_OPENAI_API_KEY": "sk-theirs", "IMAGE_GENERATION_MODEL": "dall-e-3",
                                 "IMAGES_OPENAI_API_PARAMS": {"quality": "hd", "unknown_knob": 1}})
    p = official.providers["owui-openai"]
    assert p.type == "openai" and p.backends == [] and p.settings == {"model": "dall-e-3", "quality": "hd"}
    assert any("unknown_knob" in n for n in official.notes)
    assert official.default_provider == "owui-openai"
    local = imp.map_settings({**FRESH, "IMAGE_GENERATION_ENGINE": "comfyui",
                              "IMAGES_OPENAI_API_BASE_URL": "http://127.0.0.1:8080/v1"})
    p = local.providers["owui-openai"]
    assert p.type == "openai_compatible" and p.backends[0].url == "http://127.0.0.1:8080/v1" and p.credentials == {}
    assert "model" not in p.settings  # the engine in use is another one: its model is not this one's
    assert local.default_provider is None  # ComfyUI is in use but has no URL


def test_the_studios_own_facade_is_never_a_provider():
    ours = {**FRESH, "IMAGES_OPENAI_API_BASE_URL": "http://127.0.0.1:8080" + FACADE_PATH,
            "IMAGES_OPENAI_API_KEY": "isk-svc-abc"}
    assert imp.map_settings(ours).providers == {}


def test_gemini_by_model_name_then_method():
    base = {**FRESH, "IMAGE_GENERATION_ENGINE": "gemini", "IMAGES_GEMINI_API_KEY": "AIza-x"}
    assert imp.map_settings(base).providers["owui-gemini"].type == "imagen"  # Open WebUI's default imagen-3.0
    assert imp.map_settings(base).providers["owui-gemini"].settings == {"model": "imagen-3.0-generate-002"}
    flash = imp.map_settings({**base, "IMAGE_GENERATION_MODEL": "gemini-2.5-flash-image"}).providers["owui-gemini"]
    assert flash.type == "gemini" and flash.backends == []
    method = imp.map_settings({**base, "IMAGE_GENERATION_ENGINE": "comfyui",
                               "IMAGES_GEMINI_ENDPOINT_METHOD": "generateContent",
                               "IMAGES_GEMINI_API_BASE_URL": "http://127.0.0.1:9/v1beta"}).providers["owui-gemini"]
    assert method.type == "gemini" and method.backends[0].url == "http://127.0.0.1:9/v1beta"


def test_edit_settings():
    same = {**FRESH, "IMAGES_OPENAI_API_BASE_URL": "http://127.0.0.1:5/v1", "ENABLE_IMAGE_EDIT": True,
            "IMAGES_EDIT_OPENAI_API_BASE_URL": "http://127.0.0.1:5/v1"}
    out = imp.map_settings(same)
    assert set(out.providers) == {"owui-openai"} and out.providers["owui-openai"].settings["edits"] is True
    other = imp.map_settings({**same, "IMAGES_EDIT_OPENAI_API_BASE_URL": "http://127.0.0.1:6/v1",
                              "IMAGE_EDIT_MODEL": "flux-kontext"})
    assert other.providers["owui-openai-edit"].settings == {"model": "flux-kontext", "edits": True}
    edit_graph = {**GRAPH, "7": {"class_type": "LoadImage", "inputs": {"image": "x.png"}}}
    comfy_edit = imp.map_settings({**COMFY, "ENABLE_IMAGE_EDIT": True, "IMAGE_EDIT_ENGINE": "comfyui",
                                   "IMAGES_EDIT_COMFYUI_BASE_URL": "http://127.0.0.1:8188",
                                   "IMAGES_EDIT_COMFYUI_API_KEY": "comfy-secret-123",
                                   "IMAGES_EDIT_COMFYUI_WORKFLOW": json.dumps(edit_graph),
                                   "IMAGES_EDIT_COMFYUI_WORKFLOW_NODES": [
                                       {"type": "image", "key": "image", "node_ids": ["7"]},
                                       {"type": "prompt", "key": "text", "node_ids": ["4"]}]})
    assert "owui-comfyui-edit" not in comfy_edit.providers  # same server: the generation provider runs it
    assert comfy_edit.workflows["owui-comfyui-edit"].slots["init_image"] == [("7", "image")]


def test_configure_backup_restores_what_it_replaced():
    facade = "http://127.0.0.1:8080" + FACADE_PATH
    now = {**FRESH, "IMAGE_GENERATION_ENGINE": "openai", "IMAGES_OPENAI_API_BASE_URL": facade,
           "IMAGES_OPENAI_API_KEY": "isk-svc-new", "IMAGE_GENERATION_MODEL": "image-studio"}
    entries = [
        {"saved_at": "2026-11-20T10:00:00+00:00", "settings": {"IMAGES_OPENAI_API_BASE_URL": "http://10.0.0.1/v1",
                                                               "IMAGES_OPENAI_API_KEY": "sk-oldest"}},
        {"saved_at": "2026-11-21T10:00:00+00:00", "settings": {
            "IMAGE_GENERATION_ENGINE": "comfyui", "IMAGES_OPENAI_API_BASE_URL": "https://api.openai.com/v1",
            "IMAGES_OPENAI_API_KEY": "sk-before-studio", "IMAGE_GENERATION_MODEL": ""}},
        {"saved_at": "2026-11-22T10:00:00+00:00", "settings": {"IMAGES_OPENAI_API_KEY": "isk-svc-old"}},
    ]
    values, notes = imp.restore_replaced(now, entries)
    assert values["IMAGES_OPENAI_API_BASE_URL"] == "https://api.openai.com/v1"
    assert values["IMAGES_OPENAI_API_KEY"] == "sk-before-studio" and values["IMAGE_GENERATION_ENGINE"] == "comfyui"
    assert "2026-11-21T10:00:00+00:00" in notes[0]
    none, why = imp.restore_replaced(now, [])
    assert none == now and "no backup" in why[0]
    assert imp.map_settings(none).providers == {}


def test_plan_additions_then_unchanged_then_changes():
    imported = imp.map_settings(COMFY)
    first = imp.plan_import(imported, StudioConfig(), {})
    assert set(first.added) == {"providers.owui-comfyui", "workflows.owui-comfyui", "default_provider",
                                "openai_facade.default.defaults"}
    assert first.changed == [] and first.plan.conflicts == []
    assert all("comfy-secret-123" not in line for line in first.plan.render())
    applied = imp.imported_config(imported, StudioConfig(), first, force=False)
    assert applied.default_provider == "owui-comfyui" and "owui-comfyui" in applied.providers
    template = imported.workflows["owui-comfyui"]
    saved = {"owui-comfyui": {"api": template.prompt, "slots": {k: [list(t) for t in v] for k, v in template.slots.items()}}}
    again = imp.plan_import(imp.map_settings(COMFY), applied, saved)
    assert again.added == again.changed == [] and again.plan.changes == []
    assert "providers.owui-comfyui" in again.unchanged

    moved = imp.map_settings({**COMFY, "IMAGE_STEPS": 9, "COMFYUI_BASE_URL": "http://127.0.0.1:8189"})
    third = imp.plan_import(moved, applied.model_copy(update={"default_provider": "other"}), saved)
    assert set(third.changed) == {"providers.owui-comfyui", "workflows.owui-comfyui", "default_provider"}
    keys = {c.key for c in third.plan.conflicts}
    assert {"providers.owui-comfyui.backends", "providers.owui-comfyui.settings", "workflows.owui-comfyui.api",
            "default_provider"} <= keys
    held = imp.imported_config(moved, applied, third, force=False)
    assert held.providers["owui-comfyui"] == applied.providers["owui-comfyui"]
    forced = imp.imported_config(moved, applied, third, force=True)
    assert forced.providers["owui-comfyui"].backends[0].url == "http://127.0.0.1:8189"


async def test_first_start_imports_once(tmp_path):
    """The first-start hook on a real Studio (SQLite in tmp_path): imports, marks, then skips."""
    from image_studio.config import Settings
    from image_studio.studio import Studio

    studio = Studio(Settings(data_dir=tmp_path, secret_key="k" * 16), recover=False, run_queue=False)
    await studio.start()
    try:
        async def read():  # noqa: ANN202
            return COMFY

        out = await imp.first_start_import(studio, read=read, data_dir=tmp_path)
        assert out is not None and "providers.owui-comfyui" in out.applied
        assert studio.config.default_provider == "owui-comfyui" and "owui-comfyui" in studio.providers
        from image_studio.jobs.workflow_store import WorkflowStore

        saved = await WorkflowStore(studio.store).get("owui-comfyui")
        assert saved.slots["prompt"] == [["4", "text"]] and saved.api["2"]["inputs"]["steps"] == 7
        marker = await studio.store.get_setting(imp.MARKER_KEY)
        assert marker["source"] == "first start"
        assert await imp.first_start_import(studio, read=read, data_dir=tmp_path) is None
    finally:
        await studio.stop()
