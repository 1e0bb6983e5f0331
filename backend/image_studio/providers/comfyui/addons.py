"""Model add-ons for ComfyUI graphs: LoRAs, a VAE, a hires-fix pass and an upscale model,
inserted into an API-format prompt as the standard loader nodes.

The graph is rewired the way ComfyUI's own example workflows do it (node classes and input
names from ComfyUI's ``nodes.py``: ``LoraLoader``, ``VAELoader``, ``LatentUpscaleBy``,
``KSampler``; ``comfy_extras/nodes_upscale_model.py``: ``UpscaleModelLoader``,
``ImageUpscaleWithModel``):

* **LoRAs**: a chain of ``LoraLoader`` nodes after the checkpoint loader; every consumer of
  the checkpoint's MODEL (output 0) and CLIP (output 1) is moved to the last LoRA's outputs.
* **VAE**: a ``VAELoader``; every consumer of the checkpoint's VAE (output 2) uses it.
* **Hires fix**: ``LatentUpscaleBy`` on the sampler's latent, then a second ``KSampler`` with
  the same model and conditioning at ``denoising_strength``; the decoder reads the second pass.
* **Upscale model**: ``UpscaleModelLoader`` + ``ImageUpscaleWithModel`` between every
  ``VAEDecode`` and the nodes that consumed its image.

Each function takes and returns a plain API prompt (``{node_id: {class_type, inputs}}``) and
raises :class:`Unsupported` (field named) when the graph lacks the node the add-on hooks into.
"""

from __future__ import annotations

import copy
from typing import Any

from ...errors import Unsupported
from ...types import GenerationRequest, HiresFix, LoraSpec

Prompt = dict[str, Any]

CHECKPOINT_LOADERS = ("CheckpointLoaderSimple", "CheckpointLoader")


def _new_id(prompt: Prompt) -> str:
    numeric = [int(k) for k in prompt if str(k).isdigit()]
    return str(max(numeric, default=0) + 1)


def _nodes(prompt: Prompt, classes: tuple[str, ...]) -> list[str]:
    return [nid for nid, node in prompt.items() if node.get("class_type") in classes]


def _rewire(prompt: Prompt, source: tuple[str, int], target: tuple[str, int], *, skip: set[str]) -> int:
    """Point every input linked to ``source`` at ``target`` (nodes in ``skip`` untouched);
    returns how many inputs moved."""
    moved = 0
    for nid, node in prompt.items():
        if nid in skip:
            continue
        for name, value in (node.get("inputs") or {}).items():
            if isinstance(value, list) and len(value) == 2 and str(value[0]) == source[0] and value[1] == source[1]:
                node["inputs"][name] = [target[0], target[1]]
                moved += 1
    return moved


def _checkpoint(prompt: Prompt, what: str, field: str) -> str:
    found = _nodes(prompt, CHECKPOINT_LOADERS)
    if not found:
        raise Unsupported(f"{what} needs a checkpoint loader (CheckpointLoaderSimple) in the workflow", field=field)
    return found[0]


def add_loras(prompt: Prompt, loras: list[LoraSpec]) -> Prompt:
    """Chain one ``LoraLoader`` per LoRA after the checkpoint (strength on model and CLIP)."""
    if not loras:
        return prompt
    ckpt = _checkpoint(prompt, "a LoRA", "loras")
    model, clip = (ckpt, 0), (ckpt, 1)
    added: set[str] = set()
    for lora in loras:
        nid = _new_id(prompt)
        prompt[nid] = {"class_type": "LoraLoader", "_meta": {"title": f"LoRA {lora.name}"},
                       "inputs": {"model": [model[0], model[1]], "clip": [clip[0], clip[1]],
                                  "lora_name": lora.name, "strength_model": lora.weight,
                                  "strength_clip": lora.weight}}
        added.add(nid)
        model, clip = (nid, 0), (nid, 1)
    _rewire(prompt, (ckpt, 0), model, skip=added)
    _rewire(prompt, (ckpt, 1), clip, skip=added)
    return prompt


def set_vae(prompt: Prompt, vae: str | None) -> Prompt:
    """Decode and encode with ``vae`` (a ``VAELoader``) instead of the checkpoint's VAE."""
    if not vae:
        return prompt
    ckpt = _checkpoint(prompt, "a VAE choice", "vae")
    nid = _new_id(prompt)
    prompt[nid] = {"class_type": "VAELoader", "_meta": {"title": "VAE"}, "inputs": {"vae_name": vae}}
    _rewire(prompt, (ckpt, 2), (nid, 0), skip={nid})
    return prompt


def add_hires(prompt: Prompt, hires: HiresFix | None) -> Prompt:
    """Second sampling pass on the latent upscaled by ``hires.scale``."""
    if hires is None:
        return prompt
    samplers = [nid for nid in _nodes(prompt, ("KSampler",))
                if any(isinstance(v, list) and str(v[0]) == nid for n in prompt.values()
                       if n.get("class_type") == "VAEDecode" for v in n["inputs"].values())]
    if not samplers:
        raise Unsupported("hires fix needs a KSampler whose latent a VAEDecode reads", field="hires")
    first = samplers[0]
    up = _new_id(prompt)
    prompt[up] = {"class_type": "LatentUpscaleBy", "_meta": {"title": "Hires upscale"},
                  "inputs": {"samples": [first, 0], "upscale_method": hires.upscaler or "nearest-exact",
                             "scale_by": hires.scale}}
    second = _new_id(prompt)
    inputs = copy.deepcopy(prompt[first]["inputs"])
    inputs.update(latent_image=[up, 0], denoise=hires.denoising_strength)
    if hires.steps:
        inputs["steps"] = hires.steps
    prompt[second] = {"class_type": "KSampler", "_meta": {"title": "Hires pass"}, "inputs": inputs}
    _rewire(prompt, (first, 0), (second, 0), skip={up, second})
    return prompt


def add_upscale_model(prompt: Prompt, upscaler: str | None) -> Prompt:
    """Run every decoded image through the upscale model ``upscaler`` before it is saved."""
    if not upscaler:
        return prompt
    decoders = _nodes(prompt, ("VAEDecode",)) or _nodes(prompt, ("LoadImage",))
    if not decoders:
        raise Unsupported("an upscale model needs a VAEDecode or LoadImage in the workflow", field="upscale")
    loader = _new_id(prompt)
    prompt[loader] = {"class_type": "UpscaleModelLoader", "_meta": {"title": "Upscale model"},
                      "inputs": {"model_name": upscaler}}
    for dec in decoders:
        nid = _new_id(prompt)
        prompt[nid] = {"class_type": "ImageUpscaleWithModel", "_meta": {"title": "Upscale"},
                       "inputs": {"upscale_model": [loader, 0], "image": [dec, 0]}}
        _rewire(prompt, (dec, 0), (nid, 0), skip={nid})
    return prompt


def apply_addons(prompt: Prompt, request: GenerationRequest) -> Prompt:
    """Every add-on the request asks for, in the order LoRA, VAE, hires fix, upscale model
    (``request.hires.upscaler`` is a latent upscale method; ``request.upscale.upscaler`` an
    upscale model)."""
    prompt = add_loras(prompt, request.loras)
    prompt = set_vae(prompt, request.vae)
    prompt = add_hires(prompt, request.hires)
    upscaler = request.upscale.upscaler if request.upscale else None
    return add_upscale_model(prompt, upscaler)

