"""Replicate wire format: model references, prediction inputs, outputs and errors.

Pure functions, no I/O. Sources followed:

* https://replicate.com/docs/reference/http (``models.predictions.create`` POST
  ``/v1/models/{owner}/{name}/predictions`` with ``{"input"}`` for official models;
  ``predictions.create`` POST ``/v1/predictions`` with ``{"version", "input"}``;
  ``predictions.get`` / ``predictions.cancel``; ``models.get`` and ``models.versions.get``
  whose ``openapi_schema.components.schemas.Input`` describes a model's inputs; ``account.get``).
* https://replicate.com/docs/topics/predictions/create-a-prediction (``Prefer: wait=N``, 1..60 s;
  an unfinished prediction comes back ``starting``/``processing``; for file outputs the
  ``output`` may be complete while ``status`` is still ``processing``).
* replicate/replicate-python ``replicate/prediction.py`` (statuses ``starting``, ``processing``,
  ``succeeded``, ``failed``, ``canceled``; progress from tqdm bars in ``logs``) and
  ``replicate/exceptions.py`` (RFC 7807 problem details: ``title``, ``detail``, ``status``);
  the 2024-05-01 changelog (422 ``invalid_fields: [{type, field, description}]``); the
  2025-10-16 changelog (``Cancel-After`` deadline, status ``aborted``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from ...errors import ContentRejected, GenerationFailed, ImageStudioError, InvalidRequest, ProviderError, Unsupported
from ...types import GenerationRequest, MediaKind
from ..cloudkit import data_uri, our_field
from ..common import json_or_none

TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
"""Prediction statuses that never change again (``aborted``: a ``Cancel-After`` deadline
passed before it started)."""

ASPECT_RATIOS = ["1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"]
"""The ``aspect_ratio`` choices of black-forest-labs/flux-schnell and flux-dev."""

_VERSION = re.compile(r"^[0-9a-f]{64}$")
_SAFETY = re.compile(r"(?i)nsfw|safety|unsafe|content polic|flagged|sensitive content|moderation")

# Our request field -> the input names models use for it, most common first. Without a
# schema the first name is sent.
CANDIDATES: dict[str, tuple[str, ...]] = {
    "prompt": ("prompt",),
    "negative_prompt": ("negative_prompt",),
    "n": ("num_outputs", "num_images", "number_of_images"),
    "seed": ("seed",),
    "steps": ("num_inference_steps", "steps"),
    "cfg_scale": ("guidance_scale", "guidance", "cfg", "cfg_scale"),
    "scheduler": ("scheduler",),
    "init_image": ("image", "input_image", "init_image"),
    "mask": ("mask", "mask_image"),
    "denoising_strength": ("prompt_strength", "strength", "denoising_strength"),
}
_MUST_FIT = {"init_image", "mask"}  # a model without a place for these cannot serve the request


@dataclass(frozen=True)
class ModelRef:
    """A model as configured: ``owner/name`` (an official model, run at its latest version),
    ``owner/name:<version id>`` or a bare 64-hex version id."""

    text: str
    owner: str | None
    name: str | None
    version: str | None

    @classmethod
    def parse(cls, text: str, *, field: str) -> "ModelRef":
        """Raises InvalidRequest (``field`` named) for anything else."""
        ref = text.strip()
        if _VERSION.match(ref):
            return cls(ref, None, None, ref)
        base, _, version = ref.partition(":")
        owner, _, name = base.partition("/")
        if not owner or not name or "/" in name or (version and not _VERSION.match(version)):
            raise InvalidRequest(f"{text!r} is not a Replicate model (owner/name, owner/name:<version id> or a "
                                 "64-hex version id)", field=field)
        return cls(ref, owner, name, version or None)

    @property
    def create_path(self) -> str:
        """Path (under ``/v1``) that creates a prediction for this model."""
        return f"/models/{self.owner}/{self.name}/predictions" if self.version is None else "/predictions"

    @property
    def schema_path(self) -> str | None:
        """Path of the document holding this model's input schema; None for a bare version id."""
        if self.owner is None:
            return None
        base = f"/models/{self.owner}/{self.name}"
        return base if self.version is None else f"{base}/versions/{self.version}"


def input_properties(doc: Any, *, versioned: bool) -> dict[str, dict[str, Any]] | None:
    """The ``Input`` properties of a model (``models.get``: its ``latest_version``) or version
    document, with ``allOf: [{$ref}]`` enums resolved; None when the document has no schema."""
    if not isinstance(doc, dict):
        return None
    version = doc if versioned else doc.get("latest_version")
    schemas = (((version or {}).get("openapi_schema") or {}).get("components") or {}).get("schemas") or {}
    props = (schemas.get("Input") or {}).get("properties")
    if not isinstance(props, dict):
        return None
    out: dict[str, dict[str, Any]] = {}
    for name, spec in props.items():
        spec = dict(spec) if isinstance(spec, dict) else {}
        for part in spec.pop("allOf", None) or []:
            target = str((part or {}).get("$ref", "")).rpartition("/")[2]
            spec.update({k: v for k, v in (schemas.get(target) or {}).items() if k in ("enum", "type")})
        out[name] = spec
    return out


def nearest_ratio(width: int, height: int, choices: list[str]) -> str:
    """The ``"W:H"`` in ``choices`` closest to ``width/height`` (log scale); ``"W:H"`` reduced
    when ``choices`` holds no ratio."""
    def value(choice: str) -> float | None:
        a, _, b = choice.partition(":")
        try:
            return float(a) / float(b)
        except (ValueError, ZeroDivisionError):
            return None

    target = math.log(width / height)
    scored = [(abs(math.log(v) - target), c) for c in choices if (v := value(c)) and v > 0]
    if scored:
        return min(scored)[1]
    g = math.gcd(width, height)
    return f"{width // g}:{height // g}"


