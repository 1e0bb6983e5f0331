"""The Leonardo.Ai REST wire format (``https://cloud.leonardo.ai/api/rest/v1``): the generation
body we send, the error each answer means, and the documented choices.

Sources followed:

* Leonardo's official SDK, generated from its OpenAPI document
  (github.com/Leonardo-Interactive/leonardo-python-sdk, ``models/operations/creategeneration.py``,
  ``getgenerationbyid.py``, ``deletegenerationbyid.py``, ``uploadinitimage.py``, ``getuserself.py``,
  ``listplatformmodels.py``, ``models/shared/sd_generation_schedulers.py``,
  ``sd_generation_style.py``, ``job_status.py``): ``POST /generations`` takes ``prompt``,
  ``negative_prompt``, ``modelId``, ``width``/``height`` (32..1536, multiples of 8),
  ``num_images`` (1..8; 1..4 when a side is over 768), ``seed``, ``guidance_scale`` (integer
  1..20), ``num_inference_steps`` (10..60), ``scheduler``, ``alchemy``, ``photoReal``,
  ``presetStyle``, ``public``, ``init_image_id`` + ``init_strength`` (0.1..0.9, how strongly the
  output *reflects* the init image) and answers ``{"sdGenerationJob": {"generationId",
  "apiCreditCost"}}``; ``GET /generations/{id}`` answers ``{"generations_by_pk": {"status":
  PENDING | COMPLETE | FAILED, "seed", "generated_images": [{"id", "url", "nsfw"}] ...}}``.
* https://docs.leonardo.ai/docs/api-error-messages - errors are ``{"error", "path", "code"}``;
  a bad key gives "Invalid response from authorization hook" or "Authentication hook
  unauthorized this request" (``code: access-denied``).
* https://docs.leonardo.ai/docs/guide-to-handling-not-safe-for-work-image-generation-nsfw - a
  flagged prompt is a 400 ``"content moderation filter: <word>"``; generated images carry ``nsfw``.
* https://docs.leonardo.ai/docs/how-to-upload-an-image-using-a-presigned-url - ``POST
  /init-image {"extension"}`` answers ``{"uploadInitImage": {"id", "url", "fields" (a JSON
  string), "key"}}``; the file goes to ``url`` as a multipart POST of every field plus ``file``,
  within 2 minutes.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from ...errors import (AuthenticationFailed, ContentRejected, ImageStudioError, InvalidRequest, ProviderError,
                       ProviderUnavailable, RateLimited)
from ...types import GenerationRequest
from ..base import parse_retry_after
from ..cloudkit import our_field
from ..common import json_or_none

FIELD_NAMES = {
    "prompt": "prompt", "negative_prompt": "negative_prompt", "modelId": "model", "width": "width",
    "height": "height", "num_images": "n", "seed": "seed", "guidance_scale": "cfg_scale",
    "num_inference_steps": "steps", "scheduler": "scheduler", "init_image_id": "init_image",
    "init_strength": "denoising_strength",
}
"""Leonardo generation parameter -> our request field (for errors naming a parameter)."""

SCHEDULERS = ["KLMS", "EULER_ANCESTRAL_DISCRETE", "EULER_DISCRETE", "DDIM", "DPM_SOLVER", "PNDM", "LEONARDO"]
"""``scheduler`` values of ``POST /generations`` (SDK ``sd_generation_schedulers.py``)."""

PRESET_STYLES = ["ANIME", "BOKEH", "CINEMATIC", "CINEMATIC_CLOSEUP", "CREATIVE", "DYNAMIC", "ENVIRONMENT", "FASHION",
                 "FILM", "FOOD", "GENERAL", "HDR", "ILLUSTRATION", "LEONARDO", "LONG_EXPOSURE", "MACRO",
                 "MINIMALISTIC", "MONOCHROME", "MOODY", "NONE", "NEUTRAL", "PHOTOGRAPHY", "PORTRAIT", "RAYTRACED",
                 "RENDER_3D", "RETRO", "SKETCH_BW", "SKETCH_COLOR", "STOCK_PHOTO", "VIBRANT", "UNPROCESSED"]
"""``presetStyle`` values (SDK ``sd_generation_style.py``); which apply depends on alchemy/photoReal."""

_AUTH = re.compile(r"authori[sz]ation hook|authentication hook|api key|unauthori[sz]ed", re.I)
_CREDITS = re.compile(r"(not enough|insufficient).{0,40}(token|credit|balance)|top.?up", re.I)
_MODERATION = re.compile(r"content moderation|nsfw", re.I)


def init_strength(denoising_strength: float | None) -> float | None:
    """Leonardo's ``init_strength`` (how much the output keeps of the init image, 0.1..0.9) for
    our ``denoising_strength`` (how much it changes, 0..1): ``1 - d`` clamped to 0.1..0.9."""
    if denoising_strength is None:
        return None
    return round(min(0.9, max(0.1, 1.0 - denoising_strength)), 4)


def build_body(request: GenerationRequest, *, model_id: str, public: bool, init_image_id: str | None,
               defaults: dict[str, Any]) -> dict[str, Any]:
    """The ``POST /generations`` body for ``request`` (sizes in pixels).

    ``cfg_scale`` is rounded to Leonardo's integer ``guidance_scale``; ``scheduler`` (else
    ``sampler``) passes as is (see :data:`SCHEDULERS`); a seed of -1 (random) is left out.
    ``defaults`` (the settings' ``alchemy``/``photoReal``/``presetStyle`` when set) come before
    ``request.extra``, which is merged last and may set any documented field (``alchemy``,
    ``photoReal``, ``presetStyle``, ``contrast``, ``elements``, ``controlnets`` ...).
    """
    body: dict[str, Any] = {"prompt": request.prompt, "modelId": request.model or model_id, "width": request.width,
                            "height": request.height, "num_images": request.n, "public": public}
    optional = {
        "negative_prompt": request.negative_prompt or None,
        "seed": request.seed if request.seed is not None and request.seed >= 0 else None,
        "guidance_scale": round(request.cfg_scale) if request.cfg_scale is not None else None,
        "num_inference_steps": request.steps, "scheduler": request.scheduler or request.sampler,
        "init_image_id": init_image_id,
        "init_strength": init_strength(request.denoising_strength) if init_image_id else None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    body.update(defaults)
    body.update(request.extra)
    return body


def check_count(request: GenerationRequest, max_n: int) -> None:
    """``num_images`` is 1..``max_n`` (Leonardo: 8), and 1..4 when width or height is over 768.

    Raises:
        InvalidRequest: ``n`` is over the limit for this size.
    """
    limit = min(max_n, 4) if max(request.width, request.height) > 768 else max_n
    if request.n > limit:
        raise InvalidRequest(f"Leonardo makes at most {limit} images per request at "
                             f"{request.width}x{request.height}", field="n")


def _named_field(message: str, extra: dict[str, Any]) -> str | None:
    """The first parameter a Leonardo error message names (longest names first, so that
    ``negative_prompt`` wins over ``prompt``), as our field."""
    for name in sorted({*FIELD_NAMES, *extra}, key=len, reverse=True):
        if re.search(rf"(?<![A-Za-z_]){re.escape(name)}(?![A-Za-z_])", message):
            return our_field(name, FIELD_NAMES, extra)
    return None


def error_for(response: httpx.Response, *, extra: dict[str, Any], provider: str,
              backend: str | None) -> ImageStudioError | None:
    """The studio error a Leonardo answer means, or None for a success (the caller maps any
    other non-2xx with :func:`~image_studio.providers.base.raise_for_status`).

    Bad key (401/403, ``access-denied``, the authorization-hook messages) -> AuthenticationFailed;
    429 -> RateLimited (``Retry-After``); 5xx -> ProviderUnavailable; "content moderation
    filter" -> ContentRejected; out of API credits -> ProviderError (not retryable); any other
    ``{"error"}`` -> InvalidRequest naming the field the message mentions.
    """
    body = json_or_none(response)
    message = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), str) else None
    status = response.status_code
    if response.is_success and message is None:
        return None
    text = f"Leonardo HTTP {status}: {message or response.text[:300]}"
    kw: dict[str, Any] = {"provider": provider, "backend": backend, "status": status}
    code = body.get("code") if isinstance(body, dict) else None
    if status in (401, 403) or code == "access-denied" or (message and _AUTH.search(message)):
        return AuthenticationFailed(text, **kw)
    if status == 429:
        return RateLimited(text, retry_after=parse_retry_after(response.headers.get("retry-after")), **kw)
    if status >= 500:
        return ProviderUnavailable(text, **kw)
    if message and _MODERATION.search(message):
        return ContentRejected(text, **kw)
    if status == 402 or (message and _CREDITS.search(message)):
        return ProviderError(text, retryable=False, **kw)
    if message is not None:
        return InvalidRequest(text, field=_named_field(message, extra))
    return None


__all__ = ["FIELD_NAMES", "PRESET_STYLES", "SCHEDULERS", "build_body", "check_count", "error_for", "init_strength"]
