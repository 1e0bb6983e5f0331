"""fal wire format: queue URLs, model inputs, results and error answers.

Pure functions, no I/O. Sources followed:

* https://docs.fal.ai/model-endpoints/queue: POST ``https://queue.fal.run/{model_id}`` with the
  input JSON answers ``{request_id, status_url, response_url, cancel_url}``; GET
  ``.../requests/{request_id}/status?logs=1`` answers ``{"status": "IN_QUEUE", "queue_position"}``,
  ``{"status": "IN_PROGRESS", "logs": [{message, level, timestamp}]}`` or
  ``{"status": "COMPLETED", "logs", "metrics", "error"?, "error_type"?}`` (202 until complete,
  then 200); GET ``.../requests/{request_id}`` gives the result; PUT ``.../cancel`` cancels.
  The submit URL takes the full model id (``fal-ai/flux/dev/image-to-image``); the status,
  result and cancel URLs use only the owner and app (``fal-ai/flux``): "the subpath should be
  used when making the request, but not when getting request status or results".
* fal-ai/fal ``projects/fal_client/src/fal_client/client.py`` (``AppId.from_endpoint_id``: the
  ``workflows``/``comfy`` namespaces keep a third part; ``AsyncRequestHandle.from_request_id``
  builds ``{queue}/{owner}/{alias}/requests/{id}`` exactly so) and ``auth.py``
  (``Authorization: Key <FAL_KEY>``).
* https://docs.fal.ai/errors (model errors: ``{"detail": [{loc, msg, type, url, ctx}]}``, type
  ``content_policy_violation`` for refused content) and
  https://fal.ai/docs/documentation/model-apis/request-errors (request errors:
  ``{"detail": "...", "error_type": "request_timeout" | "runner_disconnected" | ...}``).
* The FLUX endpoints' schemas (fal.ai/models/fal-ai/flux/schnell/api): ``prompt``,
  ``image_size`` (an enum name or ``{width, height}``), ``num_images``, ``seed``,
  ``num_inference_steps``, ``guidance_scale``, ``enable_safety_checker``, ``image_url`` and
  ``strength`` (image-to-image), ``mask_url`` (inpainting); results ``{images: [{url, width,
  height, content_type}], seed, has_nsfw_concepts: [bool], timings}``; video endpoints answer
  ``{video: {url, content_type}}``.
"""

from __future__ import annotations

from typing import Any

import httpx

from ...errors import (ContentRejected, GenerationFailed, ImageStudioError, InvalidRequest, ProviderError,
                       ProviderTimeout, ProviderUnavailable)
from ...types import GenerationRequest, MediaKind
from ..cloudkit import data_uri, our_field
from ..common import json_or_none

APP_NAMESPACES = ("workflows", "comfy")
"""Model id prefixes whose app id has three parts (``workflows/<owner>/<app>``)."""

IMAGE_SIZES = ["square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9"]
"""The ``image_size`` enum names the FLUX endpoints accept (``{width, height}`` works too)."""

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELED", "CANCELLED", "ERROR"})

# Request error types (request-errors page) -> our error class.
_REQUEST_ERRORS: dict[str, type[ProviderError]] = {
    "request_timeout": ProviderTimeout, "startup_timeout": ProviderTimeout,
    "runner_scheduling_failure": ProviderUnavailable, "runner_connection_timeout": ProviderUnavailable,
    "runner_disconnected": ProviderUnavailable, "runner_connection_refused": ProviderUnavailable,
    "runner_connection_error": ProviderUnavailable, "runner_incomplete_response": ProviderUnavailable,
    "internal_error": ProviderUnavailable, "runner_server_error": GenerationFailed,
    "client_cancelled": GenerationFailed, "client_disconnected": GenerationFailed,
}

# fal input name -> our request field, for naming the field at fault.
_OURS = {"prompt": "prompt", "negative_prompt": "negative_prompt", "image_size": "width", "num_images": "n",
         "seed": "seed", "num_inference_steps": "steps", "guidance_scale": "cfg_scale", "image_url": "init_image",
         "mask_url": "mask", "strength": "denoising_strength"}


def app_id(model: str, *, field: str) -> str:
    """The owner/app part of a model id, without the endpoint's sub-path
    (``fal-ai/flux/dev/image-to-image`` -> ``fal-ai/flux``; ``workflows/me/wf/x`` -> ``workflows/me/wf``).

    Raises:
        InvalidRequest: ``model`` is not ``owner/app[/path]`` (``field`` named).
    """
    parts = [p for p in model.strip().strip("/").split("/") if p]
    keep = 3 if parts and parts[0] in APP_NAMESPACES else 2
    if len(parts) < keep:
        raise InvalidRequest(f"{model!r} is not a fal model id (owner/app[/path], e.g. fal-ai/flux/schnell)",
                             field=field)
    return "/".join(parts[:keep])


