"""OpenAI Images wire format: request fields, edit uploads, answers and errors. No I/O.

Followed: https://platform.openai.com/docs/api-reference/images (``POST /images/generations``
JSON; ``POST /images/edits`` multipart with ``image`` — ``image[]`` for several — ``mask``,
``prompt``, ``model``, ``n``, ``size`` ...), the openai-python SDK types
(``src/openai/types/image_generate_params.py``, ``image_edit_params.py``, ``images_response.py``:
``{"created", "data": [{"b64_json" | "url", "revised_prompt"}], "background", "output_format",
"quality", "size", "usage"}``; ``resources/images.py`` sends one image as ``image`` and a list as
``image[]``), the error object ``{"error": {"message", "type", "param", "code"}}`` of
https://platform.openai.com/docs/guides/error-codes, and the rate-limit headers of
https://platform.openai.com/docs/guides/rate-limits (``x-ratelimit-reset-requests: 1s``,
``x-ratelimit-reset-tokens: 6m0s``). Safety refusals: ``code`` ``content_policy_violation``
(DALL·E) or ``moderation_blocked`` with ``type`` ``image_generation_user_error`` (GPT image).
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

import httpx
from PIL import Image, UnidentifiedImageError

from ...errors import (AuthenticationFailed, ContentRejected, GenerationFailed, ImageStudioError, InvalidRequest,
                       ProviderError, RateLimited, Unsupported)
from ...types import GenerationRequest
from ..base import parse_retry_after
from ..cloudkit import decode_b64_image, input_image
from ..common import json_or_none

STUDIO_EXTRA_KEYS = frozenset({"fallback_on_content_rejected", "reference_images", "size"})
"""``request.extra`` keys the studio reads itself and never passes into the body."""
REJECTED_CODES = frozenset({"content_policy_violation", "moderation_blocked"})
_SAFETY_WORDS = re.compile(r"safety|moderation|content polic", re.IGNORECASE)
_PARAM_FIELD = {"prompt": "prompt", "size": "width", "n": "n", "model": "model", "image": "init_image",
                "image[]": "init_image", "mask": "mask"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def passthrough(extra: dict[str, Any]) -> dict[str, Any]:
    """The ``request.extra`` fields that go into the body as they are.

    Raises:
        InvalidRequest: ``extra.stream`` (streamed answers are not read by this adapter).
    """
    if extra.get("stream"):
        raise InvalidRequest("streamed answers are not supported; leave stream unset", field="extra.stream")
    return {k: v for k, v in extra.items() if k not in STUDIO_EXTRA_KEYS and k != "stream"}


def form_value(value: Any) -> str:
    """A body value as multipart form text: booleans ``true``/``false``, objects as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _open(data: bytes, field: str) -> Image.Image:
    try:
        im = Image.open(io.BytesIO(data))
        im.load()
        return im
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidRequest(f"{field} is not a readable image", field=field) from exc


def _png(im: Image.Image) -> bytes:
    out = io.BytesIO()
    im.save(out, format="PNG")
    return out.getvalue()


def openai_mask(mask: bytes, size: tuple[int, int]) -> bytes:
    """The studio's mask as OpenAI wants it: a PNG of ``size`` (width, height in pixels) whose
    fully transparent pixels (alpha 0) mark where to paint.

    A mask that already has transparent pixels is taken as OpenAI-style and only resized; an
    opaque one follows the studio's convention (white, >= 128 grey, is painted; black is kept).

    Raises:
        InvalidRequest: the mask is not an image (``field="mask"``).
    """
    im = _open(mask, "mask")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] < 255:
            return _png(rgba if rgba.size == size else rgba.resize(size, Image.Resampling.NEAREST))
    grey = im.convert("L")
    if grey.size != size:
        grey = grey.resize(size, Image.Resampling.NEAREST)
    out = Image.new("RGBA", size, (0, 0, 0, 255))
    out.putalpha(grey.point(lambda v: 0 if v >= 128 else 255))
    return _png(out)


def edit_files(request: GenerationRequest, *, png_only: bool) -> list[tuple[str, tuple[str, bytes, str]]]:
    """The multipart file parts of an edit: the init image (plus ``extra.reference_images``,
    base64 strings, as further ``image[]`` parts) and the mask converted by :func:`openai_mask`.
    Images stay as they are when the model takes their format (PNG only for ``png_only``
    dall-e-2; PNG, JPEG, WebP for the rest), else are re-encoded as PNG.

    Raises:
        InvalidRequest: an image that cannot be read, or reference images that are not base64.
    """
    assert request.init_image is not None
    refs = request.extra.get("reference_images") or []
    if not isinstance(refs, list):
        raise InvalidRequest("reference_images must be a list of base64 images", field="extra.reference_images")
    images = [(request.init_image, "init_image")]
    for i, ref in enumerate(refs):
        raw = decode_b64_image(str(ref))
        if raw is None:
            raise InvalidRequest("not base64 image data", field=f"extra.reference_images.{i}")
        images.append((raw, f"extra.reference_images.{i}"))
    key = "image" if len(images) == 1 else "image[]"
    allowed = ("PNG",) if png_only else ("PNG", "JPEG", "WEBP")
    files = []
    for i, (raw, field) in enumerate(images):
        data, mime, ext = input_image(raw, field=field, allowed=allowed)
        files.append((key, (f"image{i}.{ext}", data, mime)))
    if request.mask is not None:
        size = _open(request.init_image, "init_image").size
        files.append(("mask", ("mask.png", openai_mask(request.mask, size), "image/png")))
    return files


