"""Workflow templates: slot detection, applying a request, loading, and UI-to-API conversion."""

from __future__ import annotations

import copy
import json

import pytest

from image_studio.errors import ConfigError, InvalidRequest, NotFound
from image_studio.providers.comfyui.workflow import (
    SEED_MAX,
    WorkflowTemplate,
    apply,
    detect_slots,
    list_templates,
    load_template,
    ui_to_api,
)
from image_studio.types import GenerationRequest

from .graphs import fixture, invert

TXT2IMG_SLOTS = {"prompt": [("6", "text")], "negative_prompt": [("7", "text")], "seed": [("3", "seed")],
                 "steps": [("3", "steps")], "cfg": [("3", "cfg")], "sampler": [("3", "sampler_name")],
                 "scheduler": [("3", "scheduler")], "denoise": [("3", "denoise")], "width": [("5", "width")],
                 "height": [("5", "height")], "batch_size": [("5", "batch_size")],
                 "checkpoint": [("4", "ckpt_name")]}


def test_detect_slots_standard_txt2img() -> None:
    assert detect_slots(fixture("api_txt2img")) == TXT2IMG_SLOTS


def test_detect_slots_img2img_and_weightfree() -> None:
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}},
             "2": {"class_type": "LoadImageMask", "inputs": {"image": "m.png", "channel": "alpha"}},
             "3": {"class_type": "KSamplerAdvanced", "inputs": {"noise_seed": 1, "steps": 4, "cfg": 7,
                                                                 "positive": ["9", 0], "negative": ["9", 0]}},
             "9": {"class_type": "ConditioningZeroOut", "inputs": {}}}
    slots = detect_slots(graph)
    assert slots["init_image"] == [("1", "image")] and slots["mask"] == [("2", "image")]
    assert slots["seed"] == [("3", "noise_seed")] and "prompt" not in slots
    assert detect_slots(invert()) == {"width": [("1", "width")], "height": [("1", "height")],
                                      "batch_size": [("1", "batch_size")]}


def test_shipped_templates() -> None:
    assert list_templates() == ["txt2img", "upscale", "weightfree", "weightfree_video"]
    txt2img = load_template("txt2img")
    assert txt2img.prompt == fixture("api_txt2img")
    assert txt2img.slots == detect_slots(txt2img.prompt) == TXT2IMG_SLOTS
    weightfree = load_template("weightfree")
    assert [weightfree.prompt[n]["class_type"] for n in ("1", "2", "3")] == ["EmptyImage", "ImageInvert", "SaveImage"]
    assert set(weightfree.slots) == {"width", "height", "batch_size", "color"}
    assert all(target[0] == "1" for targets in weightfree.slots.values() for target in targets)
    schema = weightfree.parameters_schema()
    assert schema["properties"]["color"] == {"default": 3368652, "type": "integer"}


def test_apply_fills_slots_and_keeps_the_template() -> None:
    template = load_template("txt2img")
    before = copy.deepcopy(template.prompt)
    request = GenerationRequest(prompt="a fox", negative_prompt="blurry", width=640, height=448, n=2, steps=12,
                                cfg_scale=5.5, sampler="dpmpp_2m", scheduler="karras", seed=1234,
                                model="sd15.safetensors", denoising_strength=0.75)
    prompt = apply(template, request)
    assert prompt["6"]["inputs"]["text"] == "a fox" and prompt["7"]["inputs"]["text"] == "blurry"
    ks = prompt["3"]["inputs"]
    assert (ks["seed"], ks["steps"], ks["cfg"], ks["sampler_name"], ks["scheduler"], ks["denoise"]) == (
        1234, 12, 5.5, "dpmpp_2m", "karras", 0.75)
    assert prompt["5"]["inputs"] == {"width": 640, "height": 448, "batch_size": 2}
    assert prompt["4"]["inputs"]["ckpt_name"] == "sd15.safetensors"
    assert prompt.seed == 1234 and prompt.applied["steps"] == 12
    assert template.prompt == before, "apply must not change the template"
    assert json.loads(json.dumps(prompt)) == dict(prompt)


