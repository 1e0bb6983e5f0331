"""ComfyUI workflow templates: an API-format prompt plus *parameter slots*.

A slot names a parameter and lists where it goes, as ``(node_id, input_name)`` pairs. The
standard slots are filled from :class:`~image_studio.types.GenerationRequest` fields:

=================  =====================================  ============================
slot               request field                          usual target
=================  =====================================  ============================
prompt             ``prompt``                             CLIPTextEncode.text (positive)
negative_prompt    ``negative_prompt``                    CLIPTextEncode.text (negative)
seed               ``seed`` (random when None or -1)      KSampler.seed
steps              ``steps``                              KSampler.steps
cfg                ``cfg_scale``                          KSampler.cfg
sampler            ``sampler``                            KSampler.sampler_name
scheduler          ``scheduler``                          KSampler.scheduler
denoise            ``denoising_strength``                 KSampler.denoise
width, height      ``width``, ``height`` (pixels)         EmptyLatentImage
batch_size         ``n``                                  EmptyLatentImage.batch_size
checkpoint         ``model``                              CheckpointLoaderSimple.ckpt_name
init_image, mask   uploaded file names                    LoadImage.image
=================  =====================================  ============================

Any other slot (``color`` in ``weightfree``) is an *exposed parameter*, set through
``request.params[name]``; ``request.params`` may also set a standard slot by name or any
input directly as ``"<node_id>.<input_name>"``. A value None leaves the template's value.

A template file (``workflows/<name>.json``) is ``{"name", "description", "media": [...],
"prompt": {API prompt}, "slots": {name: [[node_id, input], ...]}}``. Inline workflows are
accepted too: a template object, or a bare API prompt (slots then come from
:func:`detect_slots`).
"""

from __future__ import annotations

import copy
import json
import secrets
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from ...errors import ConfigError, InvalidRequest, NotFound
from ...types import GenerationRequest, MediaKind
from .convert import is_ui_workflow, ui_to_api

__all__ = ["ApiPrompt", "WorkflowTemplate", "apply", "detect_slots", "is_ui_workflow", "list_templates",
           "load_template", "ui_to_api", "SEED_MAX"]

STANDARD_SLOTS = ("prompt", "negative_prompt", "seed", "steps", "cfg", "sampler", "scheduler", "width",
                  "height", "batch_size", "checkpoint", "init_image", "mask", "denoise")
SEED_MAX = 2**53 - 1
"""Random seeds are drawn below this (exact in JSON numbers everywhere)."""

Target = tuple[str, str]

_REQUEST_FIELDS = {"prompt": "prompt", "negative_prompt": "negative_prompt", "steps": "steps",
                   "cfg": "cfg_scale", "sampler": "sampler", "scheduler": "scheduler", "width": "width",
                   "height": "height", "batch_size": "n", "checkpoint": "model", "denoise": "denoising_strength"}


@dataclass
class WorkflowTemplate:
    """An API-format prompt with parameter slots. ``media`` lists what its outputs are."""

    name: str
    prompt: dict[str, Any]
    slots: dict[str, list[Target]] = field(default_factory=dict)
    description: str = ""
    media: list[MediaKind] = field(default_factory=lambda: [MediaKind.image])

    def __post_init__(self) -> None:
        for slot, targets in self.slots.items():
            for node_id, input_name in targets:
                if node_id not in self.prompt:
                    raise ConfigError(f"workflow {self.name!r}: slot {slot!r} points at node {node_id}, "
                                      "which the prompt does not have", field=f"workflow.slots.{slot}")
                if input_name not in (self.prompt[node_id].get("inputs") or {}):
                    raise ConfigError(f"workflow {self.name!r}: slot {slot!r} points at input {input_name!r} "
                                      f"of node {node_id}, which it does not have", field=f"workflow.slots.{slot}")

    def has(self, slot: str) -> bool:
        return bool(self.slots.get(slot))

    def value(self, slot: str, prompt: dict[str, Any] | None = None) -> Any:
        """The value at a slot's first target in ``prompt`` (default: the template's own)."""
        targets = self.slots.get(slot)
        if not targets:
            return None
        node_id, input_name = targets[0]
        return ((prompt or self.prompt).get(node_id) or {}).get("inputs", {}).get(input_name)

    def parameters_schema(self) -> dict[str, Any]:
        """JSON Schema of the exposed parameters (every slot but the images), typed from the
        template's current values, which are the defaults."""
        props: dict[str, Any] = {}
        for slot in self.slots:
            if slot in ("init_image", "mask"):
                continue
            default = self.value(slot)
            kind = {bool: "boolean", int: "integer", float: "number", str: "string"}.get(type(default))
            props[slot] = {"default": default, **({"type": kind} if kind else {})}
        return {"type": "object", "title": self.name, "description": self.description, "properties": props}

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "media": [m.value for m in self.media],
                "prompt": self.prompt, "slots": {k: [list(t) for t in v] for k, v in self.slots.items()}}


