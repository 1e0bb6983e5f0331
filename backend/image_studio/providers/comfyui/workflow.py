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
"prompt": {API prompt}, "slots": {name: [[node_id, input], ...]}, "params": {name: {...}}}``.
``params`` is optional per-parameter metadata (:class:`ParamMeta`: title, description, default,
minimum, maximum, step, enum) that :meth:`WorkflowTemplate.parameters_schema` publishes and
:func:`apply` enforces on ``request.params``. Saved workflows keep it inside their stored slots
under the reserved key :data:`PARAMS_KEY`, which :func:`template_from_json` also accepts. Inline workflows are
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

__all__ = ["ApiPrompt", "ParamMeta", "PARAMS_KEY", "WorkflowTemplate", "apply", "check_params", "detect_slots",
           "is_ui_workflow", "list_templates", "load_template", "ui_to_api", "SEED_MAX"]

STANDARD_SLOTS = ("prompt", "negative_prompt", "seed", "steps", "cfg", "sampler", "scheduler", "width",
                  "height", "batch_size", "checkpoint", "init_image", "mask", "denoise")
SEED_MAX = 2**53 - 1
"""Random seeds are drawn below this (exact in JSON numbers everywhere)."""

Target = tuple[str, str]

PARAMS_KEY = "__params__"
"""Reserved key of a stored ``slots`` object that holds the parameters' metadata."""

_META_KEYS = ("type", "title", "description", "default", "minimum", "maximum", "step", "enum")
_JSON_TYPES = ("integer", "number", "string", "boolean")


