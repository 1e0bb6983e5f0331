"""LoRA, VAE, hires-fix and upscale-model insertion into API-format graphs."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from image_studio.errors import Unsupported
from image_studio.providers.comfyui.addons import add_hires, add_loras, add_upscale_model, apply_addons, set_vae
from image_studio.providers.comfyui.workflow import load_template
from image_studio.types import GenerationRequest, HiresFix, LoraSpec

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "comfyui"


def txt2img() -> dict:
    return json.loads((FIXTURES / "api_txt2img.json").read_text())


def links_to(prompt: dict, node_id: str, output: int) -> list[tuple[str, str]]:
    return [(nid, name) for nid, node in prompt.items() for name, v in node["inputs"].items()
            if isinstance(v, list) and v == [node_id, output]]


def test_loras_chain_after_the_checkpoint_and_take_its_consumers():
    prompt = add_loras(txt2img(), [LoraSpec(name="a.safetensors", weight=0.7), LoraSpec(name="b.safetensors")])
    loras = [nid for nid, n in prompt.items() if n["class_type"] == "LoraLoader"]
    assert len(loras) == 2
    first, second = (prompt[n] for n in loras)
    assert first["inputs"]["model"] == ["4", 0] and first["inputs"]["clip"] == ["4", 1]
    assert first["inputs"]["strength_model"] == 0.7 and first["inputs"]["lora_name"] == "a.safetensors"
    assert second["inputs"]["model"] == [loras[0], 0] and second["inputs"]["clip"] == [loras[0], 1]
    # KSampler's model and both text encoders now read the last LoRA; only LoRA 1 reads the checkpoint
    assert links_to(prompt, "4", 0) == [(loras[0], "model")]
    assert sorted(links_to(prompt, "4", 1)) == [(loras[0], "clip")]
    assert ("3", "model") in links_to(prompt, loras[1], 0)
    assert sorted(n for n, _ in links_to(prompt, loras[1], 1)) == ["6", "7"]


def test_vae_replaces_the_checkpoint_vae_everywhere():
    prompt = set_vae(txt2img(), "vae-ft-mse.safetensors")
    vae = next(nid for nid, n in prompt.items() if n["class_type"] == "VAELoader")
    assert links_to(prompt, "4", 2) == [] and links_to(prompt, vae, 0) == [("8", "vae")]


def test_hires_adds_an_upscaled_second_pass_read_by_the_decoder():
    prompt = add_hires(txt2img(), HiresFix(scale=1.5, steps=8, denoising_strength=0.4))
    up = next(nid for nid, n in prompt.items() if n["class_type"] == "LatentUpscaleBy")
    second = [nid for nid, n in prompt.items() if n["class_type"] == "KSampler" and nid != "3"][0]
    assert prompt[up]["inputs"]["samples"] == ["3", 0] and prompt[up]["inputs"]["scale_by"] == 1.5
    assert prompt[second]["inputs"]["latent_image"] == [up, 0]
    assert prompt[second]["inputs"]["denoise"] == 0.4 and prompt[second]["inputs"]["steps"] == 8
    assert prompt[second]["inputs"]["positive"] == prompt["3"]["inputs"]["positive"]
    assert prompt["8"]["inputs"]["samples"] == [second, 0]


def test_upscale_model_sits_between_decoder_and_save():
    prompt = add_upscale_model(txt2img(), "4x-UltraSharp.pth")
    up = next(nid for nid, n in prompt.items() if n["class_type"] == "ImageUpscaleWithModel")
    assert prompt[up]["inputs"]["image"] == ["8", 0] and prompt["9"]["inputs"]["images"] == [up, 0]


def test_weightfree_graph_refuses_model_add_ons():
    graph = load_template("weightfree").prompt
    with pytest.raises(Unsupported) as info:
        add_loras(graph, [LoraSpec(name="x")])
    assert info.value.field == "loras"
    with pytest.raises(Unsupported):
        add_hires(load_template("weightfree").prompt, HiresFix())


def test_apply_addons_in_order_and_nothing_when_not_asked():
    assert apply_addons(txt2img(), GenerationRequest(prompt="a")) == txt2img()
    req = GenerationRequest(prompt="a", loras=[{"name": "l"}], vae="v", hires={"scale": 2})
    classes = sorted(n["class_type"] for n in apply_addons(txt2img(), req).values())
    assert classes.count("KSampler") == 2 and {"LoraLoader", "VAELoader", "LatentUpscaleBy"} <= set(classes)


def test_upscale_template_fits_a_weight_free_comfyui():
    t = load_template("upscale")
    assert t.has("init_image") and t.has("scale")
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
    req = GenerationRequest(init_image=png, upscale={"scale": 3})
    assert req.mode.value == "upscale"