class ApiPrompt(dict):
    """An API-format prompt (a plain dict for JSON) with what :func:`apply` put in it:
    ``seed`` (the seed used, None when the workflow has no seed slot) and ``applied`` (slot or
    parameter name -> value set)."""

    seed: int | None = None
    applied: dict[str, Any]


# ---------------------------------------------------------------------------- detection


def _literal(node: dict[str, Any], name: str) -> bool:
    inputs = node.get("inputs") or {}
    return name in inputs and not isinstance(inputs[name], list)


def _linked_text_node(prompt: dict[str, Any], node: dict[str, Any], name: str) -> Target | None:
    link = (node.get("inputs") or {}).get(name)
    if not (isinstance(link, list) and len(link) == 2):
        return None
    src_id = str(link[0])
    src = prompt.get(src_id) or {}
    for text_input in ("text", "text_g", "prompt"):
        if _literal(src, text_input) and isinstance(src["inputs"][text_input], str):
            return (src_id, text_input)
    return None


def detect_slots(api_prompt: dict[str, Any]) -> dict[str, list[Target]]:
    """Find the standard slots of a txt2img/img2img graph in API format.

    KSampler(Advanced) gives seed (or noise_seed), steps, cfg, sampler_name, scheduler and
    denoise, and the text node wired to its ``positive``/``negative`` gives prompt and
    negative_prompt; EmptyLatentImage-like and EmptyImage nodes give width, height and
    batch_size; CheckpointLoaderSimple gives checkpoint; the first LoadImage gives
    init_image and LoadImageMask gives mask. Only literal inputs (not links) become slots.
    """
    slots: dict[str, list[Target]] = {}

    def add(slot: str, node_id: str, node: dict[str, Any], name: str) -> None:
        if _literal(node, name):
            slots.setdefault(slot, []).append((node_id, name))

    for node_id, node in api_prompt.items():
        cls = str(node.get("class_type", ""))
        if cls.startswith("KSampler"):
            add("seed", node_id, node, "seed" if _literal(node, "seed") else "noise_seed")
            for slot, name in (("steps", "steps"), ("cfg", "cfg"), ("sampler", "sampler_name"),
                               ("scheduler", "scheduler"), ("denoise", "denoise")):
                add(slot, node_id, node, name)
            for slot, name in (("prompt", "positive"), ("negative_prompt", "negative")):
                target = _linked_text_node(api_prompt, node, name)
                if target and target not in slots.get(slot, []):
                    slots.setdefault(slot, []).append(target)
        elif (cls.startswith("Empty") and "Latent" in cls) or cls == "EmptyImage":
            for name in ("width", "height", "batch_size"):
                add(name, node_id, node, name)
        elif cls in ("CheckpointLoaderSimple", "CheckpointLoader"):
            add("checkpoint", node_id, node, "ckpt_name")
        elif cls == "LoadImage" and "init_image" not in slots:
            add("init_image", node_id, node, "image")
        elif cls == "LoadImageMask" and "mask" not in slots:
            add("mask", node_id, node, "image")
    return slots


# ---------------------------------------------------------------------------- loading


VIDEO_OUTPUT_NODES = ("SaveWEBM", "SaveVideo", "SaveAnimatedWEBP", "SaveAnimatedPNG", "VHS_VideoCombine")


def infer_media(api_prompt: dict[str, Any]) -> list[MediaKind]:
    """What a graph makes, from its output nodes: video when one of them saves a video or an
    animation (:data:`VIDEO_OUTPUT_NODES`), image when one saves images; image by default."""
    classes = {str(n.get("class_type")) for n in api_prompt.values() if isinstance(n, dict)}
    media = []
    if classes & {"SaveImage", "PreviewImage"} or not classes & set(VIDEO_OUTPUT_NODES):
        media.append(MediaKind.image)
    if classes & set(VIDEO_OUTPUT_NODES):
        media.append(MediaKind.video)
    return media


def _template_dir() -> Any:
    return resources.files(__package__).joinpath("workflows")


def list_templates() -> list[str]:
    """Names of the templates shipped under ``workflows/``, sorted."""
    return sorted(p.name[:-5] for p in _template_dir().iterdir() if p.name.endswith(".json"))


def _is_api_prompt(data: dict[str, Any]) -> bool:
    return bool(data) and all(isinstance(v, dict) and "class_type" in v for v in data.values())