@dataclass
class BuiltInput:
    """A prediction's ``input`` and, for naming the field at fault in a 422, which of our
    request fields each input name came from (``extra.<name>`` for passed-through ones)."""

    input: dict[str, Any]
    fields: dict[str, str] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)


def _values(request: GenerationRequest) -> dict[str, Any]:
    values: dict[str, Any] = {"prompt": request.prompt, "negative_prompt": request.negative_prompt,
                              "steps": request.steps, "cfg_scale": request.cfg_scale,
                              "scheduler": request.scheduler, "denoising_strength": request.denoising_strength,
                              "seed": request.seed if request.seed is not None and request.seed >= 0 else None}
    if request.media is MediaKind.image or request.n > 1:
        values["n"] = request.n
    if request.init_image is not None:
        values["init_image"] = data_uri(request.init_image, field="init_image")
    if request.mask is not None:
        values["mask"] = data_uri(request.mask, field="mask")
    return {k: v for k, v in values.items() if v is not None}


def _size(request: GenerationRequest, props: dict[str, Any] | None, size_input: str,
          ratios: list[str]) -> dict[str, Any]:
    has = (lambda n: n in props) if props is not None else (lambda n: False)  # noqa: E731
    if (props is None and size_input == "width_height") or (has("width") and has("height")):
        out: dict[str, Any] = {"width": request.width, "height": request.height}
        if has("aspect_ratio") and "custom" in (props or {}).get("aspect_ratio", {}).get("enum", []):
            out["aspect_ratio"] = "custom"
        return out
    if (props is None and size_input == "aspect_ratio") or has("aspect_ratio"):
        enum = (props or {}).get("aspect_ratio", {}).get("enum") or ratios
        return {"aspect_ratio": nearest_ratio(request.width, request.height, list(enum))}
    return {}


def build_input(request: GenerationRequest, props: dict[str, Any] | None, *, size_input: str,
                ratios: list[str], defaults: dict[str, Any], provider: str) -> BuiltInput:
    """The ``input`` of a prediction for ``request``.

    With the model's schema (``props``), each of our fields goes to the first input name the
    model has (:data:`CANDIDATES`), the size to ``width``/``height`` or the nearest
    ``aspect_ratio``; fields the model has no place for are dropped (listed in ``dropped``).
    Without a schema the common names are sent and the size as ``size_input`` says. Images go
    as data URLs. ``defaults`` (the provider's ``default_input``) and then ``request.extra``
    are merged over the result, so either can set or override any input.

    Raises:
        Unsupported: the model has no input for ``init_image``/``mask``, or none for ``n``
            when ``n > 1`` (``provider`` named).
    """
    built = BuiltInput(input={})
    for ours, value in _values(request).items():
        names = CANDIDATES[ours]
        name = names[0] if props is None else next((n for n in names if n in props), None)
        if name is None:
            if ours in _MUST_FIT or (ours == "n" and value > 1):
                raise Unsupported(f"this Replicate model takes no {ours}", provider=provider, field=ours)
            built.dropped.append(ours)
            continue
        built.input[name] = value
        built.fields[name] = ours
    for name, value in _size(request, props, size_input, ratios).items():
        built.input[name] = value
        built.fields[name] = name if name in ("width", "height") else "width"
    built.input.update(defaults)
    built.fields.update({k: f"providers.{provider}.settings.default_input.{k}" for k in defaults})
    built.input.update(request.extra)
    built.fields.update({k: f"extra.{k}" for k in request.extra})
    return built


def output_urls(output: Any) -> list[str]:
    """The file URLs (http(s) or ``data:``) in a prediction's ``output``: a string, a list, or
    an object of them, in order."""
    if isinstance(output, str):
        return [output] if output.startswith(("http://", "https://", "data:")) else []
    if isinstance(output, list):
        return [u for item in output for u in output_urls(item)]
    if isinstance(output, dict):
        return [u for item in output.values() for u in output_urls(item)]
    return []


def failure_error(prediction: dict[str, Any], *, provider: str, backend: str | None) -> ProviderError:
    """The error of a ``failed`` prediction: ContentRejected when its ``error`` names a safety
    filter (NSFW ...), else GenerationFailed with Replicate's text."""
    text = str(prediction.get("error") or "the prediction failed without an error message")
    msg = f"Replicate prediction {prediction.get('id')} failed: {text}"
    if _SAFETY.search(text):
        return ContentRejected(msg, provider=provider, backend=backend)
    return GenerationFailed(msg, provider=provider, backend=backend)


def answer_error(response: httpx.Response, built: BuiltInput | None, *, what: str, provider: str,
                 backend: str | None) -> ImageStudioError | None:
    """The error a 422 answer means (problem details with ``invalid_fields``): InvalidRequest
    naming our field (``input.num_outputs`` -> ``n``), or ContentRejected when the detail names
    a safety filter. None for other answers (mapped by status by the caller)."""
    if response.status_code != 422:
        return None
    body = json_or_none(response)
    body = body if isinstance(body, dict) else {}
    detail = str(body.get("detail") or body.get("title") or "invalid input").strip()
    if _SAFETY.search(detail):
        return ContentRejected(f"{what}: {detail}", provider=provider, backend=backend, status=422)
    for item in body.get("invalid_fields") or []:
        name = str((item or {}).get("field") or "")
        if name.startswith("input."):
            key = name[len("input."):].split(".")[0]
            ours = our_field(key, built.fields if built else {}, {})
            desc = item.get("description") or detail
            return InvalidRequest(f"{what}: Replicate rejected input {key!r}: {desc}", field=ours)
    return InvalidRequest(f"{what}: {detail}")
