"""The Stability AI REST v2beta wire format, as pure functions: which endpoint serves a request,
the multipart form it sends, and what an answer means.

Followed (the platform's reference is https://platform.stability.ai/docs/api-reference, the
OpenAPI document behind it https://api.stability.ai/v2beta/openapi.json):

* Generate: ``POST /v2beta/stable-image/generate/{ultra,core,sd3}``, multipart/form-data with
  ``prompt``, ``negative_prompt``, ``aspect_ratio`` (one of :data:`ASPECT_RATIOS`), ``seed``
  (0..4294967294, 0 = random), ``output_format`` (png, jpeg, webp), ``style_preset``; sd3 adds
  ``model`` (sd3.5-large ...), ``mode`` (text-to-image | image-to-image), ``image``,
  ``strength`` and ``cfg_scale``; ultra takes ``image`` + ``strength`` as well.
* Edit: ``POST /v2beta/stable-image/edit/{inpaint,outpaint,search-and-replace,erase}`` with
  ``image`` (+ ``mask``, ``grow_mask``, ``left/right/up/down``, ``search_prompt`` ...).
* Upscale: ``POST /v2beta/stable-image/upscale/{fast,conservative}`` (the image at once) and
  ``/upscale/creative`` (answers ``{"id"}``; poll ``GET /v2beta/results/{id}``: 202 while in
  progress, 200 with the image, 404 once expired after 24 h).
* ``Accept: image/*`` gets raw bytes with the headers ``finish-reason`` (SUCCESS,
  CONTENT_FILTERED, ERROR) and ``seed``; ``application/json`` gets ``{image|result (base64),
  finish_reason, seed}``; both are read.
* Errors: ``{"id", "name", "errors": ["field: message", ...]}``; 403 ``content_moderation``;
  429 after 150 requests in 10 s, with a 60 s time-out (the "Rate limit" section of the
  reference).

Cross-checked with Comfy-Org's API nodes (comfyanonymous/ComfyUI
``comfy_api_nodes/apis/stability_api.py`` and ``nodes_stability.py``), which drive the same
endpoints through Comfy's proxy.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from ...errors import (AuthenticationFailed, ContentRejected, GenerationFailed, ImageStudioError, InvalidRequest,
                       ProviderError, RateLimited)
from ...types import GenerationMode, GenerationRequest
from ..base import parse_retry_after
from ..cloudkit import decode_b64_image, input_image, mime_of, our_field

ASPECT_RATIOS: tuple[str, ...] = ("21:9", "16:9", "3:2", "5:4", "1:1", "4:5", "2:3", "9:16", "9:21")
RATIO_PIXELS: dict[str, tuple[int, int]] = {
    "21:9": (1536, 640), "16:9": (1344, 768), "3:2": (1216, 832), "5:4": (1088, 896), "1:1": (1024, 1024),
    "4:5": (896, 1088), "2:3": (832, 1216), "9:16": (768, 1344), "9:21": (640, 1536)}
"""The pixels (about one megapixel) each ``aspect_ratio`` gives on ``generate/{ultra,core,sd3}``."""
STYLE_PRESETS: tuple[str, ...] = (
    "3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance", "fantasy-art",
    "isometric", "line-art", "low-poly", "modeling-compound", "neon-punk", "origami", "photographic",
    "pixel-art", "tile-texture")
OUTPUT_FORMATS: tuple[str, ...] = ("png", "jpeg", "webp")
SERVICES: tuple[str, ...] = ("ultra", "core", "sd3")
SD3_MODELS: tuple[str, ...] = ("sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash")
EDITS: tuple[str, ...] = ("inpaint", "outpaint", "search-and-replace", "erase")
UPSCALES: tuple[str, ...] = ("fast", "conservative", "creative")
MAX_SEED = 4_294_967_294
RATE_LIMIT_TIMEOUT = 60.0
"""Seconds Stability times a client out after a 429 when it sends no Retry-After."""

CONTROL_KEYS = frozenset({"edit", "upscale"})
"""``request.extra`` keys that choose the endpoint and are not sent as form fields."""

_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_OUR_FIELD = {"prompt": "prompt", "negative_prompt": "negative_prompt", "seed": "seed", "image": "init_image",
              "mask": "mask", "strength": "denoising_strength", "model": "model", "cfg_scale": "cfg_scale",
              "aspect_ratio": "width"}


@dataclass
class Call:
    """One HTTP call to make: ``path`` under the base URL, text ``fields``, binary ``files``
    (``name -> (filename, bytes, mime)``), ``asynchronous`` when the answer is a generation
    id to poll, ``label`` (``generate/core``, ``edit/inpaint`` ...) and ``model`` to report."""

    path: str
    label: str
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes, str]] = field(default_factory=dict)
    asynchronous: bool = False
    model: str | None = None

    def multipart(self) -> list[tuple[str, Any]]:
        """httpx ``files=`` list: every text field as a part without a filename, then the files
        (so a text-only request is still multipart/form-data, as Stability requires)."""
        parts: list[tuple[str, Any]] = [(k, (None, v)) for k, v in self.fields.items()]
        parts.extend((k, v) for k, v in self.files.items())
        return parts


@dataclass
class Answer:
    """A finished image: ``data`` bytes of ``mime`` type, Stability's ``finish_reason`` and
    ``seed`` (None when not reported)."""

    data: bytes
    mime: str | None
    finish_reason: str | None
    seed: int | None


def aspect_ratio(width: int, height: int) -> str:
    """The supported ratio nearest to ``width``:``height`` (pixels), compared on a log scale."""
    target = math.log(width / height)

    def distance(ratio: str) -> float:
        w, h = ratio.split(":")
        return abs(math.log(int(w) / int(h)) - target)

    return min(ASPECT_RATIOS, key=distance)


def _file(name: str, data: bytes, field: str) -> tuple[str, bytes, str]:
    """A multipart file part ``(filename, bytes, mime)``: PNG, JPEG or WebP as given, any other
    image re-encoded as PNG. Raises InvalidRequest (``field``) for bytes that are no image."""
    payload, mime, ext = input_image(data, field=field)
    return f"{name}.{ext}", payload, mime


def seed_field(request: GenerationRequest, index: int) -> str:
    """The ``seed`` form value for output ``index``: the request's seed plus ``index`` (wrapping
    within 0..4294967294), or ``0`` (Stability picks one) when none is given.

    Raises:
        InvalidRequest: the seed is above 4294967294 (field ``seed``).
    """
    if request.seed is None or request.seed < 0:
        return "0"
    if request.seed > MAX_SEED:
        raise InvalidRequest(f"Stability takes seeds 0..{MAX_SEED}, got {request.seed}", field="seed")
    return str((request.seed + index) % (MAX_SEED + 1))


def choose_service(request: GenerationRequest, default: str, sd3_model: str) -> tuple[str, str | None]:
    """``(service, sd3 model or None)`` for a generation: ``request.model`` names a service
    (``ultra``, ``core``, ``stable-image-ultra`` ...) or an sd3 model (``sd3.5-large`` ...);
    else the settings' ``default`` service.

    Raises:
        InvalidRequest: an unknown model name (field ``model``).
    """
    name = (request.model or "").strip().lower()
    if not name:
        return default, sd3_model if default == "sd3" else None
    name = name.removeprefix("stable-image-")
    if name in ("ultra", "core"):
        return name, None
    if name == "sd3":
        return "sd3", sd3_model
    if name.startswith("sd3"):
        return "sd3", name
    raise InvalidRequest(f"unknown Stability model {request.model!r}; use ultra, core or an sd3 model "
                         f"({', '.join(SD3_MODELS)})", field="model")


def _prompt_fields(request: GenerationRequest, seed: str, output_format: str) -> dict[str, str]:
    fields = {"prompt": request.prompt}
    if request.negative_prompt:
        fields["negative_prompt"] = request.negative_prompt
    fields.update(seed=seed, output_format=output_format)
    return fields


def _extra_fields(request: GenerationRequest) -> dict[str, str]:
    """``request.extra`` as form values, minus the control keys; booleans as ``true``/``false``."""
    out: dict[str, str] = {}
    for key, value in request.extra.items():
        if key in CONTROL_KEYS or value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def generate_call(request: GenerationRequest, *, service: str, sd3_model: str | None, output_format: str,
                  style_preset: str | None, seed: str) -> Call:
    """The call for txt2img or img2img on ``generate/<service>``.

    img2img goes to sd3 (``mode=image-to-image``) or ultra (``image`` + ``strength``); core has
    no image input, so an img2img asked of core runs on sd3 with the settings' sd3 model.
    ``denoising_strength`` becomes ``strength`` (Stability's default 0.7 when unset);
    ``cfg_scale`` is sent to sd3 only; ``style_preset`` (settings) to core only, while
    ``request.extra`` may set it anywhere.
    """
    fields = _prompt_fields(request, seed, output_format)
    files: dict[str, tuple[str, bytes, str]] = {}
    img2img = request.mode is GenerationMode.img2img
    if img2img:
        files["image"] = _file("image", request.init_image or b"", "init_image")
        if request.denoising_strength is not None:
            fields["strength"] = f"{request.denoising_strength:g}"
    else:
        fields["aspect_ratio"] = aspect_ratio(request.width, request.height)
    if service == "sd3":
        fields["model"] = sd3_model or SD3_MODELS[0]
        fields["mode"] = "image-to-image" if img2img else "text-to-image"
        if img2img:
            fields.setdefault("strength", "0.7")
        if request.cfg_scale is not None:
            fields["cfg_scale"] = f"{request.cfg_scale:g}"
    if img2img and service == "ultra":
        fields.setdefault("strength", "0.7")
    if service == "core" and style_preset:
        fields["style_preset"] = style_preset
    fields.update(_extra_fields(request))
    model = fields.get("model") if service == "sd3" else service
    return Call(path=f"/v2beta/stable-image/generate/{service}", label=f"generate/{service}", fields=fields,
                files=files, model=model)


def edit_call(request: GenerationRequest, edit: str, *, output_format: str, seed: str) -> Call:
    """The call for ``edit/<edit>`` (inpaint, outpaint, search-and-replace, erase).

    ``mask`` goes to inpaint and erase (else the init image's alpha channel is the mask);
    outpaint's ``left``/``right``/``up``/``down`` (pixels), ``grow_mask``, ``creativity`` and
    ``search_prompt`` come from ``request.extra``. Erase takes no prompt.

    Raises:
        InvalidRequest: no init image (``init_image``), an unknown edit (``extra.edit``),
            search-and-replace without ``extra.search_prompt``, outpaint with no direction.
    """
    if edit not in EDITS:
        raise InvalidRequest(f"unknown Stability edit {edit!r}; one of {', '.join(EDITS)}", field="extra.edit")
    if request.init_image is None:
        raise InvalidRequest(f"the {edit} edit needs init_image", field="init_image")
    if edit == "search-and-replace" and not request.extra.get("search_prompt"):
        raise InvalidRequest("search-and-replace needs extra.search_prompt (what to replace)",
                             field="extra.search_prompt")
    if edit == "outpaint" and not any(request.extra.get(k) for k in ("left", "right", "up", "down")):
        raise InvalidRequest("outpaint needs extra.left, right, up or down (pixels to add)", field="extra.left")
    fields = ({"seed": seed, "output_format": output_format} if edit == "erase"
              else _prompt_fields(request, seed, output_format))
    files = {"image": _file("image", request.init_image, "init_image")}
    if request.mask is not None and edit in ("inpaint", "erase"):
        files["mask"] = _file("mask", request.mask, "mask")
    fields.update(_extra_fields(request))
    return Call(path=f"/v2beta/stable-image/edit/{edit}", label=f"edit/{edit}", fields=fields, files=files,
                model=edit)


def upscale_call(request: GenerationRequest, upscale: str, *, output_format: str, seed: str) -> Call:
    """The call for ``upscale/<upscale>``: fast (image only, 4x), conservative and creative
    (prompt, negative prompt, seed, ``creativity`` from extra). Creative is asynchronous.

    Raises:
        InvalidRequest: no init image, or an unknown upscaler (``extra.upscale``).
    """
    if upscale not in UPSCALES:
        raise InvalidRequest(f"unknown Stability upscaler {upscale!r}; one of {', '.join(UPSCALES)}",
                             field="extra.upscale")
    if request.init_image is None:
        raise InvalidRequest("upscaling needs init_image", field="init_image")
    fields = ({"output_format": output_format} if upscale == "fast"
              else _prompt_fields(request, seed, output_format))
    fields.update(_extra_fields(request))
    return Call(path=f"/v2beta/stable-image/upscale/{upscale}", label=f"upscale/{upscale}", fields=fields,
                files={"image": _file("image", request.init_image, "init_image")}, asynchronous=upscale == "creative",
                model=f"upscale-{upscale}")


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_image(response: httpx.Response, output_format: str, **kw: Any) -> Answer:
    """The image of a 200 answer: raw bytes (``Accept: image/*``) with the ``finish-reason``
    and ``seed`` headers, or JSON ``{image|result: base64, finish_reason, seed}``. ``kw``
    (provider, backend) go into the error.

    Raises:
        GenerationFailed: a JSON answer without a decodable image.
    """
    ctype = (response.headers.get("content-type") or "").split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            body = response.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        b64 = body.get("image") or body.get("result")
        data = (decode_b64_image(b64) if isinstance(b64, str) else None) or b""
        if not data and body.get("finish_reason") in (None, "SUCCESS"):
            raise GenerationFailed(f"answer without an image: {str(body)[:300]}", **kw)
        return Answer(data, mime_of(data, _MIME.get(output_format)), body.get("finish_reason"),
                      _int(body.get("seed")))
    return Answer(response.content, ctype or _MIME.get(output_format),
                  response.headers.get("finish-reason"), _int(response.headers.get("seed")))


def check_finish(answer: Answer, **kw: Any) -> None:
    """Raise for a finished answer that is not a success.

    Raises:
        ContentRejected: ``CONTENT_FILTERED`` (the output was blocked by moderation).
        GenerationFailed: ``ERROR`` or any other reason that is not ``SUCCESS``.
    """
    reason = (answer.finish_reason or "SUCCESS").upper()
    if reason == "SUCCESS":
        return
    if reason == "CONTENT_FILTERED":
        raise ContentRejected("Stability's content filter blocked the output (finish-reason CONTENT_FILTERED)",
                              **kw)
    raise GenerationFailed(f"Stability finished with {reason}", **kw)


def field_at_fault(errors: list[Any], request: GenerationRequest | None) -> tuple[str | None, str]:
    """Our field name and the message of the first ``"field: message"`` error."""
    text = "; ".join(str(e) for e in errors) or "invalid request"
    match = re.match(r"\s*([a-z_]+)\s*:", str(errors[0]) if errors else "")
    if not match:
        return None, text
    name = match.group(1)
    if request is not None and name in request.extra:
        return f"extra.{name}", text
    return our_field(name, _OUR_FIELD, {}), text


def answer_error(response: httpx.Response, *, what: str, request: GenerationRequest | None = None,
                 provider: str, backend: str | None) -> ImageStudioError | None:
    """The error a non-2xx Stability answer means, or None to leave it to
    :func:`base.raise_for_status` (5xx -> ProviderUnavailable ...).

    400/413/422 -> InvalidRequest naming our field; 401 -> AuthenticationFailed; 402 ->
    ProviderError (not retryable: the account is out of credits); 403 ``content_moderation``
    -> ContentRejected, other 403 -> AuthenticationFailed; 404 on a result -> GenerationFailed
    (expired or unknown id); 429 -> RateLimited (Retry-After, else Stability's 60 s time-out).
    """
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    name = str(body.get("name") or "")
    errors = body.get("errors") if isinstance(body.get("errors"), list) else []
    detail = "; ".join(str(e) for e in errors) or str(body.get("message") or response.text[:300])
    msg = f"{what}: HTTP {status} {name}: {detail}".replace(" : ", ": ")
    kw: dict[str, Any] = {"provider": provider, "backend": backend, "status": status}
    if status in (400, 413, 422):
        fld, text = field_at_fault(errors, request)
        if status == 413:
            fld = fld or "init_image"
        return InvalidRequest(f"{what}: Stability rejected the request ({name or status}): {text}", field=fld)
    if status == 401:
        return AuthenticationFailed(msg, **kw)
    if status == 402:
        return ProviderError(f"{what}: the Stability account is out of credits (HTTP 402); buy credits at "
                             f"platform.stability.ai: {detail}", retryable=False, **kw)
    if status == 403:
        if name == "content_moderation" or "moderation" in detail.lower():
            return ContentRejected(msg, **kw)
        return AuthenticationFailed(msg, **kw)
    if status == 404 and "/v2beta/results/" in response.request.url.path:
        return GenerationFailed(f"{what}: no such generation (results expire after 24 h): {detail}",
                                retryable=False, **kw)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return RateLimited(msg, retry_after=RATE_LIMIT_TIMEOUT if retry_after is None else retry_after, **kw)
    return None