def template_from_json(data: dict[str, Any], *, name: str = "inline",
                       object_info: dict[str, Any] | None = None) -> WorkflowTemplate:
    """A template from a parsed object: a template object, a bare API prompt (slots
    detected), or a UI-format workflow (converted with ``object_info``).

    Raises:
        InvalidRequest: the object is none of these, or a UI workflow came without
            ``object_info`` (field ``workflow``).
        ConfigError: a slot points at a node or input the prompt lacks.
    """
    if isinstance(data.get("prompt"), dict):
        slots = data.get("slots")
        parsed = ({k: [(str(t[0]), str(t[1])) for t in v] for k, v in slots.items()} if isinstance(slots, dict)
                  else detect_slots(data["prompt"]))
        media = [MediaKind(m) for m in data["media"]] if data.get("media") else infer_media(data["prompt"])
        return WorkflowTemplate(str(data.get("name") or name), copy.deepcopy(data["prompt"]), parsed,
                                str(data.get("description") or ""), media)
    if is_ui_workflow(data):
        if object_info is None:
            raise InvalidRequest("a UI-format workflow needs the backend's object_info to convert; "
                                 "convert it first (POST /workflows/convert)", field="workflow")
        data = ui_to_api(data, object_info)
    if _is_api_prompt(data):
        return WorkflowTemplate(name, copy.deepcopy(data), detect_slots(data), media=infer_media(data))
    raise InvalidRequest("workflow is neither a template name, a template object, nor an API-format prompt "
                         "(every node needs a class_type)", field="workflow")


def load_template(name_or_json: str | dict[str, Any], *,
                  object_info: dict[str, Any] | None = None) -> WorkflowTemplate:
    """The template a setting or a request names: a shipped template's name, inline JSON
    text, or an already parsed object (see :func:`template_from_json`).

    Raises:
        NotFound: no shipped template of that name (the known names are listed).
        InvalidRequest: inline JSON that does not parse or is not a workflow.
    """
    if isinstance(name_or_json, dict):
        return template_from_json(name_or_json, object_info=object_info)
    text = name_or_json.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidRequest(f"inline workflow is not valid JSON: {exc}", field="workflow") from exc
        return template_from_json(data, object_info=object_info)
    path = _template_dir().joinpath(f"{text}.json")
    if not text.replace("_", "").replace("-", "").isalnum() or not path.is_file():
        raise NotFound(f"no workflow template {text!r}; shipped: {', '.join(list_templates())}", field="workflow")
    return template_from_json(json.loads(path.read_text(encoding="utf-8")), name=text)


# ---------------------------------------------------------------------------- applying


def _set(prompt: dict[str, Any], targets: list[Target], value: Any) -> None:
    for node_id, input_name in targets:
        prompt[node_id]["inputs"][input_name] = value


def _param_targets(template: WorkflowTemplate, name: str, prompt: dict[str, Any]) -> list[Target]:
    if name in template.slots:
        return template.slots[name]
    node_id, dot, input_name = name.partition(".")
    if dot and node_id in prompt and input_name:
        return [(node_id, input_name)]
    known = ", ".join(sorted(template.slots)) or "none"
    raise InvalidRequest(f"workflow {template.name!r} has no parameter {name!r} (parameters: {known}; "
                         "or address an input as '<node_id>.<input_name>')", field=f"params.{name}")


def apply(template: WorkflowTemplate, request: GenerationRequest, *,
          images: dict[str, str] | None = None, seed: int | None = None) -> ApiPrompt:
    """Fill a template's slots from ``request`` and return the API prompt to queue.

    Args:
        images: uploaded file names for the ``init_image`` and ``mask`` slots (as
            ``/upload/image`` returned them, ``subfolder/name``).
        seed: the seed to use when the request has none (default: random below
            :data:`SEED_MAX`); ``request.seed`` None or -1 means random.

    Raises:
        InvalidRequest: ``request.params`` names an unknown parameter (field ``params.<name>``).
    """
    prompt = ApiPrompt(copy.deepcopy(template.prompt))
    prompt.applied = {}
    for slot, attr in _REQUEST_FIELDS.items():
        value = getattr(request, attr)
        if value is not None and template.has(slot):
            _set(prompt, template.slots[slot], value)
            prompt.applied[slot] = value
    if template.has("seed"):
        used = request.seed if request.seed not in (None, -1) else seed
        used = secrets.randbelow(SEED_MAX) if used is None else used
        _set(prompt, template.slots["seed"], used)
        prompt.seed = prompt.applied["seed"] = used
    for slot, name in (images or {}).items():
        if template.has(slot):
            _set(prompt, template.slots[slot], name)
            prompt.applied[slot] = name
    for name, value in request.params.items():
        _set(prompt, _param_targets(template, name, prompt), value)
        prompt.applied[name] = value
    if "seed" in request.params and template.has("seed"):
        prompt.seed = request.params["seed"]
    return prompt