def test_apply_random_seed_when_none_or_minus_one() -> None:
    template = load_template("txt2img")
    seeds = set()
    for seed in (None, -1, None):
        prompt = apply(template, GenerationRequest(prompt="x", seed=seed))
        assert prompt.seed is not None and 0 <= prompt.seed < SEED_MAX
        assert prompt["3"]["inputs"]["seed"] == prompt.seed
        seeds.add(prompt.seed)
    assert len(seeds) > 1
    assert apply(template, GenerationRequest(prompt="x"), seed=7).seed == 7


def test_apply_leaves_template_values_for_missing_fields() -> None:
    prompt = apply(load_template("txt2img"), GenerationRequest(prompt="x", seed=1))
    assert prompt["7"]["inputs"]["text"] == "text, watermark"  # negative_prompt None keeps the template's
    assert prompt["3"]["inputs"]["steps"] == 20
    assert prompt["4"]["inputs"]["ckpt_name"] == "v1-5-pruned-emaonly-fp16.safetensors"


def test_apply_params_and_images() -> None:
    template = load_template("weightfree")
    prompt = apply(template, GenerationRequest(prompt="x", width=96, height=32,
                                               params={"color": 0x102030, "3.filename_prefix": "mine"}))
    assert prompt["1"]["inputs"] == {"width": 96, "height": 32, "batch_size": 1, "color": 0x102030}
    assert prompt["3"]["inputs"]["filename_prefix"] == "mine"
    assert prompt.seed is None  # no seed slot
    with pytest.raises(InvalidRequest) as info:
        apply(template, GenerationRequest(prompt="x", params={"colour": 1}))
    assert info.value.field == "params.colour" and "color" in info.value.message
    img = WorkflowTemplate("img", {"1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}}},
                           {"init_image": [("1", "image")]})
    assert apply(img, GenerationRequest(prompt="x"), images={"init_image": "sub/a.png"})["1"]["inputs"]["image"] \
        == "sub/a.png"


def test_load_template_inline_forms() -> None:
    graph = invert(color=5)
    assert load_template(json.dumps(graph)).slots == detect_slots(graph)
    as_template = load_template({"name": "mine", "prompt": graph, "slots": {"color": [["1", "color"]]}})
    assert as_template.name == "mine" and as_template.slots == {"color": [("1", "color")]}
    converted = load_template(fixture("ui_txt2img"), object_info=fixture("object_info_subset"))
    assert converted.prompt == fixture("api_txt2img")


def test_load_template_errors() -> None:
    with pytest.raises(NotFound, match="weightfree"):
        load_template("nope")
    with pytest.raises(NotFound):
        load_template("../../etc/passwd")
    with pytest.raises(InvalidRequest) as info:
        load_template("{not json")
    assert info.value.field == "workflow"
    with pytest.raises(InvalidRequest, match="object_info"):
        load_template(fixture("ui_txt2img"))
    with pytest.raises(InvalidRequest):
        load_template({"1": {"inputs": {}}})
    with pytest.raises(ConfigError) as bad_slot:
        load_template({"prompt": invert(), "slots": {"width": [["7", "width"]]}})
    assert bad_slot.value.field == "workflow.slots.width"


def test_ui_to_api_is_exactly_the_recorded_conversion() -> None:
    converted = ui_to_api(fixture("ui_txt2img"), fixture("object_info_subset"))
    expected = fixture("api_txt2img")
    assert converted == expected
    assert json.dumps(converted) == json.dumps(expected), "same node and input order"


def _ui(nodes: list[dict], links: list[list]) -> dict:
    return {"nodes": nodes, "links": links, "version": 0.4}


def _node(node_id: int, kind: str, *, inputs: list | None = None, outputs: list | None = None,
          widgets: list | None = None, mode: int = 0, **extra: object) -> dict:
    return {"id": node_id, "type": kind, "mode": mode, "inputs": inputs or [], "outputs": outputs or [],
            "widgets_values": widgets, **extra}


def test_ui_to_api_bypass_mute_reroute_primitive_and_defaults() -> None:
    info = fixture("object_info_subset")
    ui = _ui([
        _node(1, "EmptyImage", outputs=[{"name": "IMAGE", "type": "IMAGE", "links": [1]}], widgets=[8, 8, 1, 0]),
        _node(2, "ImageInvert", mode=4, inputs=[{"name": "image", "type": "IMAGE", "link": 1}],
              outputs=[{"name": "IMAGE", "type": "IMAGE", "links": [2]}]),
        _node(3, "Reroute", inputs=[{"name": "", "type": "*", "link": 2}],
              outputs=[{"name": "", "type": "IMAGE", "links": [3, 5]}]),
        _node(4, "SaveImage", inputs=[{"name": "images", "type": "IMAGE", "link": 3},
                                      {"name": "filename_prefix", "type": "STRING", "link": 4,
                                       "widget": {"name": "filename_prefix"}}], widgets=["ignored"], title="Out"),
        _node(5, "PrimitiveNode", outputs=[{"name": "STRING", "type": "STRING", "links": [4]}], widgets=["prim"]),
        _node(6, "PreviewImage", mode=2, inputs=[{"name": "images", "type": "IMAGE", "link": 5}]),
        _node(7, "LoadImage", outputs=[{"name": "IMAGE", "type": "IMAGE", "links": []}],
              widgets=["example.png", "image"]),
        _node(8, "KSampler", widgets=[5, "randomize", 3]),
    ], [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"], [3, 3, 0, 4, 0, "IMAGE"], [4, 5, 0, 4, 1, "STRING"],
        [5, 3, 0, 6, 0, "IMAGE"]])
    api = ui_to_api(ui, info)
    assert set(api) == {"1", "4", "7", "8"}, "bypassed, muted, reroute and primitive nodes are not emitted"
    assert api["4"]["inputs"] == {"filename_prefix": "prim", "images": ["1", 0]}
    assert api["4"]["_meta"]["title"] == "Out"
    assert api["7"]["inputs"] == {"image": "example.png"}
    ks = api["8"]["inputs"]
    assert ks["seed"] == 5 and ks["steps"] == 3, "the control_after_generate value is skipped"
    assert ks["cfg"] == 8.0 and ks["sampler_name"] == "euler" and ks["denoise"] == 1.0, "defaults filled"
    assert api["1"]["_meta"]["title"] == "EmptyImage"


def test_ui_to_api_unknown_node_type() -> None:
    ui = _ui([_node(3, "NoSuchNode")], [])
    with pytest.raises(InvalidRequest) as info:
        ui_to_api(ui, fixture("object_info_subset"))
    assert info.value.field == "workflow.nodes.3.type" and "NoSuchNode" in info.value.message
    with pytest.raises(InvalidRequest):
        ui_to_api({"1": {}}, {})


def test_media_is_inferred_from_output_nodes_when_not_given():
    from image_studio.providers.comfyui.workflow import infer_media, template_from_json
    from image_studio.types import MediaKind

    video = {"1": {"class_type": "EmptyImage", "inputs": {}},
             "2": {"class_type": "SaveWEBM", "inputs": {"images": ["1", 0]}}}
    assert infer_media(video) == [MediaKind.video]
    assert template_from_json({"name": "v", "prompt": video, "slots": {}}).media == [MediaKind.video]
    assert template_from_json(video).media == [MediaKind.video]
    both = {**video, "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}
    assert infer_media(both) == [MediaKind.image, MediaKind.video]
    assert infer_media({"1": {"class_type": "KSampler", "inputs": {}}}) == [MediaKind.image]