def request_urls(base: str, model: str, request_id: str, answer: dict[str, Any] | None = None, *,
                 field: str = "model") -> dict[str, str]:
    """``{"status", "response", "cancel"}`` URLs of a queued request: the submit answer's
    ``status_url``/``response_url``/``cancel_url`` when they point at ``base`` (as fal's docs
    ask), else built the documented way (``{base}/{owner}/{app}/requests/{id}``), which is
    what a resumed job has to do."""
    root = f"{base}/{app_id(model, field=field)}/requests/{request_id}"
    urls = {"status": f"{root}/status", "response": root, "cancel": f"{root}/cancel"}
    for key in urls:
        given = (answer or {}).get(f"{key}_url")
        if isinstance(given, str) and given.startswith(base + "/"):
            urls[key] = given
    return urls


def build_input(request: GenerationRequest, *, safety_checker: bool, defaults: dict[str, Any],
                provider: str) -> tuple[dict[str, Any], dict[str, str]]:
    """``(input JSON, {fal name: our field})`` for ``request``.

    Images go as data URLs (``image_url``, ``mask_url``; fal accepts them wherever it takes a
    URL). The size is ``image_size: {width, height}`` in pixels (images only). ``defaults``
    (the provider's ``default_input``) and then ``request.extra`` are merged last, so either
    can set any input (``image_size: "landscape_16_9"``, ``output_format``, ``acceleration``...).
    """
    body: dict[str, Any] = {"prompt": request.prompt}
    if request.negative_prompt:
        body["negative_prompt"] = request.negative_prompt
    if request.media is MediaKind.image:
        body.update(image_size={"width": request.width, "height": request.height}, num_images=request.n,
                    enable_safety_checker=safety_checker)
    if request.seed is not None and request.seed >= 0:
        body["seed"] = request.seed
    for ours, theirs in (("steps", "num_inference_steps"), ("cfg_scale", "guidance_scale"),
                         ("denoising_strength", "strength")):
        if getattr(request, ours) is not None:
            body[theirs] = getattr(request, ours)
    if request.init_image is not None:
        body["image_url"] = data_uri(request.init_image, field="init_image")
    if request.mask is not None:
        body["mask_url"] = data_uri(request.mask, field="mask")
    fields = dict(_OURS)
    body.update(defaults)
    fields.update({k: f"providers.{provider}.settings.default_input.{k}" for k in defaults})
    body.update(request.extra)
    fields.update({k: f"extra.{k}" for k in request.extra})
    return body, fields


def request_error(detail: str, error_type: str | None, *, what: str, provider: str, backend: str | None,
                  status: int | None = None) -> ImageStudioError | None:
    """The error a fal request error means (``error_type`` from the body or the
    ``X-Fal-Error-Type`` header); None for an unknown type."""
    cls = _REQUEST_ERRORS.get(error_type or "")
    if cls is None:
        return InvalidRequest(f"{what}: {detail}") if error_type == "bad_request" else None
    return cls(f"{what}: {detail} ({error_type})", provider=provider, backend=backend, status=status)


def answer_error(response: httpx.Response, fields: dict[str, str], *, what: str, provider: str,
                 backend: str | None) -> ImageStudioError | None:
    """The error a fal error answer means, or None (a 2xx, or no fal shape: the caller maps
    the bare status). ``detail: [{loc, msg, type}]`` -> ContentRejected for
    ``content_policy_violation``, else InvalidRequest naming our field (``loc: ["body",
    "num_images"]`` -> ``n``); ``detail: "...", error_type`` -> :func:`request_error`."""
    if response.is_success:
        return None
    body = json_or_none(response)
    detail = body.get("detail") if isinstance(body, dict) else None
    kw: dict[str, Any] = {"provider": provider, "backend": backend, "status": response.status_code}
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        item = detail[0]
        msg = f"{what}: {item.get('msg') or item.get('type') or 'invalid input'}"
        if item.get("type") == "content_policy_violation":
            return ContentRejected(msg, **kw)
        loc = [str(p) for p in item.get("loc") or [] if p != "body"]
        field = our_field(loc[0], fields, {}) if loc else None
        return InvalidRequest(msg, field=field)
    if isinstance(detail, str):
        error_type = (body or {}).get("error_type") or response.headers.get("x-fal-error-type")
        return request_error(detail, error_type, what=what, **kw)
    return None


def outputs(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The output files of a result, in order: ``images: [{url, content_type, width,
    height}]``, ``image: {...}``, ``video: {...}`` or ``videos: [...]``."""
    items: list[Any] = []
    for key in ("images", "image", "videos", "video"):
        value = result.get(key)
        items.extend(value if isinstance(value, list) else [value] if value is not None else [])
    return [i for i in items if isinstance(i, dict) and isinstance(i.get("url"), str)]


def nsfw_flags(result: dict[str, Any], count: int) -> list[bool]:
    """``has_nsfw_concepts`` padded to ``count`` entries (False where fal gave none)."""
    flags = result.get("has_nsfw_concepts")
    flags = [bool(f) for f in flags] if isinstance(flags, list) else []
    return (flags + [False] * count)[:count]