def decoded_images(payload: Any, *, provider: str, backend: str | None) -> list[dict[str, Any]]:
    """``[{"data": bytes | None, "url": str | None, "revised_prompt": str | None}]`` from an
    ImagesResponse ``payload``.

    Raises:
        GenerationFailed: no ``data`` list, an item with neither ``b64_json`` nor ``url``, or
            undecodable base64.
    """
    items = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not items:
        raise GenerationFailed("the answer holds no images (no data list)", provider=provider, backend=backend)
    out = []
    for i, item in enumerate(items):
        item = item if isinstance(item, dict) else {}
        b64, url = item.get("b64_json"), item.get("url")
        if not b64 and not url:
            raise GenerationFailed(f"image {i} has neither b64_json nor url", provider=provider, backend=backend)
        data = decode_b64_image(b64) if isinstance(b64, str) and b64 else None
        if b64 and data is None:
            raise GenerationFailed(f"image {i}: b64_json is not base64", provider=provider, backend=backend)
        out.append({"data": data, "url": None if data is not None else url,
                    "revised_prompt": item.get("revised_prompt")})
    return out


def duration(text: str) -> float | None:
    """Seconds from a Go-style duration (``"1s"``, ``"6m0s"``, ``"20ms"``, ``"1h2m3.5s"``) or a
    bare number of seconds; None when it is neither."""
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT[u] for n, u in parts)


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait after a 429: ``retry-after-ms``, else ``Retry-After``, else the longest
    ``x-ratelimit-reset-*`` among the limits whose ``x-ratelimit-remaining-*`` is 0 (all of
    them when none says 0); None when no header tells."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    if (seconds := parse_retry_after(headers.get("retry-after"))) is not None:
        return seconds
    resets: dict[str, float] = {}
    for name, value in headers.items():
        if name.lower().startswith("x-ratelimit-reset-") and (s := duration(value)) is not None:
            resets[name.lower().removeprefix("x-ratelimit-reset-")] = s
    spent = [s for kind, s in resets.items() if headers.get(f"x-ratelimit-remaining-{kind}", "").strip() == "0"]
    pool = spent or list(resets.values())
    return max(pool) if pool else None


def field_for(param: Any, request: GenerationRequest | None, provider: str) -> str | None:
    """Our field for an OpenAI error's ``param``: a request field, ``extra.<p>`` when the
    caller sent it in ``request.extra``, else the provider setting it came from."""
    if not isinstance(param, str) or not param:
        return None
    extra = request.extra if request is not None else {}
    if param in extra or (param == "size" and "size" in extra):
        return f"extra.{param}"
    if param in _PARAM_FIELD:
        return _PARAM_FIELD[param]
    if param.startswith(("image[", "image")):
        return "init_image"
    return f"providers.{provider}.settings.{param}"


def answer_error(response: httpx.Response, *, request: GenerationRequest | None, provider: str,
                 backend: str | None, what: str) -> ImageStudioError | None:
    """The error an OpenAI-shaped error answer means, or None (2xx, or a shape this function
    leaves to :func:`..base.raise_for_status`: 5xx, 408 ...).

    Safety refusals -> ContentRejected; 429 -> RateLimited (``insufficient_quota`` not
    retryable); 401/403 -> AuthenticationFailed; ``billing_hard_limit_reached`` -> a
    ProviderError that is not retried; other 4xx with an error object -> InvalidRequest naming
    :func:`field_for` of its ``param``; a 404 without one -> Unsupported (no such route).
    """
    if response.is_success:
        return None
    status = response.status_code
    body = json_or_none(response)
    err = body.get("error") if isinstance(body, dict) else None
    err = err if isinstance(err, dict) else ({"message": err} if isinstance(err, str) else None)
    message = str((err or {}).get("message") or response.text[:300] or f"HTTP {status}")
    code, kind = (err or {}).get("code"), (err or {}).get("type")
    kw: dict[str, Any] = {"provider": provider, "backend": backend, "status": status}
    text = f"{what}: HTTP {status}: {message}"
    if code in REJECTED_CODES or (kind == "image_generation_user_error" and _SAFETY_WORDS.search(message)):
        return ContentRejected(text, **kw)
    if status == 429:
        if code == "insufficient_quota":
            return RateLimited(text, retry_after=None, retryable=False, **kw)
        return RateLimited(text, retry_after=retry_after(response.headers), **kw)
    if status in (401, 403):
        return AuthenticationFailed(text, **kw)
    if code == "billing_hard_limit_reached":
        return ProviderError(text, retryable=False, **kw)
    if status == 404 and err is None:
        return Unsupported(f"{what}: this server has no such route (HTTP 404)", provider=provider)
    if 400 <= status < 500 and status != 408 and err is not None:
        return InvalidRequest(text, field=field_for(err.get("param"), request, provider))
    return None
