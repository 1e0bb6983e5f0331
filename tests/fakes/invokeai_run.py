"""The executor half of the fake InvokeAI server: run the nodes of a validated graph
(:mod:`tests.fakes.invokeai_graph`) and make real PNGs.

What each node does is reduced to what a client can observe: a model loader fails on an unknown
model key (``Unknown model <key>``, as ``main_model_loader.invoke``) or a loader of the wrong
base; a missing connection fails with ``MissingInputException``; ``i2l`` and ``img_resize``
fail on an unknown image (``ImageFileNotFoundException``); ``denoise_latents`` fails when noise
and latents differ in size; ``l2i`` and ``img_resize`` save a PNG (coloured by the seed, blended
over the init image for img2img) through the server's ``save`` callback.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from typing import Any

from PIL import Image, ImageDraw

try:
    from tests.fakes.invokeai_graph import REQUIRED, Graph, ImageField, ModelIdentifier, Node
except ImportError:  # run as a file
    from invokeai_graph import REQUIRED, Graph, ImageField, ModelIdentifier, Node  # type: ignore[no-redef]


MODELS: list[dict[str, Any]] = [  # as GET /api/v2/models/ lists them (fewer fields)
    {"key": "0b6f7c1e-5d1a-4b8e-9a57-sd15000000001", "hash": "blake3:5e1a", "name": "stable-diffusion-v1-5",
     "base": "sd-1", "type": "main", "format": "diffusers", "variant": "normal", "description": "SD 1.5",
     "source": "stable-diffusion-v1-5/stable-diffusion-v1-5", "path": "sd-1/main/stable-diffusion-v1-5"},
    {"key": "7d1c2f44-8e0b-4a8c-b1f3-sdxl00000001", "hash": "blake3:9d2c", "name": "sdxl-base-1.0",
     "base": "sdxl", "type": "main", "format": "diffusers", "variant": "normal", "description": "SDXL base",
     "source": "stabilityai/stable-diffusion-xl-base-1.0", "path": "sdxl/main/sdxl-base-1.0"},
    {"key": "c3e9a0d2-1f6b-4e7d-8c2a-flux00000001", "hash": "blake3:77aa", "name": "FLUX Schnell",
     "base": "flux", "type": "main", "format": "checkpoint", "variant": "schnell", "description": "FLUX.1",
     "source": "black-forest-labs/FLUX.1-schnell", "path": "flux/main/flux1-schnell.safetensors"},
    {"key": "a1b2c3d4-0000-4000-8000-vae000000001", "hash": "blake3:0fae", "name": "sdxl-vae-fp16-fix",
     "base": "sdxl", "type": "vae", "format": "diffusers", "description": "VAE",
     "source": "madebyollin/sdxl-vae-fp16-fix", "path": "sdxl/vae/sdxl-vae-fp16-fix"},
]

OUTPUT_TYPES: dict[str, str] = {"main_model_loader": "model_loader_output", "sdxl_model_loader": "sdxl_model_loader_output",
                 "clip_skip": "clip_skip_output", "compel": "conditioning_output",
                 "sdxl_compel_prompt": "conditioning_output", "noise": "noise_output",
                 "denoise_latents": "latents_output", "i2l": "latents_output", "l2i": "image_output",
                 "img_resize": "image_output", "integer": "integer_output", "string": "string_output",
                 "collect": "collect_output"}


class NodeFailure(Exception):
    """A node failed while running: ``error_type`` and message as the queue item reports them."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def render_png(width: int, height: int, seed: int, base: Image.Image | None, strength: float) -> bytes:
    """A PNG ``width`` x ``height`` coloured by ``seed``, blended over ``base`` (img2img) by ``strength``."""
    colour = ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256)
    im = Image.new("RGB", (width, height), colour)
    ImageDraw.Draw(im).rectangle((0, 0, max(0, width // 4), max(0, height // 4)), fill=(255 - colour[0], 0, 0))
    if base is not None:
        im = Image.blend(base.convert("RGB").resize((width, height)), im, max(0.0, min(1.0, strength)))
    out = io.BytesIO()
    im.save(out, format="PNG")
    return out.getvalue()


SaveImage = Callable[[bytes, int, int, Node], str]
"""``save(png, width, height, node) -> image_name``: stores an output image (board, intermediate)."""


def node_inputs(graph: Graph, node_id: str, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The node's fields with the values of its input edges put in (``collect.item`` gathers)."""
    node = graph.nodes[node_id]
    values = dict(node)
    gathered: list[Any] = []
    for e in graph.edges:
        if e.destination.node_id != node_id:
            continue
        value = results[e.source.node_id][e.source.field]
        if node.type == "collect" and e.destination.field == "item":
            gathered.append(value)
        else:
            values[e.destination.field] = value
    if node.type == "collect":
        values["collection"] = list(values.get("collection") or []) + gathered
    return values


def run_node(node: Node, v: dict[str, Any], *, models: dict[str, dict[str, Any]],
             images: dict[str, dict[str, Any]], save: SaveImage) -> dict[str, Any]:
    """Run one node on its input values ``v``; returns its outputs.

    Raises:
        NodeFailure: a missing input, an unknown model or image, mismatched latents.
    """
    kind = node.type  # type: ignore[attr-defined]
    for name in REQUIRED.get(kind, ()):
        if v.get(name) is None:
            raise NodeFailure("MissingInputException", f"{node.id}.{name}: missing input")
    if kind in ("main_model_loader", "sdxl_model_loader"):
        model = v["model"]
        key = model.key if isinstance(model, ModelIdentifier) else model["key"]
        config = models.get(key)
        if config is None:
            raise NodeFailure("Exception", f"Unknown model {key}")
        if (config["base"] == "sdxl") != (kind == "sdxl_model_loader"):
            raise NodeFailure("ValueError", f"{kind} cannot load a {config['base']} model")
        part = {"key": key, "base": config["base"]}
        return {"unet": part, "clip": part, "clip2": part, "vae": part}
    if kind == "clip_skip":
        return {"clip": {**v["clip"], "skipped_layers": v["skipped_layers"]}}
    if kind in ("compel", "sdxl_compel_prompt"):
        return {"conditioning": {"conditioning_name": str(uuid.uuid4()), "prompt": v["prompt"]}}
    if kind == "noise":
        size = {"width": v["width"], "height": v["height"]}
        return {"noise": {"latents_name": str(uuid.uuid4()), "seed": v["seed"], **size}, **size}
    if kind == "i2l":
        name = _image_name(v["image"])
        if name not in images:
            raise NodeFailure("ImageFileNotFoundException", f"Image {name} not found")
        size = {"width": images[name]["width"], "height": images[name]["height"]}
        return {"latents": {"source_image": name, "seed": None, **size}, **size}
    if kind == "denoise_latents":
        return _denoise(v)
    if kind in ("l2i", "img_resize"):
        return _image(node, v, images=images, save=save)
    if kind in ("integer", "string"):
        return {"value": v["value"]}
    return {"collection": v["collection"]}


def record_result(session: dict[str, Any], node: Node, outputs: dict[str, Any]) -> None:
    """Note a node's run in a session as InvokeAI does: a prepared copy under a new id, mapped
    back to the node (``prepared_source_mapping``), its typed output in ``results``, ``executed``."""
    prepared = str(uuid.uuid4())
    session["execution_graph"]["nodes"][prepared] = {**node.model_dump(mode="json"), "id": prepared}
    session["prepared_source_mapping"][prepared] = node.id
    session["source_prepared_mapping"][node.id] = [prepared]
    session["results"][prepared] = {"type": OUTPUT_TYPES[node.type], **outputs}  # type: ignore[attr-defined]
    session["executed"].append(prepared)
    session["executed_history"].append(node.id)


def _image_name(value: Any) -> str:
    return value.image_name if isinstance(value, ImageField) else value["image_name"]


def _denoise(v: dict[str, Any]) -> dict[str, Any]:
    noise, latents = v.get("noise"), v.get("latents")
    if noise is None and latents is None:
        raise NodeFailure("MissingInputException", "denoise_latents needs noise or latents")
    if noise is not None and latents is not None and (noise["width"], noise["height"]) != (
            latents["width"], latents["height"]):
        raise NodeFailure("RuntimeError", "The size of the noise does not match the size of the latents")
    src = latents or noise
    out = {"seed": (noise or {}).get("seed", 0), "width": src["width"], "height": src["height"],
           "strength": 1.0 - v["denoising_start"], "source_image": (latents or {}).get("source_image")}
    return {"latents": out, "width": out["width"], "height": out["height"]}


def _image(node: Node, v: dict[str, Any], *, images: dict[str, dict[str, Any]], save: SaveImage) -> dict[str, Any]:
    if node.type == "l2i":  # type: ignore[attr-defined]
        lat = v["latents"]
        base = images.get(lat.get("source_image") or "")
        init = Image.open(io.BytesIO(base["data"])) if base else None
        data, width, height = render_png(lat["width"], lat["height"], lat["seed"], init, lat["strength"]), \
            lat["width"], lat["height"]
    else:
        name = _image_name(v["image"])
        if name not in images:
            raise NodeFailure("ImageFileNotFoundException", f"Image {name} not found")
        width, height = v["width"], v["height"]
        out = io.BytesIO()
        Image.open(io.BytesIO(images[name]["data"])).resize((width, height)).save(out, format="PNG")
        data = out.getvalue()
    name = save(data, width, height, node)
    return {"image": {"image_name": name}, "width": width, "height": height}