@dataclass
class ParamMeta:
    """What the editor said about an exposed parameter: ``title`` (a label), ``description``,
    ``default`` (replaces the graph's value in the schema; the graph keeps its own), ``minimum``
    / ``maximum`` / ``step`` for numbers (in the input's own unit: steps, pixels, a seed ...) and
    ``enum`` (the allowed values), ``type`` (the JSON Schema type, ``integer``/``number``/
    ``string``/``boolean``, which the editor knows from ``/object_info``; else the value's own).
    Every field is optional."""

    type: str | None = None
    title: str | None = None
    description: str | None = None
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    enum: list[Any] | None = None

    @classmethod
    def from_json(cls, name: str, data: Any) -> "ParamMeta":
        """From ``{"title", "minimum", ...}``.

        Raises:
            ConfigError: not an object, an unknown key, a non-number bound or step, minimum
                above maximum, a step not above 0, or an empty ``enum`` (field
                ``workflow.params.<name>``).
        """
        where = f"workflow.params.{name}"
        if not isinstance(data, dict):
            raise ConfigError(f"parameter {name!r}: metadata must be an object", field=where)
        unknown = sorted(set(data) - set(_META_KEYS))
        if unknown:
            raise ConfigError(f"parameter {name!r}: unknown metadata {', '.join(unknown)} "
                              f"(known: {', '.join(_META_KEYS)})", field=where)
        for key in ("minimum", "maximum", "step"):
            value = data.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ConfigError(f"parameter {name!r}: {key} must be a number", field=f"{where}.{key}")
        meta = cls(**{k: data.get(k) for k in _META_KEYS})
        if meta.type is not None and meta.type not in _JSON_TYPES:
            raise ConfigError(f"parameter {name!r}: type must be one of {', '.join(_JSON_TYPES)}",
                              field=f"{where}.type")
        if meta.minimum is not None and meta.maximum is not None and meta.minimum > meta.maximum:
            raise ConfigError(f"parameter {name!r}: minimum {meta.minimum} is above maximum {meta.maximum}",
                              field=f"{where}.minimum")
        if meta.step is not None and meta.step <= 0:
            raise ConfigError(f"parameter {name!r}: step must be above 0", field=f"{where}.step")
        if meta.enum is not None and (not isinstance(meta.enum, list) or not meta.enum):
            raise ConfigError(f"parameter {name!r}: enum must be a non-empty list", field=f"{where}.enum")
        return meta

    def to_json(self) -> dict[str, Any]:
        """The fields that are set."""
        return {k: getattr(self, k) for k in _META_KEYS if getattr(self, k) is not None}

    def check(self, name: str, value: Any, field_name: str | None = None) -> None:
        """Refuse a value outside ``minimum``..``maximum`` or not in ``enum``; None passes.

        Raises:
            InvalidRequest: field ``field_name`` (default ``params.<name>``).
        """
        if value is None:
            return
        field_name = field_name or f"params.{name}"
        if self.enum is not None and value not in self.enum:
            raise InvalidRequest(f"{name} must be one of {', '.join(map(str, self.enum))}, not {value!r}",
                                 field=field_name)
        if self.minimum is None and self.maximum is None:
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequest(f"{name} must be a number, not {value!r}", field=field_name)
        if self.minimum is not None and value < self.minimum:
            raise InvalidRequest(f"{name} must be at least {self.minimum:g}, not {value:g}", field=field_name)
        if self.maximum is not None and value > self.maximum:
            raise InvalidRequest(f"{name} must be at most {self.maximum:g}, not {value:g}", field=field_name)

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
    params: dict[str, ParamMeta] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.params:
            if name not in self.slots:
                raise ConfigError(f"workflow {self.name!r}: metadata for parameter {name!r}, which is not a slot",
                                  field=f"workflow.params.{name}")
        if PARAMS_KEY in self.slots:
            raise ConfigError(f"{PARAMS_KEY!r} is reserved, not a slot name", field=f"workflow.slots.{PARAMS_KEY}")
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
        """JSON Schema of the exposed parameters (every slot but the images): ``{"type":
        "object", "title", "description", "properties": {name: {"type", "title", "default",
        "minimum", "maximum", "multipleOf", "enum", "description"}}}``. The type is the
        metadata's, else that of its default, else of the graph's current value (also the default
        when the metadata has none); ``multipleOf`` is the metadata's ``step``."""
        props: dict[str, Any] = {}
        for slot in self.slots:
            if slot in ("init_image", "mask"):
                continue
            meta = self.params.get(slot) or ParamMeta()
            default = meta.default if meta.default is not None else self.value(slot)
            kind = meta.type or {bool: "boolean", int: "integer", float: "number", str: "string"}.get(type(default))
            if kind is None and meta.enum:
                kind = {bool: "boolean", int: "integer", float: "number", str: "string"}.get(type(meta.enum[0]))
            prop: dict[str, Any] = {"default": default, **({"type": kind} if kind else {})}
            for key, out in (("title", "title"), ("description", "description"), ("minimum", "minimum"),
                             ("maximum", "maximum"), ("step", "multipleOf"), ("enum", "enum")):
                value = getattr(meta, key)
                if value is not None:
                    prop[out] = value
            props[slot] = prop
        return {"type": "object", "title": self.name, "description": self.description, "properties": props}

    def params_json(self) -> dict[str, dict[str, Any]]:
        """The parameters' metadata as JSON (``{name: {"title", "minimum", ...}}``)."""
        return {k: v.to_json() for k, v in self.params.items()}

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "media": [m.value for m in self.media],
                "prompt": self.prompt, "slots": {k: [list(t) for t in v] for k, v in self.slots.items()},
                **({"params": self.params_json()} if self.params else {})}


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
        params_data: Any = {}
        if isinstance(slots, dict) and PARAMS_KEY in slots:
            slots = dict(slots)
            params_data = slots.pop(PARAMS_KEY) or {}
        if data.get("params") is not None:
            params_data = data["params"]
        if not isinstance(params_data, dict):
            raise ConfigError("workflow params must be an object {name: {title, minimum, ...}}",
                              field="workflow.params")
        parsed = ({k: [(str(t[0]), str(t[1])) for t in v] for k, v in slots.items()} if isinstance(slots, dict)
                  else detect_slots(data["prompt"]))
        params = {str(k): ParamMeta.from_json(str(k), v) for k, v in params_data.items()}
        media = [MediaKind(m) for m in data["media"]] if data.get("media") else infer_media(data["prompt"])
        return WorkflowTemplate(str(data.get("name") or name), copy.deepcopy(data["prompt"]), parsed,
                                str(data.get("description") or ""), media, params)
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


def check_params(template: WorkflowTemplate, request: GenerationRequest) -> None:
    """Check a request's ``params`` and the standard fields it sets that fill a slot (``steps``,
    ``cfg_scale``, ...; defaults are not checked) against the template's parameter metadata.

    Raises:
        InvalidRequest: a value outside a parameter's minimum/maximum or not in its enum
            (field ``params.<name>``, or the request field's name for a standard field).
    """
    for slot, attr in _REQUEST_FIELDS.items():
        meta = template.params.get(slot)
        if meta is not None and slot not in request.params and attr in request.model_fields_set:
            meta.check(slot, getattr(request, attr), attr)
    for name, value in request.params.items():
        meta = template.params.get(name)
        if meta is not None:
            meta.check(name, value)


def apply(template: WorkflowTemplate, request: GenerationRequest, *,
          images: dict[str, str] | None = None, seed: int | None = None) -> ApiPrompt:
    """Fill a template's slots from ``request`` and return the API prompt to queue.

    Args:
        images: uploaded file names for the ``init_image`` and ``mask`` slots (as
            ``/upload/image`` returned them, ``subfolder/name``).
        seed: the seed to use when the request has none (default: random below
            :data:`SEED_MAX`); ``request.seed`` None or -1 means random.

    Raises:
        InvalidRequest: ``request.params`` names an unknown parameter, or a value outside its
            metadata's minimum/maximum or not in its enum (field ``params.<name>``).
    """
    check_params(template, request)
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
